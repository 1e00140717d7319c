"""Event counts of a spiking network, per layer and per sample: the definitions, written once.

Lava's imsnn synapse processes count these events step by step inside their ProcessModels
(`SynapseCounts.step`, below, run by `synapse.SynapseStepper`); the numpy reference and the
PyTorch evaluation count them from spike trains with `counting.count_events`, which runs the
very same stepper over the recorded steps. Every count is per sample (T steps, T = the
model's num_steps), for one synapse layer l = 1..L (the synapse into layer l and layer l's
neurons), unless said otherwise.

Definitions (these are the README's):
- spikes (of layer l): spikes layer l's neurons emit during the sample. The input layer's
  spikes (`input_spikes`) are the encoded input spikes.
- spikes_in (of layer l): spikes crossing into layer l's synapse = the spikes on the synapse's
  input port (the previous layer's spikes; the input spikes for layer 1), over all T steps.
  Lava counts them in the receiving synapse, so spikes_in[l] == spikes[l - 1] is a check of
  the transport between processes, not a definition.
- synops (synaptic events, SynOps): sum over the T steps and over the presynaptic neurons i of
  s_i[t] x fan_out(i), where fan_out(i) is the number of synapses from i into layer l
  (`synapse.fan_out`: n_out for a dense layer; for a conv layer the kernel entries that read
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

from dataclasses import dataclass

import numpy as np

from imsnn_lava.ir.nodes import LayerSpec
from imsnn_lava.numerics import isi

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
# fan-in, synaptic events


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
            bins = isi.isi_bins(counter[spikes], self.phi_max)
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
