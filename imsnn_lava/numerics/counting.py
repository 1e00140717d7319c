"""Event counts from spike trains (numpy only): the same SynapseStepper and SynapseCounts that
run inside Lava's synapse models, driven over recorded steps. The definitions are in
imsnn_lava.numerics.events."""

from __future__ import annotations

import numpy as np

from imsnn_lava.ir.nodes import LayerSpec, ModelFile
from imsnn_lava.numerics.events import EventCounts
from imsnn_lava.numerics.synapse import SynapseStepper, synapse_table


def _layer_events(layer: LayerSpec, pre: np.ndarray, *, fixed: bool,
                  delivered: np.ndarray | None):
    """Run the layer's counting stepper over the T steps of (T, N, n_in) presynaptic spikes."""
    t_steps, n, n_in = pre.shape
    stepper = SynapseStepper(synapse_table(layer, fixed), n_in, n, count=True,
                             out_dtype=np.int64 if fixed else np.float64)
    spikes_in = np.zeros(n, np.int64)
    synops = np.zeros(n, np.int64)
    active = np.zeros(n, np.int64)
    hist = np.zeros(layer.phi_max, np.int64) if layer.synapse == "isi" else None
    for t in range(t_steps):
        _, (s_in, s_ops, act, h) = stepper.step(
            pre[t], None if delivered is None else delivered[t])
        spikes_in += s_in
        synops += s_ops
        active += act
        if hist is not None:
            hist += h
    return spikes_in, synops, active, hist


def count_events(layers: list[LayerSpec] | ModelFile, spikes: list[np.ndarray], *,
                 fixed: bool, currents: list[np.ndarray] | None = None) -> EventCounts:
    """Event counts of N samples from their spike trains.

    spikes: per layer including the input, (T, N, n) bool (or 0/1) arrays, as
    reference.simulate(...).spikes or the PyTorch network's NetOutput.spikes (as numpy) give.
    currents: optional per synapse layer (T, N, n_out) delivered input (reference.simulate
    with record=True); without it the delivered input is recomputed from the spikes with
    synapse.synapse_step (in the model's float or fixed-point tables), which is what the
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
