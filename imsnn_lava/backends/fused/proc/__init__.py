"""imsnn's own Lava processes of the fused backend, one folder per process (Lava executes
every .py file of a process's folder when it compiles)."""
