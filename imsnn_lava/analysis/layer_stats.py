"""Per-layer summaries of event counts: the rows of `imsnn evaluate` and `imsnn simulate`, and
their batch-by-batch accumulation (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imsnn_lava.ir.nodes import LayerSpec
from imsnn_lava.numerics.counting import count_events
from imsnn_lava.numerics.events import EventCounts, fan_in, synaptic_events
from imsnn_lava.numerics.synapse import fan_out

PERCENTILES = (5, 50, 95)


def distribution(values: np.ndarray) -> dict:
    """{"p5", "p50", "p95"} of per-sample values (numpy's linear interpolation)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {f"p{p}": 0.0 for p in PERCENTILES}
    qs = np.percentile(values, PERCENTILES)
    return {f"p{p}": float(q) for p, q in zip(PERCENTILES, qs)}


def _stats(row: dict, key: str, values: np.ndarray) -> None:
    values = np.asarray(values, dtype=np.float64)
    row[f"{key}_per_sample"] = float(values.mean()) if values.size else 0.0
    row[f"{key}_per_sample_distribution"] = distribution(values)


@dataclass(frozen=True)
class LayerInfo:
    """What a summary row needs to know of a layer (JSON-able, so merges need no model)."""

    name: str
    kind: str
    synapse: str
    neurons: int
    fan_in: int
    phi_max: int = 1

    @classmethod
    def of(cls, layer: LayerSpec) -> LayerInfo:
        return cls(name=layer.name, kind=layer.kind, synapse=layer.synapse,
                   neurons=layer.n_out, fan_in=fan_in(layer), phi_max=int(layer.phi_max))

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "synapse": self.synapse,
                "neurons": self.neurons, "fan_in": self.fan_in, "phi_max": self.phi_max}

    @classmethod
    def from_dict(cls, d: dict) -> LayerInfo:
        return cls(name=d["name"], kind=d["kind"], synapse=d["synapse"],
                   neurons=int(d["neurons"]), fan_in=int(d["fan_in"]),
                   phi_max=int(d.get("phi_max", 1)))


def layer_rows(counts: EventCounts, infos: list[LayerInfo]) -> list[dict]:
    """One JSON row per synapse layer: mean per sample and p5/p50/p95 of every count."""
    n = counts.num_samples
    rows = []
    idle = counts.idle_updates
    for k, info in enumerate(infos):
        spikes = counts.spikes[:, k]
        row = {"name": info.name, "kind": info.kind, "synapse": info.synapse,
               "neurons": info.neurons, "fan_in": info.fan_in}
        _stats(row, "spikes", spikes)
        row["spikes_per_sample_std"] = float(spikes.std()) if n else 0.0
        row["spikes_per_neuron"] = row["spikes_per_sample"] / info.neurons
        _stats(row, "spikes_in", counts.spikes_in[:, k])
        _stats(row, "synops", counts.synops[:, k])
        if counts.isi[k]:
            _stats(row, "lookups", counts.lookups[:, k])
        row["neuron_updates_per_sample"] = int(counts.neuron_updates[k])
        if counts.active_updates is not None:
            _stats(row, "active_updates", counts.active_updates[:, k])
            _stats(row, "idle_updates", idle[:, k])
        if counts.isi[k] and counts.isi_histograms is not None \
                and counts.isi_histograms[k] is not None:
            row["isi_histogram"] = [int(x) for x in counts.isi_histograms[k]]
        rows.append(row)
    return rows


def input_row(counts: EventCounts, neurons: int) -> dict:
    row = {"name": "input", "neurons": int(neurons)}
    _stats(row, "spikes", counts.input_spikes)
    row["spikes_per_neuron"] = row["spikes_per_sample"] / max(int(neurons), 1)
    return row


# ---------------------------------------------------------------------------------------------
# batch-by-batch accumulation (PyTorch and reference evaluations)


class EventTally:
    """Accumulates per-sample counts batch by batch.

    add_spikes(spike trains) counts everything (count_events); add(per-neuron counts) is the
    older, cheaper form that gives spikes and synops only.
    """

    def __init__(self, layers: list[LayerSpec], num_steps: int, *, fixed: bool = False):
        self.layers = layers
        self.num_steps = num_steps
        self.fixed = fixed
        self.fanout = [fan_out(layer).astype(np.float64) for layer in layers]
        self.parts: list[EventCounts] = []

    def add_spikes(self, spikes: list[np.ndarray], currents: list[np.ndarray] | None = None
                   ) -> EventCounts:
        """spikes: per layer incl. the input, (T, B, n) arrays of one batch."""
        counts = count_events(self.layers, spikes, fixed=self.fixed, currents=currents)
        self.parts.append(counts)
        return counts

    def add(self, per_neuron_counts: list[np.ndarray]) -> None:
        """per_neuron_counts: per layer incl. input, (B, n) spike counts of one batch."""
        c = [np.rint(np.asarray(x, dtype=np.float64)).astype(np.int64)
             for x in per_neuron_counts]
        self.parts.append(EventCounts(
            input_spikes=c[0].sum(axis=1),
            spikes=np.stack([x.sum(axis=1) for x in c[1:]], axis=1),
            spikes_in=np.stack([x.sum(axis=1) for x in c[:-1]], axis=1),
            synops=np.stack([np.rint(synaptic_events(c[i], fo)).astype(np.int64)
                             for i, fo in enumerate(self.fanout)], axis=1),
            neuron_updates=np.array([self.num_steps * layer.n_out for layer in self.layers],
                                    np.int64),
            isi=[layer.synapse == "isi" for layer in self.layers]))

    def counts(self) -> EventCounts:
        if not self.parts:
            n = len(self.layers)
            return EventCounts(
                input_spikes=np.zeros(0, np.int64), spikes=np.zeros((0, n), np.int64),
                spikes_in=np.zeros((0, n), np.int64), synops=np.zeros((0, n), np.int64),
                neuron_updates=np.array([self.num_steps * x.n_out for x in self.layers],
                                        np.int64),
                isi=[x.synapse == "isi" for x in self.layers])
        return EventCounts.concat(self.parts)

    def per_sample(self) -> dict:
        c = self.counts()
        return {"spikes": np.concatenate([c.input_spikes[:, None], c.spikes], axis=1),
                "synops": c.synops.astype(np.float64)}

    def summary(self) -> list[dict]:
        """Rows: the input first, then every layer (layer_rows)."""
        c = self.counts()
        infos = [LayerInfo.of(layer) for layer in self.layers]
        return [input_row(c, self.layers[0].n_in)] + layer_rows(c, infos)
