"""Numpy reference of method.md: the deployment-side math, written once.

Lava's imsnn process models call the step functions here; the training side's quantized
evaluation runs `simulate(..., fixed=True)`; tests compare PyTorch and Lava against it.

Conventions
- Spikes of a layer are flat per sample, channel-major (C, H, W), shape (R, n).
- A synapse layer is described by a connectivity map `src` of shape (P, Q): output position p
  reads input index src[p, q] (or -1 for zero padding) through kernel entry q. A dense layer
  is P = 1, Q = n_in. The per-bin weight table has shape (K, Q, C_out), so the input of
  output neuron (c, p) is  sum_q s[src[p, q]] * table[bin[src[p, q]], q, c].
- ISI bins: an input's bin is min(c, phi_max) - 1, with the counter c of method.md section 2;
  a plain layer has K = 1 and bin 0 for every input.
- Each synapse hands its output on one step late, as Lava's Dense: the input of layer l at
  step t is computed from layer l-1's spikes at step t-1 (zero at t = 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from imsnn_lava import fixed_point as fp
from imsnn_lava.format import LayerSpec, ModelFile

# ---------------------------------------------------------------------------------------------
# the ISI-modulated synapse


def gaussian(phi: np.ndarray | float, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """exp(-(phi - mu)^2 / (2 sigma^2)), method.md section 2."""
    return np.exp(-((phi - mu) ** 2) / (2.0 * sigma**2))


def weight_table(layer: LayerSpec) -> np.ndarray:
    """Real effective weights per ISI bin, shape (K, *weight.shape): w * G[k], k = 1..phi_max."""
    if layer.synapse == "plain":
        return layer.weight[None].astype(np.float64)
    bins = np.arange(1, layer.phi_max + 1, dtype=np.float64)
    bins = bins.reshape((-1,) + (1,) * layer.weight.ndim)
    return layer.weight[None] * gaussian(bins, layer.mu[None], layer.sigma[None])


def connectivity(layer: LayerSpec) -> np.ndarray:
    """The (P, Q) map from (output position, kernel entry) to flat input index, -1 = padding."""
    if layer.kind == "dense":
        return np.arange(layer.n_in, dtype=np.int64)[None, :]
    c_in, h, w = layer.in_shape
    k = layer.weight.shape[-1]
    _, oh, ow = layer.out_shape
    s, pad = layer.stride, layer.padding
    oy, ox = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    ci, dy, dx = np.meshgrid(np.arange(c_in), np.arange(k), np.arange(k), indexing="ij")
    y = oy.reshape(-1, 1) * s - pad + dy.reshape(1, -1)
    x = ox.reshape(-1, 1) * s - pad + dx.reshape(1, -1)
    inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    src = ci.reshape(1, -1) * h * w + y * w + x
    return np.where(inside, src, -1).astype(np.int64)


def fan_out(layer: LayerSpec) -> np.ndarray:
    """Synapses leaving each input neuron, shape (n_in,)."""
    src = connectivity(layer)
    counts = np.bincount(src[src >= 0], minlength=layer.n_in)
    return counts * layer.weight.shape[0]


@dataclass(frozen=True)
class SynapseTable:
    """What a synapse step needs: connectivity, flat table (K*Q, C_out), bins, counter start."""

    src: np.ndarray  # (P, Q)
    table: np.ndarray  # (K * Q, C_out) float64 (integers in fixed point, exact in float64)
    phi_max: int  # K; 1 for a plain layer
    c0: int
    isi: bool

    @property
    def n_out(self) -> int:
        return self.src.shape[0] * self.table.shape[1]


def synapse_table(layer: LayerSpec, fixed: bool) -> SynapseTable:
    if fixed:
        if layer.fixed is None:
            raise ValueError(f"layer {layer.name}: no fixed-point data")
        table = layer.fixed.table.weights_int().astype(np.float64)
    else:
        table = weight_table(layer)
    k = table.shape[0]
    c_out = table.shape[1]
    flat = table.reshape(k, c_out, -1).transpose(0, 2, 1).reshape(-1, c_out)
    return SynapseTable(src=connectivity(layer), table=np.ascontiguousarray(flat),
                        phi_max=k, c0=layer.c0, isi=layer.synapse == "isi")


def isi_bins(counter: np.ndarray, phi_max: int) -> np.ndarray:
    """Table bin of each input: min(c, phi_max) - 1."""
    return np.minimum(counter, phi_max) - 1


def counter_start(shape: tuple[int, ...], syn: SynapseTable) -> np.ndarray:
    return np.full(shape, syn.c0, dtype=np.int64)


def counter_step(counter: np.ndarray, spikes: np.ndarray, phi_max: int) -> np.ndarray:
    """c[t+1] = 1 + c[t] (1 - s[t]), held at phi_max (only min(c, phi_max) is ever used)."""
    return np.where(spikes, 1, np.minimum(counter + 1, phi_max))


def synapse_step(spikes: np.ndarray, counter: np.ndarray, syn: SynapseTable) -> np.ndarray:
    """Synaptic input caused by one step of presynaptic spikes.

    spikes: (R, n_in) bool; counter: (R, n_in) ISI counters at this step.
    Returns (R, C_out * P) float64, channel-major, to be delivered on the next step.
    """
    r = spikes.shape[0]
    p, q = syn.src.shape
    c_out = syn.table.shape[1]
    valid = syn.src >= 0
    src = np.where(valid, syn.src, 0)
    active = spikes[:, src] & valid[None]  # (R, P, Q)
    rr, pp, qq = np.nonzero(active)
    if syn.isi:
        bins = isi_bins(counter, syn.phi_max)[rr, src[pp, qq]]
    else:
        bins = np.zeros_like(qq)
    rows = rr * p + pp
    cols = bins * q + qq
    m = sp.csr_matrix((np.ones(rows.shape[0]), (rows, cols)), shape=(r * p, syn.table.shape[0]))
    out = m @ syn.table  # (R * P, C_out)
    return np.asarray(out).reshape(r, p, c_out).transpose(0, 2, 1).reshape(r, c_out * p)


# ---------------------------------------------------------------------------------------------
# LIF neurons, exactly as Lava's LIF process models


@dataclass(frozen=True)
class FloatNeuron:
    du: float
    dv: float
    vth: float


@dataclass(frozen=True)
class FixedNeuron:
    du: int  # register value; effective decay du + DU_OFFSET
    dv: int
    vth: int  # mantissa; compared as vth << VTH_SHIFT


def lif_step_float(a_in, u, v, p: FloatNeuron):
    """Lava PyLifModelFloat: returns (spikes, u, v)."""
    u = u * (1 - p.du)
    u = u + a_in
    v = v * (1 - p.dv) + u + 0.0
    s = v > p.vth
    v = np.where(s, 0.0, v)
    return s, u, v


def lif_step_fixed(a_in, u, v, p: FixedNeuron):
    """Lava PyLifModelBitAcc (bias 0): integers in, integers out. Returns (spikes, u, v)."""
    u = fp.decay_int(u, p.du + fp.DU_OFFSET) + np.left_shift(a_in.astype(np.int64), fp.ACT_SHIFT)
    u = fp.wrap_u(u)
    v = fp.clip_v(fp.decay_int(v, p.dv + fp.DV_OFFSET) + u)
    s = v > (p.vth << fp.VTH_SHIFT)
    v = np.where(s, 0, v)
    return s, u, v


def neuron_params(layer: LayerSpec, fixed: bool):
    if fixed:
        return FixedNeuron(du=layer.fixed.du, dv=layer.fixed.dv, vth=layer.fixed.vth)
    return FloatNeuron(du=layer.du, dv=layer.dv, vth=layer.vth)


# ---------------------------------------------------------------------------------------------
# a whole network


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
        syn = synapse_table(layer, fixed)
        dtype = np.int64 if fixed else np.float64
        a = np.zeros((t_steps, r, layer.n_out), dtype=dtype)
        counter = counter_start(spikes[-1].shape[1:], syn)
        for t in range(t_steps - 1):
            out = synapse_step(spikes[-1][t], counter, syn)
            a[t + 1] = out.astype(np.int64) if fixed else out
            counter = counter_step(counter, spikes[-1][t], syn.phi_max)
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
