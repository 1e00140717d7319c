"""ProcessModel of Recorder (the same for floating_pt and fixed_pt; float64 storage)."""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from imsnn_lava.backends.host.proc.recorder.process import Recorder
from imsnn_lava.backends.host.wire import pack_words


@implements(proc=Recorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt", "fixed_pt")
class PyRecorderModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    data: np.ndarray = LavaPyType(np.ndarray, float)

    def run_spk(self) -> None:
        x = self.a_in.recv()
        i = self.time_step - 1
        if i < self.data.shape[0]:
            self.data[i] = pack_words(x != 0) if self.proc_params["pack"] else x
