"""Shared code of the imsnn Lava processes (imported by the process folders' modules only).

Lava executes every module in a process folder when it searches for ProcessModels, so the
logic the ISI dense and conv synapses share lives here, outside those folders.

Time: Lava's `time_step` starts at 1. With T steps per sample, global step ts belongs to
sample period (ts - 1) // T at local step (ts - 1) % T; replica r of period p carries
sample p * R + r.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from imsnn_lava import reference
from imsnn_lava.format import LayerSpec
from imsnn_lava.reference import SynapseTable


def period_and_step(time_step: int, num_steps: int) -> tuple[int, int]:
    """(sample period, local step) of Lava's 1-based global time step."""
    return (time_step - 1) // num_steps, (time_step - 1) % num_steps


class AbstractSynapseProcess(AbstractProcess):
    """An ISI-modulated (or plain, K = 1) synapse layer on R replicas.

    Ports: s_in (R, n_in) spikes, a_out (R, n_out) synaptic input, sent one step late.
    Var: spike_counts (num_periods * R,): presynaptic spikes received per sample.
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


class SynapseModelMixin(PyLoihiProcessModel):
    """Step of an imsnn synapse, the same for dense and conv layers.

    At local step 0 of every sample it sends zeros (not the previous sample's buffer) and
    restarts the ISI counters at c0 before processing the step's input; otherwise it sends
    the buffer computed on the previous step, as Lava's Dense. The buffer is
    reference.synapse_step(s_in, counter, table); the counter then advances with
    reference.counter_step.
    """

    out_dtype: type = np.float64  # fixed-point models send int32

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
        self._counter = reference.counter_start((self._replicas, self._n_in), self._syn)

    def run_spk(self) -> None:
        period, step = period_and_step(self.time_step, self._num_steps)
        if step == 0:
            self._buf = self._zeros
            self._counter = reference.counter_start((self._replicas, self._n_in), self._syn)
        self.a_out.send(self._buf)
        spikes = self.s_in.recv() != 0
        if spikes.any():
            out = reference.synapse_step(spikes, self._counter, self._syn)
            self._buf = out.astype(self.out_dtype)
        else:
            self._buf = self._zeros
        self._counter = reference.counter_step(self._counter, spikes, self._syn.phi_max)
        lo = period * self._replicas
        if lo < self.spike_counts.shape[0]:
            self.spike_counts[lo:lo + self._replicas] += spikes.sum(axis=1)


class FloatSynapseModel(SynapseModelMixin):
    """Ports and Vars of the floating-point synapse models (float64 synaptic input)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, bool, precision=1)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    spike_counts: np.ndarray = LavaPyType(np.ndarray, np.int64)
    out_dtype = np.float64


class FixedSynapseModel(SynapseModelMixin):
    """Ports and Vars of the fixed-point synapse models: integer synaptic input (int32), as
    Lava's fixed-point LIF left-shifts a_in and so needs an integer array."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, bool, precision=1)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    spike_counts: np.ndarray = LavaPyType(np.ndarray, np.int64)
    out_dtype = np.int32


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
