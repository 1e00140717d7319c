"""The fused backend: each ISI layer as one custom Lava synapse process (CPU only) feeding
Lava's stock LIFReset neurons."""
