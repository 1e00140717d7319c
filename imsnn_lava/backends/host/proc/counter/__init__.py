"""The SpikeCounter sink: per-sample, per-neuron spike counts of R replicas."""
