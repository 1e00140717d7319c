"""The synapse of one layer, written once: connectivity, fan-out, the per-bin table, one step
of synaptic input (the specification and its fast integer kernel), and the stateful
`SynapseStepper` (counters + Lava's one-step output buffer) that the reference simulator,
the event counters and the Lava synapse models all run. numpy + scipy only.

Conventions
- Spikes of a layer are flat per sample, channel-major (C, H, W), shape (R, n).
- A synapse layer is described by a connectivity map `src` of shape (P, Q): output position p
  reads input index src[p, q] (or -1 for zero padding) through kernel entry q. A dense layer
  is P = 1, Q = n_in. The per-bin weight table has shape (K * Q, C_out) (bin-major), so the
  input of output neuron (c, p) is  sum_q s[src[p, q]] * table[bin[src[p, q]] * Q + q, c].
- ISI bins: `isi.isi_bins`; a plain layer has K = 1 and bin 0 for every input.
- Each synapse hands its output on one step late, as Lava's Dense: the input delivered at
  step t is computed from the spikes of step t-1 (zero at a sample's first step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from imsnn_lava.ir.nodes import LayerSpec
from imsnn_lava.numerics import isi
from imsnn_lava.numerics.events import SynapseCounts

FLOAT32_EXACT = 2 ** 24  # integers below this are exact in float32


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


def fan_out_of(src: np.ndarray, n_in: int, c_out: int) -> np.ndarray:
    """Synapses leaving each input neuron, (n_in,) int64: the (output position, kernel entry)
    pairs that read it, times the output channels."""
    return np.bincount(src[src >= 0], minlength=int(n_in)).astype(np.int64) * int(c_out)


def fan_out(layer: LayerSpec) -> np.ndarray:
    """Synapses leaving each input neuron of a layer, shape (n_in,)."""
    return fan_out_of(connectivity(layer), layer.n_in, layer.weight.shape[0])


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

    def fan_out(self, n_in: int) -> np.ndarray:
        return fan_out_of(self.src, n_in, self.table.shape[1])


def flat_table(table: np.ndarray) -> np.ndarray:
    """(K, C_out, ...) per-bin weights -> the (K * Q, C_out) bin-major flat table."""
    k, c_out = table.shape[:2]
    return np.ascontiguousarray(table.reshape(k, c_out, -1).transpose(0, 2, 1).reshape(-1, c_out))


def synapse_table(layer: LayerSpec, fixed: bool) -> SynapseTable:
    """The layer's table: the integers (mantissa << exponent) in fixed point, else w * G."""
    if fixed:
        if layer.fixed is None:
            raise ValueError(f"layer {layer.name}: no fixed-point data")
        table = layer.fixed.table.weights_int().astype(np.float64)
    else:
        table = isi.weight_table(layer)
    return SynapseTable(src=connectivity(layer), table=flat_table(table),
                        phi_max=table.shape[0], c0=layer.c0, isi=layer.synapse == "isi")


def synapse_step(spikes: np.ndarray, counter: np.ndarray, syn: SynapseTable) -> np.ndarray:
    """Synaptic input caused by one step of presynaptic spikes (the specification).

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
        bins = isi.isi_bins(counter, syn.phi_max)[rr, src[pp, qq]]
    else:
        bins = np.zeros_like(qq)
    rows = rr * p + pp
    cols = bins * q + qq
    m = sp.csr_matrix((np.ones(rows.shape[0]), (rows, cols)), shape=(r * p, syn.table.shape[0]))
    out = m @ syn.table  # (R * P, C_out)
    return np.asarray(out).reshape(r, p, c_out).transpose(0, 2, 1).reshape(r, c_out * p)


class IntegerSynapseKernel:
    """synapse_step for integer tables, faster and equal.

    - the connectivity arrays (dense: none; conv: src with padding mapped to a zero input)
      are built once, and the sparse event matrix is assembled directly in CSR form (the
      events come out of np.nonzero grouped by output row);
    - the table is float32 when every possible sum of one step is below 2**24 (then every
      partial sum is an exactly representable integer, whatever the order), else float64
      (exact below 2**53). The float32 product reads half the memory: ~4x faster.
    Integer sums do not depend on the summation order, so the result equals synapse_step
    exactly (tests/test_counting.py checks it, dense and conv, ISI and plain, R = 1 and
    R > 1). Float tables keep synapse_step itself: there bit identity depends on the
    summation order.
    """

    def __init__(self, syn: SynapseTable, n_in: int):
        table = syn.table
        if not np.all(np.isfinite(table)) or not np.array_equal(table, np.rint(table)):
            raise ValueError("IntegerSynapseKernel needs an integer table")
        self.syn = syn
        self.p, self.q = syn.src.shape
        self.kq, self.c_out = table.shape
        self.n_in = int(n_in)
        self.phi_max = int(syn.phi_max)
        self.dense = self.p == 1 and self.q == self.n_in and np.array_equal(
            syn.src[0], np.arange(self.n_in))
        self.valid = syn.src >= 0
        self.src = np.where(self.valid, syn.src, 0)
        self.all_valid = bool(self.valid.all())
        worst = np.abs(table).reshape(self.phi_max, self.q, self.c_out).max(axis=0).sum(axis=0)
        self.max_abs_sum = float(worst.max(initial=0.0))
        self.dtype = np.float32 if self.max_abs_sum < FLOAT32_EXACT else np.float64
        self.table = np.ascontiguousarray(table, dtype=self.dtype)
        self._ones = np.ones(0, dtype=self.dtype)

    def step(self, spikes: np.ndarray, counter: np.ndarray) -> np.ndarray:
        """(R, n_in) bool spikes, (R, n_in) counters -> (R, n_out) synaptic input (table
        dtype, integer values), channel-major as synapse_step."""
        r = spikes.shape[0]
        if self.dense:
            rr, ii = np.nonzero(spikes)
            rows, qq = rr, ii
        else:
            active = spikes[:, self.src]
            if not self.all_valid:
                active &= self.valid
            rr, pp, qq = np.nonzero(active)
            rows = rr * self.p + pp
            ii = self.src[pp, qq]
        cols = isi.isi_bins(counter[rr, ii], self.phi_max) * self.q + qq if self.syn.isi \
            else qq
        nrows = r * self.p
        indptr = np.zeros(nrows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=nrows), out=indptr[1:])
        nnz = cols.shape[0]
        if self._ones.shape[0] < nnz:
            self._ones = np.ones(max(nnz, 2 * self._ones.shape[0]), dtype=self.dtype)
        m = sp.csr_matrix((self._ones[:nnz], cols, indptr), shape=(nrows, self.kq))
        out = m @ self.table
        if self.p == 1:
            return out
        return out.reshape(r, self.p, self.c_out).transpose(0, 2, 1).reshape(r, -1)


class SynapseStepper:
    """One synapse layer over time for R samples side by side: ISI counters and the one-step
    output buffer, with optional event counting. `step(spikes)` delivers the buffer computed
    on the previous step, counts the step's events, computes the next buffer and advances the
    counters; `reset()` starts a sample (counters at c0, nothing in the buffer).

    fast: compute with IntegerSynapseKernel (integer tables only), else synapse_step.
    count: also count the events of every step (SynapseCounts.step); `step` returns them.
    """

    def __init__(self, syn: SynapseTable, n_in: int, replicas: int, *, fast: bool = False,
                 count: bool = False, out_dtype=np.float64):
        self.syn = syn
        self.n_in = int(n_in)
        self.replicas = int(replicas)
        self.kernel = IntegerSynapseKernel(syn, n_in) if fast else None
        self.counts = SynapseCounts(fanout=syn.fan_out(n_in), phi_max=syn.phi_max,
                                    isi=syn.isi) if count else None
        self.out_dtype = out_dtype
        self.zeros = np.zeros((self.replicas, syn.n_out), dtype=out_dtype)
        self.reset()

    def reset(self) -> None:
        dtype = np.int32 if self.kernel is not None else np.int64
        self.counter = isi.counter_start((self.replicas, self.n_in), self.syn.c0,
                                         self.syn.phi_max, dtype=dtype)
        self.buffer = self.zeros

    def step(self, spikes: np.ndarray, delivered: np.ndarray | None = None):
        """spikes: (R, n_in) bool arriving this step. delivered: what the neurons receive this
        step when known already (recorded currents): then the next buffer is not computed.
        Returns (delivered (R, n_out), events or None)."""
        now = self.buffer if delivered is None else delivered
        events = self.counts.step(spikes, self.counter, now) if self.counts else None
        if delivered is not None:
            pass
        elif not spikes.any():
            self.buffer = self.zeros
        elif self.kernel is not None:
            self.buffer = self.kernel.step(spikes, self.counter).astype(self.out_dtype)
        else:
            self.buffer = synapse_step(spikes, self.counter, self.syn).astype(self.out_dtype)
        if self.kernel is not None:
            isi.counter_advance(self.counter, spikes, self.syn.phi_max)
        else:
            self.counter = isi.counter_step(self.counter, spikes, self.syn.phi_max)
        return now, events
