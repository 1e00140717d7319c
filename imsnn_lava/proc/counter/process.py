"""SpikeCounter: accumulates per-sample, per-neuron spike counts."""

from __future__ import annotations

from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class SpikeCounter(AbstractProcess):
    """Sink of (R, n) spikes. Var counts (num_periods * R, n): row p * R + r holds the
    spikes of replica r during sample period p (steps past the last period are ignored).
    Port: s_in (R, n)."""

    def __init__(self, *, shape: tuple[int, int], num_steps: int, num_periods: int,
                 name: str | None = None) -> None:
        r, n = (int(x) for x in shape)
        super().__init__(shape=(r, n), num_steps=int(num_steps),
                         num_periods=int(num_periods), name=name)
        self.s_in = InPort(shape=(r, n))
        self.counts = Var(shape=(int(num_periods) * r, n), init=0)
