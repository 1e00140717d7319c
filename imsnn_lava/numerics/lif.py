"""LIF neurons exactly as Lava's LIF process models (floating and bit-accurate fixed point),
method.md section 1; numpy only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imsnn_lava.ir import fixed_point as fp
from imsnn_lava.ir.nodes import LayerSpec


@dataclass(frozen=True)
class FloatNeuron:
    du: float
    dv: float
    vth: float


@dataclass(frozen=True)
class FixedNeuron:
    du: int  # register value; effective decay du + DU_OFFSET
    dv: int
    vth: int  # mantissa; compared as vth << VTH_SHIFT


def lif_step_float(a_in, u, v, p: FloatNeuron):
    """Lava PyLifModelFloat: returns (spikes, u, v)."""
    u = u * (1 - p.du)
    u = u + a_in
    v = v * (1 - p.dv) + u + 0.0
    s = v > p.vth
    v = np.where(s, 0.0, v)
    return s, u, v


def lif_step_fixed(a_in, u, v, p: FixedNeuron):
    """Lava PyLifModelBitAcc (bias 0): integers in, integers out. Returns (spikes, u, v)."""
    u = fp.decay_int(u, p.du + fp.DU_OFFSET) + np.left_shift(a_in.astype(np.int64), fp.ACT_SHIFT)
    u = fp.wrap_u(u)
    v = fp.clip_v(fp.decay_int(v, p.dv + fp.DV_OFFSET) + u)
    s = v > (p.vth << fp.VTH_SHIFT)
    v = np.where(s, 0, v)
    return s, u, v


def neuron_params(layer: LayerSpec, fixed: bool):
    if fixed:
        return FixedNeuron(du=layer.fixed.du, dv=layer.fixed.dv, vth=layer.fixed.vth)
    return FloatNeuron(du=layer.du, dv=layer.dv, vth=layer.vth)



#####NET
