"""Event counts of a spiking network, per layer and per sample (numpy only).

Definitions (method.md section 4), used identically for PyTorch, the numpy reference and Lava:
- spikes: spikes a layer emits in a sample (the input layer's are the encoded input spikes);
- synaptic events (SynOps) of synapse layer l: sum over steps of presynaptic spikes x their
  fan-out (synapses leaving that neuron into layer l);
- neuron updates: every neuron of layer l at every step (T x n).
"""

from __future__ import annotations

import numpy as np

from imsnn_lava import reference
from imsnn_lava.format import LayerSpec


def fan_outs(layers: list[LayerSpec]) -> list[np.ndarray]:
    return [reference.fan_out(layer).astype(np.float64) for layer in layers]


def synaptic_events(presyn_counts: np.ndarray, fanout: np.ndarray) -> np.ndarray:
    """(N, n_in) per-neuron spike counts x (n_in,) fan-out -> (N,) events per sample."""
    return presyn_counts.astype(np.float64) @ fanout


class EventTally:
    """Accumulates per-sample counts batch by batch."""

    def __init__(self, layers: list[LayerSpec], num_steps: int):
        self.layers = layers
        self.num_steps = num_steps
        self.fanout = fan_outs(layers)
        self.spikes: list[list[np.ndarray]] = [[] for _ in range(len(layers) + 1)]
        self.synops: list[list[np.ndarray]] = [[] for _ in layers]

    def add(self, per_neuron_counts: list[np.ndarray]) -> None:
        """per_neuron_counts: per layer incl. input, (B, n) spike counts of one batch."""
        for i, c in enumerate(per_neuron_counts):
            self.spikes[i].append(c.sum(axis=1))
        for i, fo in enumerate(self.fanout):
            self.synops[i].append(synaptic_events(per_neuron_counts[i], fo))

    def per_sample(self) -> dict:
        return {
            "spikes": np.stack([np.concatenate(s) for s in self.spikes], axis=1),
            "synops": np.stack([np.concatenate(s) for s in self.synops], axis=1),
        }

    def summary(self) -> list[dict]:
        ps = self.per_sample()
        rows = []
        sizes = [self.layers[0].n_in] + [layer.n_out for layer in self.layers]
        names = ["input"] + [layer.name for layer in self.layers]
        for i, (name, n) in enumerate(zip(names, sizes)):
            spikes = ps["spikes"][:, i]
            row = {"name": name, "neurons": int(n),
                   "spikes_per_sample": float(spikes.mean()),
                   "spikes_per_neuron": float(spikes.mean() / n)}
            if i > 0:
                row["synops_per_sample"] = float(ps["synops"][:, i - 1].mean())
                row["neuron_updates_per_sample"] = int(n * self.num_steps)
            rows.append(row)
        return rows
