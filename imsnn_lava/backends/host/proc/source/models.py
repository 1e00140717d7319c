"""ProcessModel of SpikeSource (the same for floating_pt and fixed_pt: bool spikes)."""

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from imsnn_lava.backends.host.proc.source.process import SpikeSource
from imsnn_lava.backends.host.wire import period_and_step
from imsnn_lava.numerics import encoding


@implements(proc=SpikeSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt", "fixed_pt")
class PySpikeSourceModel(PyLoihiProcessModel):
    """Fills a (T, R, n) buffer at the first step of each sample period, then sends a row
    per step. Nothing is set from outside while running."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        p = proc_params
        self._replicas, self._n = p["shape"]
        self._num_steps = p["num_steps"]
        self._num_samples = p["num_samples"]
        self._buf = np.zeros((self._num_steps, self._replicas, self._n), dtype=bool)

    def _load(self, period: int) -> None:
        p = self.proc_params
        lo = period * self._replicas
        hi = min(lo + self._replicas, self._num_samples)
        self._buf[:] = False
        if hi <= lo:
            return
        if p["packed"] is not None:
            bits = np.unpackbits(p["packed"][lo:hi], axis=-1, count=self._n)
            self._buf[:, :hi - lo] = bits.transpose(1, 0, 2).astype(bool)
        else:
            self._buf[:, :hi - lo] = encoding.encode(
                p["images"][lo:hi], p["sample_ids"][lo:hi], num_steps=self._num_steps,
                max_rate=p["max_rate"], seed=p["seed"])

    def run_spk(self) -> None:
        period, step = period_and_step(self.time_step, self._num_steps)
        if step == 0:
            self._load(period)
        self.s_out.send(self._buf[step])
