"""ProcessModels of ISIDense and ISIConv: floating_pt (float64 synaptic input, the
specification numerics.synapse.synapse_step) and fixed_pt (int32 input, the equal
IntegerSynapseKernel on the file's integer tables)."""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from imsnn_lava.backends.fused.proc.isi_synapse.process import ISIConv, ISIDense
from imsnn_lava.backends.host.wire import pack_words, period_and_step
from imsnn_lava.numerics.synapse import SynapseStepper, SynapseTable


class SynapseModelMixin(PyLoihiProcessModel):
    """Step of an imsnn synapse, the same for dense and conv layers: a
    numerics.synapse.SynapseStepper (float tables: the specification synapse_step; fixed
    point: the equal IntegerSynapseKernel) with event counting.

    At local step 0 of every sample the stepper is reset (zeros sent, not the previous
    sample's buffer; ISI counters restarted at c0) before the step's input is taken;
    otherwise it sends the buffer computed on the previous step, as Lava's Dense. Each step's
    events (SynapseCounts.step) are added into the Vars (spikes in, synops, active updates
    from the buffer sent, ISI histogram).
    """

    out_dtype: type = np.float64  # fixed-point models send int32
    integer_kernel: bool = False

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        p = proc_params
        syn = SynapseTable(src=p["src"], table=p["table"], phi_max=p["phi_max"], c0=p["c0"],
                           isi=p["isi"])
        self._num_steps = int(p["num_steps"])
        self._replicas, n_in = p["shape_in"]
        self._stepper = SynapseStepper(syn, n_in, self._replicas, fast=self.integer_kernel,
                                       count=True, out_dtype=self.out_dtype)
        self._rows = self._replicas * int(p["num_periods"])

    def run_spk(self) -> None:
        period, step = period_and_step(self.time_step, self._num_steps)
        if step == 0:
            self._stepper.reset()
        spikes = self.s_in.recv() != 0
        delivered, (s_in, synops, active, hist) = self._stepper.step(spikes)
        self.a_out.send(delivered)
        if period == 0:
            self.raster[step] = pack_words(spikes[0])
        lo = period * self._replicas
        if lo < self._rows:
            hi = lo + self._replicas
            self.spike_counts[lo:hi] += s_in
            self.synops[lo:hi] += synops
            self.active_updates[lo:hi] += active
            if hist is not None:
                self.isi_histogram += hist


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


@implements(proc=ISIDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyISIDenseModelFloat(FloatSynapseModel):
    """Float64 synaptic input, computed by synapse_step."""


@implements(proc=ISIDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyISIDenseModelFixed(FixedSynapseModel):
    """Integer synaptic input (int32), computed by the IntegerSynapseKernel."""


@implements(proc=ISIConv, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyISIConvModelFloat(FloatSynapseModel):
    """Float64 synaptic input, computed by synapse_step."""


@implements(proc=ISIConv, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyISIConvModelFixed(FixedSynapseModel):
    """Integer synaptic input (int32), computed by the IntegerSynapseKernel."""
