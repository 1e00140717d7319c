"""Loihi fixed-point numerics: every constant and conversion, both directions (numpy only).

The integers here are exactly those of Lava's bit-accurate models
(`lava.proc.lif.models.AbstractPyLifModelFixed`, `lava.proc.dense.models.PyDenseModelBitAcc`):

- LIF state u, v: 24-bit signed. u wraps modulo 2**24, v saturates at +-(2**23 - 1).
- Decays du, dv: 12-bit unsigned; the effective current decay is du + 1 (Loihi's ds_offset),
  the effective voltage decay is dv. A decay d scales x by (4096 - d) / 4096, rounding
  toward zero.
- Threshold vth: 17-bit unsigned mantissa, compared as vth << 6.
- Synaptic input: added to u as a_in << 6.
- Weights: 8-bit mantissas with an exponent. With mixed-sign weights Lava's Dense keeps the
  sign in the ninth bit and drops the least significant bit, so mantissas are even numbers;
  imsnn uses even mantissas in [-254, 254] for every layer, which all of Lava's sign modes
  pass unchanged. An ISI layer stores one exponent per ISI bin of its lookup table.

Scaling: a layer's real values (weights, threshold) are multiplied by a per-layer power of
two `scale` and rounded. The scale is the largest power of two (at most 2**max_scale_log2)
for which no input can overflow the current u in one step and the threshold fits, so the
dynamics never wrap. Values that cannot be represented raise FixedPointError naming the layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from imsnn_lava.errors import FixedPointError

DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT  # 4096
DECAY_MAX = DECAY_UNITY - 1  # 12-bit du, dv
DU_OFFSET = 1  # Loihi's ds_offset: effective current decay = du + 1
DV_OFFSET = 0  # Loihi's dm_offset
UV_BITS = 24
UV_LIMIT = 1 << (UV_BITS - 1)  # 2**23
VTH_SHIFT = 6
ACT_SHIFT = 6
VTH_BITS = 17
VTH_MAX = (1 << VTH_BITS) - 1
WEIGHT_MANT_MAX = 254  # even mantissas, sign in the ninth bit (Lava's mixed sign mode)
WEIGHT_MANT_STEP = 2
WEIGHT_EXP_MIN = 0  # non-negative exponents keep per-bin sums exact (no right shifts)
WEIGHT_EXP_MAX = 7
# Largest |a_in| per step: Lava declares the LIF's a_in port (and Dense's a_out) as 16-bit
# signed, so the worst-case input must fit int16. Then a_in << ACT_SHIFT stays inside u, with
# room for the threshold: v <= vth << 6 + |u| < 2**23.
INPUT_LIMIT = (1 << 15) - 1
VTH_LIMIT = 1 << (UV_BITS - 2 - VTH_SHIFT)  # 2**16


def decay_to_int(decay: float, offset: int, name: str = "decay") -> int:
    """Float decay in (0, 1] -> 12-bit register value (effective decay = value + offset)."""
    value = int(round(float(decay) * DECAY_UNITY)) - offset
    if not 0 <= value <= DECAY_MAX:
        raise FixedPointError(
            f"{name} = {decay}: needs register value {value}, outside [0, {DECAY_MAX}]"
        )
    return value


def int_to_decay(value: int, offset: int) -> float:
    return (int(value) + offset) / DECAY_UNITY


def decay_int(x: np.ndarray, effective_decay: int) -> np.ndarray:
    """x * (4096 - d) / 4096, rounded toward zero, as Lava's fixed-point LIF (int64 math)."""
    prod = x.astype(np.int64) * (DECAY_UNITY - int(effective_decay))
    return np.sign(prod) * np.right_shift(np.abs(prod), DECAY_SHIFT)


def wrap_u(u: np.ndarray) -> np.ndarray:
    """Lava's 24-bit wrap of the current (its exact two-step formula)."""
    wrapped = np.where(u > UV_LIMIT, u - 2 * UV_LIMIT, u)
    return np.where(wrapped <= -UV_LIMIT, u + 2 * UV_LIMIT, wrapped)


def clip_v(v: np.ndarray) -> np.ndarray:
    return np.clip(v, -UV_LIMIT + 1, UV_LIMIT - 1)


@dataclass(frozen=True)
class QuantizedTable:
    """Per-bin weight mantissas and exponents: weight_int[k] = mant[k] << exp[k]."""

    mant: np.ndarray  # int16, shape (K, *weight_shape), even values in [-254, 254]
    exp: np.ndarray  # int8, shape (K,), in [WEIGHT_EXP_MIN, WEIGHT_EXP_MAX]

    def weights_int(self) -> np.ndarray:
        shift = self.exp.astype(np.int64).reshape((-1,) + (1,) * (self.mant.ndim - 1))
        return np.left_shift(self.mant.astype(np.int64), shift)


def choose_scale(table: np.ndarray, vth: float, max_scale_log2: int, layer: str,
                 exponent_zero: bool = False) -> int:
    """The per-layer power-of-two scale from real values to integers.

    table: (K, n_out, Q) real effective weights, Q inputs per output position.
    The worst case one-step input to a neuron, sum over inputs of max over bins |w|, times the
    scale must stay below INPUT_LIMIT; vth * scale must stay below VTH_LIMIT.
    exponent_zero: also keep every weight within one mantissa (exponent 0), as lava-dl netx
    needs: it reads dense weights as 8-bit values and ignores exponents.
    """
    worst = float(np.abs(table).max(axis=0).sum(axis=-1).max()) if table.size else 0.0
    log2 = max_scale_log2
    if worst > 0:
        log2 = min(log2, math.floor(math.log2(INPUT_LIMIT / worst)))
    peak = float(np.abs(table).max()) if table.size else 0.0
    if exponent_zero and peak > 0:
        log2 = min(log2, math.floor(math.log2((WEIGHT_MANT_MAX + 1) / peak)))
    log2 = min(log2, math.floor(math.log2(VTH_LIMIT / float(vth))))
    scale = 2.0**log2
    if log2 < 0 or round(vth * scale) < 1:
        raise FixedPointError(
            f"layer {layer}: no power-of-two scale >= 1 fits (worst-case input {worst:.3g}, "
            f"vth {vth}); weights too large for 24-bit state"
        )
    return int(scale)


def quantize_table(table: np.ndarray, scale: int, layer: str) -> QuantizedTable:
    """Real per-bin weights (K, ...) -> even 8-bit mantissas with one exponent per bin."""
    if not np.all(np.isfinite(table)):
        raise FixedPointError(f"layer {layer}: weights contain NaN or Inf")
    k = table.shape[0]
    mant = np.zeros(table.shape, dtype=np.int16)
    exp = np.zeros(k, dtype=np.int8)
    for b in range(k):
        w = table[b] * scale
        peak = float(np.abs(w).max()) if w.size else 0.0
        e = WEIGHT_EXP_MIN
        while e <= WEIGHT_EXP_MAX and _round_even(peak / 2.0**e) > WEIGHT_MANT_MAX:
            e += 1
        if e > WEIGHT_EXP_MAX:
            raise FixedPointError(
                f"layer {layer}, ISI bin {b + 1}: weight {peak / scale:.4g} needs exponent > "
                f"{WEIGHT_EXP_MAX} at scale {scale}"
            )
        mant[b] = _round_even(w / 2.0**e)
        exp[b] = e
    return QuantizedTable(mant=mant, exp=exp)


def _round_even(x):
    """Nearest multiple of WEIGHT_MANT_STEP (ties away from zero, deterministic)."""
    step = WEIGHT_MANT_STEP
    q = np.sign(x) * np.floor(np.abs(x) / step + 0.5) * step
    return q.astype(np.int64) if isinstance(q, np.ndarray) else int(q)


def threshold_to_int(vth: float, scale: int, layer: str) -> int:
    value = int(round(float(vth) * scale))
    if not 1 <= value <= VTH_MAX:
        raise FixedPointError(f"layer {layer}: vth {vth} x scale {scale} = {value} outside "
                              f"[1, {VTH_MAX}]")
    return value


def int_to_weights(table: QuantizedTable, scale: int) -> np.ndarray:
    """Integers back to real values (the deployable model's effective weights)."""
    return table.weights_int().astype(np.float64) / scale
