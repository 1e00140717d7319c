"""The ISIConv synapse process (ISI-modulated or plain conv layer)."""
