"""ISIDense / ISIConv: the fused ISI synapse processes (process.py) and models (models.py)."""
