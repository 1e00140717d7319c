"""imsnn_lava: the deployment side. Model file format, fixed-point numerics, a numpy reference
simulator, and Lava processes. Never imports torch; Lava itself is imported lazily."""

__version__ = "0.1.0"
