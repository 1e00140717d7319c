"""The Recorder sink: every step of a port, for step-by-step parity checks (small runs)."""
