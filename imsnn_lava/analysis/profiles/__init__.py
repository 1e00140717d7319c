"""Built-in per-event energy profiles (JSON package data), loaded by imsnn_lava.analysis.energy."""
