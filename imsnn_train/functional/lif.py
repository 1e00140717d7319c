"""Current-based LIF, step for step as Lava's `LIF` (floating point), method.md section 1.

    u[t] = u[t-1] (1 - du) + a[t]
    v[t] = v[t-1] (1 - dv) + u[t]
    s[t] = v[t] > vth;   v[t] = 0 where s[t]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from imsnn_train.functional.surrogate import spike


@dataclass(frozen=True)
class LIFParams:
    du: float = 1.0
    dv: float = 0.1
    vth: float = 1.0
    surrogate: str = "fast_sigmoid"
    surrogate_scale: float = 5.0
    detach_reset: bool = True


def lif_step(a: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], p: LIFParams):
    """One step: (a, (u, v)) -> (s, (u, v))."""
    u, v = state
    u = u * (1 - p.du) + a
    v = v * (1 - p.dv) + u
    s = spike(v - p.vth, p.surrogate, p.surrogate_scale)
    keep = 1 - (s.detach() if p.detach_reset else s)
    return s, (u, v * keep)


def lif_run(a: torch.Tensor, p: LIFParams, record_v: bool = False):
    """Run T steps on a (T, B, n) input; returns spikes (T, B, n) and, if asked, v (T, B, n)
    after each step (before reset is not recorded; Lava reports v after reset)."""
    u = torch.zeros_like(a[0])
    v = torch.zeros_like(a[0])
    spikes, volts = [], []
    for a_t in a.unbind(0):  # unbind: indexing a[t] costs a full-size zero fill in backward
        s, (u, v) = lif_step(a_t, (u, v), p)
        spikes.append(s)
        if record_v:
            volts.append(v)
    return torch.stack(spikes), (torch.stack(volts) if record_v else None)
