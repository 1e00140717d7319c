"""The SpikeSource process: input spikes of R replicas, one sample period after another."""
