"""imsnn_train: PyTorch training of ISI-modulated spiking networks (IMSNN) and baselines."""

__version__ = "0.1.0"
