"""The ISIDense synapse process (ISI-modulated or plain dense layer)."""
