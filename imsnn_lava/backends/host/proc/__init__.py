"""Host-side Lava processes, one folder per process (process.py + models.py)."""
