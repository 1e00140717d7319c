"""The numpy reference simulator of method.md: a whole network, layer by layer over all steps.

The training side's quantized evaluation runs `simulate(..., fixed=True)`; tests compare
PyTorch and every Lava backend against it. It drives the same `synapse.SynapseStepper` (with
the specification `synapse.synapse_step`, not the fast kernel) and the same LIF steps as the
Lava models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imsnn_lava.ir.nodes import ModelFile
from imsnn_lava.numerics.lif import lif_step_fixed, lif_step_float, neuron_params
from imsnn_lava.numerics.synapse import SynapseStepper, synapse_table


@dataclass
class SimResult:
    spikes: list[np.ndarray]  # per layer (T, R, n) bool, layer 0 = input
    currents: list[np.ndarray] | None  # per synapse layer (T, R, n_out): input delivered at t
    voltages: list[np.ndarray] | None  # per layer (T, R, n_out): v after the step

    def layer_counts(self) -> np.ndarray:
        """(R, L) spikes per sample of every non-input layer."""
        return np.stack([s.sum(axis=(0, 2)) for s in self.spikes[1:]], axis=1).astype(np.int64)

    def output_counts(self) -> np.ndarray:
        return self.spikes[-1].sum(axis=0).astype(np.int64)

    def predictions(self) -> np.ndarray:
        return predict(self.output_counts())


def predict(output_counts: np.ndarray) -> np.ndarray:
    """argmax of output spike counts; ties go to the lowest class index (as torch.argmax)."""
    return np.argmax(output_counts, axis=-1)


def simulate(model: ModelFile, spikes_in: np.ndarray, *, fixed: bool,
             record: bool = False) -> SimResult:
    """Run samples through the network, layer by layer over all steps.

    spikes_in: (T, R, n_in) bool, T = model.num_steps.
    """
    t_steps, r, _ = spikes_in.shape
    spikes = [spikes_in.astype(bool)]
    currents, voltages = ([], []) if record else (None, None)
    for layer in model.layers:
        dtype = np.int64 if fixed else np.float64
        stepper = SynapseStepper(synapse_table(layer, fixed), layer.n_in, r, out_dtype=dtype)
        a = np.zeros((t_steps, r, layer.n_out), dtype=dtype)
        for t in range(t_steps):
            a[t], _ = stepper.step(spikes[-1][t])
        params = neuron_params(layer, fixed)
        step = lif_step_fixed if fixed else lif_step_float
        u = np.zeros((r, layer.n_out), dtype=dtype)
        v = np.zeros((r, layer.n_out), dtype=dtype)
        s_out = np.zeros((t_steps, r, layer.n_out), dtype=bool)
        v_rec = np.zeros((t_steps, r, layer.n_out), dtype=dtype) if record else None
        for t in range(t_steps):
            s_out[t], u, v = step(a[t], u, v, params)
            if record:
                v_rec[t] = v
        spikes.append(s_out)
        if record:
            currents.append(a)
            voltages.append(v_rec)
    return SimResult(spikes=spikes, currents=currents, voltages=voltages)
