"""The ISI synapse processes: ISIDense and ISIConv, ISI-modulated (or plain, K = 1) synapse
layers on R replicas. Their behaviours are in models.py (floating_pt and fixed_pt)."""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from imsnn_lava.backends.host.wire import packed_width
from imsnn_lava.ir.nodes import LayerSpec
from imsnn_lava.numerics.synapse import SynapseTable, synapse_table


class AbstractSynapseProcess(AbstractProcess):
    """An ISI-modulated (or plain, K = 1) synapse layer on R replicas.

    Ports: s_in (R, n_in) spikes, a_out (R, n_out) synaptic input, sent one step late.
    Vars, the layer's event counts (imsnn_lava.numerics.events has the definitions), counted by the
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
        return cls.from_table(synapse_table(layer, fixed), replicas=replicas,
                              n_in=layer.n_in, num_steps=num_steps, num_periods=num_periods,
                              name=name)

    @property
    def shape_out(self) -> tuple[int, int]:
        return self.proc_params["shape_out"]




class ISIDense(AbstractSynapseProcess):
    """A dense synapse layer (P = 1, Q = n_in); see AbstractSynapseProcess."""


class ISIConv(AbstractSynapseProcess):
    """A convolutional synapse layer (P output positions, Q = C_in k k kernel entries, -1 in
    `src` for zero padding); see AbstractSynapseProcess."""
