"""ProcessModel of SpikeCounter (the same for floating_pt and fixed_pt)."""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from imsnn_lava.backends.host.proc.counter.process import SpikeCounter
from imsnn_lava.backends.host.wire import pack_counts, pack_words, period_and_step


@implements(proc=SpikeCounter, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt", "fixed_pt")
class PySpikeCounterModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, bool, precision=1)
    counts: np.ndarray = LavaPyType(np.ndarray, np.int64)
    packed_counts: np.ndarray = LavaPyType(np.ndarray, np.int64)
    raster: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._replicas = proc_params["shape"][0]
        self._num_steps = proc_params["num_steps"]
        self._bits = proc_params["bits"]
        self._per = proc_params["per"]

    def run_spk(self) -> None:
        spikes = self.s_in.recv() != 0
        period, step = period_and_step(self.time_step, self._num_steps)
        if period == 0:
            self.raster[step] = pack_words(spikes[0])
        lo = period * self._replicas
        if lo < self.counts.shape[0]:
            hi = lo + self._replicas
            self.counts[lo:hi] += spikes
            if step == self._num_steps - 1:
                self.packed_counts[lo:hi] = pack_counts(self.counts[lo:hi], self._bits,
                                                        self._per)
