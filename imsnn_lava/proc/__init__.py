"""Lava processes of imsnn: one package folder per process (process.py + models.py)."""
