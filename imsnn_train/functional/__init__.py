"""The training-side math, once, as pure functions and autograd Functions (method.md)."""

from imsnn_train.functional.counter import (
    isi_counter,
    isi_gate,
    isi_phi,
    isi_phi_gated,
)
from imsnn_train.functional.lif import LIFParams, lif_run, lif_step
from imsnn_train.functional.lut import gaussian
from imsnn_train.functional.surrogate import spike

__all__ = [
    "LIFParams",
    "gaussian",
    "isi_counter",
    "isi_gate",
    "isi_phi",
    "isi_phi_gated",
    "lif_run",
    "lif_step",
    "spike",
]
