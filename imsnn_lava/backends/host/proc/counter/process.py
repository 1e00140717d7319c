"""SpikeCounter: accumulates per-sample, per-neuron spike counts."""

from __future__ import annotations

from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from imsnn_lava.backends.host.wire import count_packing, packed_width


class SpikeCounter(AbstractProcess):
    """Sink of (R, n) spikes. Port: s_in (R, n). Vars:
    - counts (num_periods * R, n): row p * R + r holds the spikes of replica r during sample
      period p (steps past the last period are ignored);
    - packed_counts (num_periods * R, ceil(n / k)): the same counts, k per value
      (wire.count_packing: k = 52 // bits, bits enough for num_steps), so reading
      them moves k times fewer values (Var.get moves one value per message);
    - raster (num_steps, ceil(n / 32)): the first sample's spikes (replica 0, period 0),
      bit-packed as wire.pack_words.
    """

    def __init__(self, *, shape: tuple[int, int], num_steps: int, num_periods: int,
                 name: str | None = None) -> None:
        r, n = (int(x) for x in shape)
        num_steps, num_periods = int(num_steps), int(num_periods)
        bits, per = count_packing(num_steps)
        super().__init__(shape=(r, n), num_steps=num_steps, num_periods=num_periods,
                         bits=bits, per=per, name=name)
        self.s_in = InPort(shape=(r, n))
        self.counts = Var(shape=(num_periods * r, n), init=0)
        self.packed_counts = Var(shape=(num_periods * r, -(-n // per)), init=0)
        self.raster = Var(shape=(num_steps, packed_width(n)), init=0)
