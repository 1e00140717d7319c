"""Built-in target chip profiles (JSON package data), loaded by imsnn_lava.analysis.resources."""
