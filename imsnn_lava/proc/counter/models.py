"""ProcessModel of SpikeCounter (the same for floating_pt and fixed_pt)."""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from imsnn_lava.proc.counter.process import SpikeCounter
from imsnn_lava.proc_common import period_and_step


@implements(proc=SpikeCounter, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt", "fixed_pt")
class PySpikeCounterModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, bool, precision=1)
    counts: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._replicas = proc_params["shape"][0]
        self._num_steps = proc_params["num_steps"]

    def run_spk(self) -> None:
        spikes = self.s_in.recv() != 0
        period, _ = period_and_step(self.time_step, self._num_steps)
        lo = period * self._replicas
        if lo < self.counts.shape[0]:
            self.counts[lo:lo + self._replicas] += spikes
