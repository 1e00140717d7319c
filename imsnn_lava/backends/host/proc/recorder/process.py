"""Recorder: stores what a port carries at every step (spikes bit-packed, or values)."""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from imsnn_lava.backends.host.wire import packed_width


class Recorder(AbstractProcess):
    """Sink that keeps the first num_steps steps of its input.

    shape: the port shape (..., n). pack=True stores spikes as 32-bit words (Var.get moves one
    value per message, so packing makes reading spike trains 32x faster); pack=False stores
    the values (float64, exact for the integer currents of fixed point).
    Var data: (num_steps, ..., n) or packed (num_steps, ..., ceil(n / 32)).
    """

    def __init__(self, *, shape: tuple[int, ...], num_steps: int, pack: bool = False,
                 name: str | None = None) -> None:
        shape = tuple(int(x) for x in shape)
        num_steps = int(num_steps)
        data_shape = (num_steps,) + (shape[:-1] + (packed_width(shape[-1]),) if pack else shape)
        super().__init__(shape=shape, num_steps=num_steps, pack=bool(pack), name=name)
        self.a_in = InPort(shape=shape)
        self.data = Var(shape=data_shape, init=np.zeros(data_shape))
