"""Event counts of a spiking network, per layer and per sample: the definitions, written once.

Lava's imsnn synapse processes count these events step by step inside their ProcessModels
(`SynapseCounts.step`, below); the numpy reference and the PyTorch evaluation count them from
spike trains with `count_events`, which runs the very same per-step function over the recorded
steps. Every count is per sample (T steps, T = the model's num_steps), for one synapse layer
l = 1..L (the synapse into layer l and layer l's neurons), unless said otherwise.

Definitions (these are the README's):
- spikes (of layer l): spikes layer l's neurons emit during the sample. The input layer's
  spikes (`input_spikes`) are the encoded input spikes.
- spikes_in (of layer l): spikes crossing into layer l's synapse = the spikes on the synapse's
  input port (the previous layer's spikes; the input spikes for layer 1), over all T steps.
  Lava counts them in the receiving synapse, so spikes_in[l] == spikes[l - 1] is a check of
  the transport between processes, not a definition.
- synops (synaptic events, SynOps): sum over the T steps and over the presynaptic neurons i of
  s_i[t] x fan_out(i), where fan_out(i) is the number of synapses from i into layer l
  (`reference.fan_out`: n_out for a dense layer; for a conv layer the kernel entries that read
  i, summed over output positions, times the output channels, so it varies at the borders).
- lookups (ISI layers only): ISI table lookups = spikes_in. Each arriving spike reads one row
  w * G[bin] of the table (one entry per synapse it drives) with bin = min(c_i, phi_max), c_i
  the ISI counter of method.md section 2; a plain layer does no lookups (absent, not 0).
- isi_histogram (ISI layers only; per layer, summed over all samples of a run, not per
  sample): counts of the bins 1..phi_max the lookups used, index k-1 for bin k. The first
  spike of a neuron in a sample counts from the sample start (c_i[0] = c0), so its bin is
  min(c0 + t, phi_max) at step t, as the synapse computes it.
- neuron_updates: every neuron of layer l at every step = T x n_l (constant per sample).
- active_updates: neuron updates at which the neuron receives non-zero synaptic input, i.e.
  the number of (step, neuron) pairs with a_in[t, j] != 0, where a_in[t] is what the synapse
  delivers at step t (computed from the spikes of step t-1; nothing at t = 0, since each
  synapse hands its output on one step late). Events through zero table entries and inputs
  that cancel to exactly zero count as idle. Spikes of the last step are counted in
  spikes_in, synops and lookups (they are sent and looked up) but their input would arrive
  after the sample ends, so they activate no neuron.
- idle_updates: neuron_updates - active_updates.

numpy only (no Lava, no torch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from imsnn_lava import reference
from imsnn_lava.format import LayerSpec, ModelFile

DEFINITIONS = {
    "spikes": "spikes the layer's neurons emit in a sample",
    "input_spikes": "encoded input spikes of a sample",
    "spikes_in": "spikes arriving on the layer's synapse input in a sample (the previous "
                 "layer's spikes)",
    "synops": "synaptic events: sum over steps and presynaptic neurons of spike x fan-out",
    "lookups": "ISI table lookups (ISI layers): one per arriving spike",
    "isi_histogram": "ISI bins 1..phi_max of the arriving spikes' lookups, summed over samples",
    "neuron_updates": "every neuron at every step: T x neurons",
    "active_updates": "(step, neuron) pairs with non-zero delivered synaptic input",
    "idle_updates": "neuron_updates - active_updates",
}

PER_SAMPLE_KEYS = ("spikes", "spikes_in", "synops", "active_updates")


# ---------------------------------------------------------------------------------------------
# fan-out, fan-in


def fan_outs(layers: list[LayerSpec]) -> list[np.ndarray]:
    """Per layer, synapses leaving each input neuron (float64, as synaptic_events expects)."""
    return [reference.fan_out(layer).astype(np.float64) for layer in layers]


def fan_in(layer: LayerSpec) -> int:
    """Synapses per output neuron of the layer's weight shape (dense: n_in; conv: C_in k k,
    padding included): the MACs per neuron of the equivalent ANN layer."""
    return int(np.prod(layer.weight.shape[1:]))


def synaptic_events(presyn_counts: np.ndarray, fanout: np.ndarray) -> np.ndarray:
    """(N, n_in) per-neuron spike counts x (n_in,) fan-out -> (N,) synaptic events."""
    return presyn_counts.astype(np.float64) @ np.asarray(fanout, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# the per-step count, used inside Lava's synapse models and by count_events


@dataclass
class SynapseCounts:
    """Counts one synapse layer's events, one step at a time, for R samples side by side."""

    fanout: np.ndarray  # (n_in,) int64
    phi_max: int
    isi: bool

    def __post_init__(self):
        self.fanout = np.ascontiguousarray(self.fanout, dtype=np.int64)
        self._uniform = int(self.fanout[0]) if (self.fanout.size and np.all(
            self.fanout == self.fanout[0])) else None

    @classmethod
    def from_layer(cls, layer: LayerSpec) -> SynapseCounts:
        return cls(fanout=reference.fan_out(layer), phi_max=int(layer.phi_max),
                   isi=layer.synapse == "isi")

    def step(self, spikes: np.ndarray, counter: np.ndarray, delivered: np.ndarray):
        """Events of one step.

        spikes: (R, n_in) bool, arriving this step; counter: (R, n_in) ISI counters at this
        step (before it advances); delivered: (R, n_out) synaptic input handed to the neurons
        this step. Returns (spikes_in (R,), synops (R,), active (R,), isi_histogram
        (phi_max,) or None for a plain layer), all int64.
        """
        spikes_in = np.count_nonzero(spikes, axis=1).astype(np.int64)
        if self._uniform is not None:
            synops = spikes_in * self._uniform
        else:
            synops = spikes.astype(np.int64) @ self.fanout
        active = np.count_nonzero(delivered, axis=1).astype(np.int64)
        hist = None
        if self.isi:
            bins = np.minimum(counter[spikes], self.phi_max) - 1
            hist = np.bincount(bins, minlength=self.phi_max).astype(np.int64)
        return spikes_in, synops, active, hist


# ---------------------------------------------------------------------------------------------
# per-sample counts of a run


@dataclass
class EventCounts:
    """Per-sample event counts of N samples through L synapse layers (see the definitions).

    Arrays (N, L) int64 unless noted; active_updates and isi_histograms may be None where a
    source counted only spikes (EventTally.add)."""

    input_spikes: np.ndarray  # (N,)
    spikes: np.ndarray  # (N, L) emitted by layer l
    spikes_in: np.ndarray  # (N, L) arriving at synapse l
    synops: np.ndarray  # (N, L)
    neuron_updates: np.ndarray  # (L,) T x n_l per sample
    isi: list[bool]  # per layer: ISI synapse (lookups, histogram)
    active_updates: np.ndarray | None = None  # (N, L)
    isi_histograms: list[np.ndarray | None] | None = None  # per layer (phi_max,) or None

    @property
    def num_samples(self) -> int:
        return int(self.input_spikes.shape[0])

    @property
    def idle_updates(self) -> np.ndarray | None:
        if self.active_updates is None:
            return None
        return self.neuron_updates[None, :] - self.active_updates

    @property
    def lookups(self) -> np.ndarray:
        """(N, L): spikes_in on ISI layers, 0 on plain layers (which do no lookups)."""
        return self.spikes_in * np.asarray(self.isi, dtype=np.int64)[None, :]

    def equal(self, other: EventCounts) -> bool:
        return not self.differences(other)

    def differences(self, other: EventCounts) -> list[str]:
        """Names of the counts that differ (empty: identical)."""
        out = []
        for key in ("input_spikes", "spikes", "spikes_in", "synops", "neuron_updates",
                    "active_updates"):
            a, b = getattr(self, key), getattr(other, key)
            if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
                out.append(key)
        ha, hb = self.isi_histograms, other.isi_histograms
        if (ha is None) != (hb is None) or (ha is not None and (len(ha) != len(hb) or any(
                (x is None) != (y is None) or (x is not None and not np.array_equal(x, y))
                for x, y in zip(ha, hb)))):
            out.append("isi_histograms")
        if list(self.isi) != list(other.isi):
            out.append("isi")
        return out

    @staticmethod
    def concat(parts: list[EventCounts]) -> EventCounts:
        """Samples of several runs one after the other (histograms summed)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        first = parts[0]
        active = None if any(p.active_updates is None for p in parts) else np.concatenate(
            [p.active_updates for p in parts])
        hists = None
        if all(p.isi_histograms is not None for p in parts):
            hists = [None if h is None else sum(p.isi_histograms[k] for p in parts)
                     for k, h in enumerate(first.isi_histograms)]
        return EventCounts(
            input_spikes=np.concatenate([p.input_spikes for p in parts]),
            spikes=np.concatenate([p.spikes for p in parts]),
            spikes_in=np.concatenate([p.spikes_in for p in parts]),
            synops=np.concatenate([p.synops for p in parts]),
            neuron_updates=first.neuron_updates.copy(), isi=list(first.isi),
            active_updates=active, isi_histograms=hists)


def _layer_events(layer: LayerSpec, pre: np.ndarray, *, fixed: bool,
                  delivered: np.ndarray | None):
    """Run SynapseCounts.step over the T steps of (T, N, n_in) presynaptic spikes."""
    t_steps, n, n_in = pre.shape
    counts = SynapseCounts.from_layer(layer)
    syn = reference.synapse_table(layer, fixed)
    counter = reference.counter_start((n, n_in), syn)
    a = np.zeros((n, layer.n_out))
    spikes_in = np.zeros(n, np.int64)
    synops = np.zeros(n, np.int64)
    active = np.zeros(n, np.int64)
    hist = np.zeros(layer.phi_max, np.int64) if counts.isi else None
    for t in range(t_steps):
        now = delivered[t] if delivered is not None else a
        s_in, s_ops, act, h = counts.step(pre[t], counter, now)
        spikes_in += s_in
        synops += s_ops
        active += act
        if hist is not None:
            hist += h
        if delivered is None and t < t_steps - 1:
            a = reference.synapse_step(pre[t], counter, syn)
            if fixed:
                a = a.astype(np.int64)
        counter = reference.counter_step(counter, pre[t], syn.phi_max)
    return spikes_in, synops, active, hist


def count_events(layers: list[LayerSpec] | ModelFile, spikes: list[np.ndarray], *,
                 fixed: bool, currents: list[np.ndarray] | None = None) -> EventCounts:
    """Event counts of N samples from their spike trains.

    spikes: per layer including the input, (T, N, n) bool (or 0/1) arrays, as
    reference.simulate(...).spikes or the PyTorch network's NetOutput.spikes (as numpy) give.
    currents: optional per synapse layer (T, N, n_out) delivered input (reference.simulate
    with record=True); without it the delivered input is recomputed from the spikes with
    reference.synapse_step (in the model's float or fixed-point tables), which is what the
    network computes when its spikes are these.
    """
    if isinstance(layers, ModelFile):
        layers = layers.layers
    if len(spikes) != len(layers) + 1:
        raise ValueError(f"expected {len(layers) + 1} spike arrays (input + every layer), "
                         f"got {len(spikes)}")
    spikes = [np.asarray(s) != 0 for s in spikes]
    t_steps = spikes[0].shape[0]
    cols = [_layer_events(layer, spikes[i], fixed=fixed,
                          delivered=None if currents is None else np.asarray(currents[i]))
            for i, layer in enumerate(layers)]
    return EventCounts(
        input_spikes=spikes[0].sum(axis=(0, 2)).astype(np.int64),
        spikes=np.stack([s.sum(axis=(0, 2)) for s in spikes[1:]], axis=1).astype(np.int64),
        spikes_in=np.stack([c[0] for c in cols], axis=1),
        synops=np.stack([c[1] for c in cols], axis=1),
        active_updates=np.stack([c[2] for c in cols], axis=1),
        neuron_updates=np.array([t_steps * layer.n_out for layer in layers], np.int64),
        isi=[layer.synapse == "isi" for layer in layers],
        isi_histograms=[c[3] for c in cols])


# ---------------------------------------------------------------------------------------------
# summaries: the per-layer rows of `imsnn evaluate` and `imsnn simulate`

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


@dataclass
class LayerInfo:
    """What a summary row needs to know of a layer (JSON-able, so merges need no model)."""

    name: str
    kind: str
    synapse: str
    neurons: int
    fan_in: int
    phi_max: int = 1
    extra: dict = field(default_factory=dict)

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
        self.fanout = fan_outs(layers)
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
