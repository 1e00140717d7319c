"""Heaviside spike with a surrogate derivative (method.md section 3)."""

from __future__ import annotations

import math

import torch


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, kind: str, scale: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.kind, ctx.scale = kind, scale
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        k = ctx.scale
        if ctx.kind == "fast_sigmoid":
            d = 1.0 / (1.0 + k * x.abs()) ** 2
        elif ctx.kind == "arctan":
            d = 1.0 / (1.0 + (0.5 * math.pi * k * x) ** 2)
        else:  # validated in config; kept for direct callers
            raise ValueError(f"surrogate {ctx.kind!r}: expected 'fast_sigmoid' or 'arctan'")
        return grad * d, None, None


def spike(x: torch.Tensor, kind: str = "fast_sigmoid", scale: float = 5.0) -> torch.Tensor:
    """1 where x > 0 (strictly, as Lava's `v > vth`), with a surrogate gradient.

    fast_sigmoid: d/dx = 1 / (1 + scale |x|)^2;  arctan: d/dx = 1 / (1 + (pi/2 scale x)^2).
    """
    return _Spike.apply(x, kind, scale)
