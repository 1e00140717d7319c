"""Shared code of the imsnn Lava processes (imported by the process folders' modules only).

Lava executes every module in a process folder when it searches for ProcessModels, so the
logic the ISI dense and conv synapses share lives here, outside those folders.

Time: Lava's `time_step` starts at 1. With T steps per sample, global step ts belongs to
sample period (ts - 1) // T at local step (ts - 1) % T; replica r of period p carries
sample p * R + r.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from imsnn_lava import reference
from imsnn_lava.counting import SynapseCounts
from imsnn_lava.format import LayerSpec
from imsnn_lava.reference import SynapseTable


def period_and_step(time_step: int, num_steps: int) -> tuple[int, int]:
    """(sample period, local step) of Lava's 1-based global time step."""
    return (time_step - 1) // num_steps, (time_step - 1) % num_steps


class AbstractSynapseProcess(AbstractProcess):
    """An ISI-modulated (or plain, K = 1) synapse layer on R replicas.

    Ports: s_in (R, n_in) spikes, a_out (R, n_out) synaptic input, sent one step late.
    Vars, the layer's event counts (imsnn_lava.counting has the definitions), counted by the
    ProcessModel as the events happen; row p * R + r is replica r's sample of period p:
    - spike_counts (num_periods * R,): presynaptic spikes received per sample (spikes_in);
    - synops (num_periods * R,): synaptic events per sample (spikes x fan-out);
    - active_updates (num_periods * R,): (step, neuron) pairs given non-zero input;
    - isi_histogram (phi_max,): ISI bins of the arriving spikes' lookups, all samples.
    Var raster (num_steps, ceil(n_in / 32)): the first sample's incoming spikes (replica 0,
    period 0), bit-packed as pack_words: the previous layer's spike raster, free to record.
    The SynapseTable arrays travel as proc_params (read-only, picklable numpy arrays).
    """

    def __init__(self, *, shape_in: tuple[int, int], src: np.ndarray, table: np.ndarray,
                 phi_max: int, c0: int, isi: bool, num_steps: int, num_periods: int = 1,
                 name: str | None = None, **kwargs) -> None:
        r, n_in = (int(x) for x in shape_in)
        src = np.ascontiguousarray(src, dtype=np.int64)
        table = np.ascontiguousarray(table, dtype=np.float64)
        phi_max, c0, num_steps, num_periods = int(phi_max), int(c0), int(num_steps), int(
            num_periods)
        p, q = src.shape
        if table.ndim != 2 or table.shape[0] != phi_max * q:
            raise ValueError(f"table: expected shape ({phi_max * q}, C_out), got {table.shape}")
        if src.max(initial=-1) >= n_in:
            raise ValueError(f"src refers to input {src.max()} but n_in = {n_in}")
        if num_steps < 1 or num_periods < 1 or r < 1:
            raise ValueError("num_steps, num_periods and the replica count must be >= 1")
        n_out = p * table.shape[1]
        super().__init__(shape_in=(r, n_in), shape_out=(r, n_out), src=src, table=table,
                         phi_max=phi_max, c0=c0, isi=bool(isi), num_steps=num_steps,
                         num_periods=num_periods, name=name, **kwargs)
        self.s_in = InPort(shape=(r, n_in))
        self.a_out = OutPort(shape=(r, n_out))
        self.spike_counts = Var(shape=(num_periods * r,), init=0)
        self.synops = Var(shape=(num_periods * r,), init=0)
        self.active_updates = Var(shape=(num_periods * r,), init=0)
        self.isi_histogram = Var(shape=(phi_max,), init=0)
        self.raster = Var(shape=(num_steps, packed_width(n_in)), init=0)

    @classmethod
    def from_table(cls, syn: SynapseTable, *, replicas: int, n_in: int, num_steps: int,
                   num_periods: int = 1, name: str | None = None):
        return cls(shape_in=(replicas, n_in), src=syn.src, table=syn.table,
                   phi_max=syn.phi_max, c0=syn.c0, isi=syn.isi, num_steps=num_steps,
                   num_periods=num_periods, name=name)

    @classmethod
    def from_layer(cls, layer: LayerSpec, *, fixed: bool, replicas: int, num_steps: int,
                   num_periods: int = 1, name: str | None = None):
        """The synapse of a model-file layer (fixed: the integer tables, else float64)."""
        return cls.from_table(reference.synapse_table(layer, fixed), replicas=replicas,
                              n_in=layer.n_in, num_steps=num_steps, num_periods=num_periods,
                              name=name)

    @property
    def shape_out(self) -> tuple[int, int]:
        return self.proc_params["shape_out"]


def table_fan_out(syn: SynapseTable, n_in: int) -> np.ndarray:
    """Synapses leaving each input, from the connectivity: equals reference.fan_out(layer)."""
    src = syn.src
    return np.bincount(src[src >= 0], minlength=n_in).astype(np.int64) * syn.table.shape[1]


# ---------------------------------------------------------------------------------------------
# the event-driven step of integer (fixed-point) tables

FLOAT32_EXACT = 2 ** 24


class IntegerSynapseKernel:
    """reference.synapse_step and counter_step for integer tables, faster and equal.

    - the ISI counter is updated in place (int32, held at phi_max, so the bin is counter - 1);
    - the connectivity arrays (dense: none; conv: src with padding mapped to a zero input)
      are built once, and the sparse event matrix is assembled directly in CSR form (the
      events come out of np.nonzero grouped by output row);
    - the table is float32 when every possible sum of one step is below 2**24 (then every
      partial sum is an exactly representable integer, whatever the order), else float64
      (exact below 2**53). The float32 product reads half the memory: ~4x faster.
    Integer sums do not depend on the summation order, so the result equals
    reference.synapse_step exactly (tests/test_counting.py checks it, dense and conv, ISI and
    plain, R = 1 and R > 1). Float tables keep reference.synapse_step itself: there bit
    identity depends on the summation order.
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

    def counter_start(self, replicas: int) -> np.ndarray:
        return np.full((replicas, self.n_in), min(self.syn.c0, self.phi_max), dtype=np.int32)

    def counter_advance(self, counter: np.ndarray, spikes: np.ndarray) -> None:
        """In place: c = 1 where a spike, else min(c + 1, phi_max) (reference.counter_step)."""
        counter += 1
        np.minimum(counter, self.phi_max, out=counter)
        counter[spikes] = 1

    def step(self, spikes: np.ndarray, counter: np.ndarray) -> np.ndarray:
        """(R, n_in) bool spikes, (R, n_in) counters -> (R, n_out) synaptic input (table
        dtype, integer values), channel-major as reference.synapse_step."""
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
        cols = (counter[rr, ii] - 1) * self.q + qq if self.syn.isi else qq
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


class SynapseModelMixin(PyLoihiProcessModel):
    """Step of an imsnn synapse, the same for dense and conv layers.

    At local step 0 of every sample it sends zeros (not the previous sample's buffer) and
    restarts the ISI counters at c0 before processing the step's input; otherwise it sends
    the buffer computed on the previous step, as Lava's Dense. The buffer is
    reference.synapse_step(s_in, counter, table) (float tables) or the equal
    IntegerSynapseKernel.step (fixed point); the counter then advances as
    reference.counter_step. Each step's events are counted with counting.SynapseCounts.step
    into the Vars (spikes in, synops, active updates from the buffer sent, ISI histogram).
    """

    out_dtype: type = np.float64  # fixed-point models send int32
    integer_kernel: bool = False

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        p = proc_params
        self._syn = SynapseTable(src=p["src"], table=p["table"], phi_max=p["phi_max"],
                                 c0=p["c0"], isi=p["isi"])
        self._num_steps = int(p["num_steps"])
        self._replicas, self._n_in = p["shape_in"]
        self._n_out = p["shape_out"][1]
        self._zeros = np.zeros((self._replicas, self._n_out), dtype=self.out_dtype)
        self._buf = self._zeros
        self._kernel = IntegerSynapseKernel(self._syn, self._n_in) if self.integer_kernel \
            else None
        self._counter = self._counter_start()
        self._counts = SynapseCounts(fanout=table_fan_out(self._syn, self._n_in),
                                     phi_max=self._syn.phi_max, isi=self._syn.isi)
        self._rows = self._replicas * int(p["num_periods"])

    def _counter_start(self) -> np.ndarray:
        if self._kernel is not None:
            return self._kernel.counter_start(self._replicas)
        return reference.counter_start((self._replicas, self._n_in), self._syn)

    def run_spk(self) -> None:
        period, step = period_and_step(self.time_step, self._num_steps)
        if step == 0:
            self._buf = self._zeros
            self._counter = self._counter_start()
        self.a_out.send(self._buf)
        spikes = self.s_in.recv() != 0
        if period == 0:
            self.raster[step] = pack_words(spikes[0])
        lo = period * self._replicas
        if lo < self._rows:
            hi = lo + self._replicas
            s_in, synops, active, hist = self._counts.step(spikes, self._counter, self._buf)
            self.spike_counts[lo:hi] += s_in
            self.synops[lo:hi] += synops
            self.active_updates[lo:hi] += active
            if hist is not None:
                self.isi_histogram += hist
        if not spikes.any():
            self._buf = self._zeros
        elif self._kernel is not None:
            self._buf = self._kernel.step(spikes, self._counter).astype(self.out_dtype)
        else:
            self._buf = reference.synapse_step(spikes, self._counter, self._syn).astype(
                self.out_dtype)
        if self._kernel is not None:
            self._kernel.counter_advance(self._counter, spikes)
        else:
            self._counter = reference.counter_step(self._counter, spikes, self._syn.phi_max)


class FloatSynapseModel(SynapseModelMixin):
    """Ports and Vars of the floating-point synapse models (float64 synaptic input)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, bool, precision=1)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    spike_counts: np.ndarray = LavaPyType(np.ndarray, np.int64)
    synops: np.ndarray = LavaPyType(np.ndarray, np.int64)
    active_updates: np.ndarray = LavaPyType(np.ndarray, np.int64)
    isi_histogram: np.ndarray = LavaPyType(np.ndarray, np.int64)
    raster: np.ndarray = LavaPyType(np.ndarray, np.int64)
    out_dtype = np.float64


class FixedSynapseModel(SynapseModelMixin):
    """Ports and Vars of the fixed-point synapse models: integer synaptic input (int32), as
    Lava's fixed-point LIF left-shifts a_in and so needs an integer array. Computed with the
    IntegerSynapseKernel."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, bool, precision=1)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    spike_counts: np.ndarray = LavaPyType(np.ndarray, np.int64)
    synops: np.ndarray = LavaPyType(np.ndarray, np.int64)
    active_updates: np.ndarray = LavaPyType(np.ndarray, np.int64)
    isi_histogram: np.ndarray = LavaPyType(np.ndarray, np.int64)
    raster: np.ndarray = LavaPyType(np.ndarray, np.int64)
    out_dtype = np.int32
    integer_kernel = True


# ---------------------------------------------------------------------------------------------
# bit packing: Var.get moves values one message each, so spike trains travel 32 to a value


WORD_BITS = 32


def packed_width(n: int) -> int:
    return -(-int(n) // WORD_BITS)


def pack_words(bits: np.ndarray) -> np.ndarray:
    """(..., n) bool -> (..., ceil(n / 32)) int64 words, bit i of word w = element 32 w + i."""
    bits = np.asarray(bits, dtype=bool)
    n = bits.shape[-1]
    width = packed_width(n)
    pad = width * WORD_BITS - n
    if pad:
        bits = np.concatenate([bits, np.zeros(bits.shape[:-1] + (pad,), bool)], axis=-1)
    by = np.packbits(bits, axis=-1, bitorder="little")
    return np.ascontiguousarray(by).view("<u4").astype(np.int64)


def unpack_words(words: np.ndarray, n: int) -> np.ndarray:
    """Inverse of pack_words (words may come back as float64 from Var.get)."""
    w = np.ascontiguousarray(np.asarray(words).astype(np.int64).astype("<u4"))
    bits = np.unpackbits(w.view(np.uint8), axis=-1, bitorder="little")
    return bits[..., :n].astype(bool)


# ---------------------------------------------------------------------------------------------
# count packing: per-sample spike counts (at most num_steps each) travel several to a value

COUNT_WORD_BITS = 52  # Var.get returns float64: integers below 2**53 are exact


def count_packing(num_steps: int) -> tuple[int, int]:
    """(bits per count, counts per value) for counts in 0..num_steps."""
    bits = max(1, int(num_steps).bit_length())
    return bits, max(1, COUNT_WORD_BITS // bits)


def pack_counts(counts: np.ndarray, bits: int, per: int) -> np.ndarray:
    """(..., n) counts in [0, 2**bits) -> (..., ceil(n / per)) int64, count j of value w at
    bits (j % per) * bits of value j // per."""
    counts = np.asarray(counts, dtype=np.int64)
    n = counts.shape[-1]
    width = -(-n // per)
    pad = width * per - n
    if pad:
        counts = np.concatenate([counts, np.zeros(counts.shape[:-1] + (pad,), np.int64)],
                                axis=-1)
    shifts = np.arange(per, dtype=np.int64) * bits
    return np.left_shift(counts.reshape(counts.shape[:-1] + (width, per)), shifts).sum(axis=-1)


def unpack_counts(values: np.ndarray, n: int, bits: int, per: int) -> np.ndarray:
    """Inverse of pack_counts (values may come back as float64 from Var.get)."""
    v = np.rint(np.asarray(values, dtype=np.float64)).astype(np.int64)
    shifts = np.arange(per, dtype=np.int64) * bits
    out = np.right_shift(v[..., None], shifts) & ((1 << bits) - 1)
    return out.reshape(v.shape[:-1] + (-1,))[..., :n]
