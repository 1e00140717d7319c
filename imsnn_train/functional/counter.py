"""The presynaptic ISI counter and the selective gate on its gradient (method.md section 3).

    c[0] = c0,  c[t+1] = 1 + c[t] (1 - s[t]),  phi = min(c, phi_max)

and dL/dphi passes the gate (selective: only the part that lengthens ISIs, min(g, 0); full;
none) times a strength. `isi_counter`, `isi_phi` and `isi_gate` are the three steps as
autograd nodes, the reference form. The ISI layers do not build phi as a tensor of the
graph: the synapse runs the counter itself (`Counter`, `count_bins`, `counter_grad`), because
its dL/dphi is nonzero only at spike events, where the counter restarts. So the counter's
backward is one dense product per step plus a scatter of the events' gradients, with no dense
dL/dphi, gate pass or second dL/ds to add.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

GATE_MODES = ("selective", "full", "none")


def _count(s: torch.Tensor, c0: int) -> torch.Tensor:
    """c[0] = c0, c[t+1] = 1 + c[t] (1 - s[t]), written as c[t] - c[t] s[t] + 1: step slices
    only, no full-size temporary."""
    c = torch.empty_like(s)
    c[0] = float(c0)
    for t in range(s.shape[0] - 1):
        torch.addcmul(c[t], c[t], s[t], value=-1, out=c[t + 1]).add_(1.0)
    return c


def _count_backward(s: torch.Tensor, c: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """dL/ds of the counter from any dL/dc = g: dc[t+1]/dc[t] = 1 - s[t],
    dc[t+1]/ds[t] = -c[t]. The recursion carries -dL/dc[t+1] over all paths."""
    gs = torch.empty_like(s)
    gs[-1] = 0.0
    neg, spare = -g[-1], torch.empty_like(g[-1])
    for t in range(s.shape[0] - 2, -1, -1):
        torch.mul(c[t], neg, out=gs[t])
        torch.addcmul(neg, neg, s[t], value=-1, out=spare).sub_(g[t])
        neg, spare = spare, neg
    return gs


class _Counter(torch.autograd.Function):
    """c[0] = c0, c[t+1] = 1 + c[t] (1 - s[t]), with a hand-written backward; no per-step graph
    nodes."""

    @staticmethod
    def forward(ctx, s: torch.Tensor, c0: int) -> torch.Tensor:
        c = _count(s, c0)
        ctx.save_for_backward(s, c)
        return c

    @staticmethod
    def backward(ctx, gc: torch.Tensor):
        s, c = ctx.saved_tensors
        return _count_backward(s, c, gc), None


def isi_counter(s: torch.Tensor, c0: int) -> torch.Tensor:
    """c[0] = c0, c[t+1] = 1 + c[t] (1 - s[t]); differentiable through s (dc[t+1]/ds[t] = -c[t]).

    s: (T, ...) spikes. Returns c with the same shape.
    """
    return _Counter.apply(s, c0)


def isi_phi(c: torch.Tensor, phi_max: int) -> torch.Tensor:
    """The ISI a spike carries: the counter clipped to phi_max."""
    return c.clamp(max=float(phi_max))


def _check_gate(mode: str, strength: float) -> None:
    if mode not in GATE_MODES:
        raise ValueError(f"gate mode {mode!r}: expected one of {GATE_MODES}")
    if not strength >= 0.0:
        raise ValueError(f"gate strength {strength!r}: expected >= 0")


def _gated(g: torch.Tensor, mode: str, strength: float) -> torch.Tensor | None:
    """dL/dphi through the gate (a new tensor), or None where nothing passes."""
    if mode == "none" or strength == 0.0:
        return None
    g = g.clamp(max=0.0) if mode == "selective" else g.clone()  # descent lengthens ISIs only
    return g if strength == 1.0 else g.mul_(strength)


class _Gate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, phi: torch.Tensor, mode: str, strength: float) -> torch.Tensor:
        ctx.mode, ctx.strength = mode, strength
        return phi.clone()

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        gated = _gated(g, ctx.mode, ctx.strength)
        return (torch.zeros_like(g) if gated is None else gated), None, None


def isi_gate(phi: torch.Tensor, mode: str, strength: float = 1.0) -> torch.Tensor:
    """Identity forward; backward passes dL/dphi per mode: selective min(g, 0), full g, none 0,
    times `strength` (>= 0; the config's gate strength and warm-up, method.md section 3)."""
    _check_gate(mode, strength)
    return _Gate.apply(phi, mode, float(strength))


def isi_phi_gated(s: torch.Tensor, c0: int, phi_max: int, mode: str,
                  strength: float = 1.0) -> torch.Tensor:
    """The ISI each spike of s (T, ...) carries, with the gate on its gradient:
    isi_gate(isi_phi(isi_counter(s, c0), phi_max), mode, strength)."""
    _check_gate(mode, strength)
    return isi_gate(isi_phi(isi_counter(s, c0), phi_max), mode, strength)


@dataclass(frozen=True)
class Counter:
    """The presynaptic counter a synapse runs itself (`isi_dense` / `isi_conv` with
    counter=): its start c0, phi_max, the gate's mode and strength, and the steps T its
    input rows hold (rows t-major, t * B + b)."""

    c0: int
    phi_max: int
    gate: str
    strength: float
    steps: int

    def __post_init__(self):
        _check_gate(self.gate, self.strength)
        if self.steps < 1:
            raise ValueError(f"counter steps {self.steps!r}: expected >= 1")


def check_phi_or_counter(phi, counter: Counter | None, phi_max: int) -> None:
    """An ISI synapse gets its phi as a tensor or from a counter: exactly one."""
    if (phi is None) == (counter is None):
        raise ValueError("ISI synapse: give phi or a counter, not both, not neither")
    if counter is not None and counter.phi_max != phi_max:
        raise ValueError(f"ISI synapse: counter.phi_max {counter.phi_max} != phi_max {phi_max}")


def count_bins(s_rows: torch.Tensor, counter: Counter, dtype: torch.dtype):
    """Run the counter over s (N, n) rows, N = T * B: (c (T, B * n), bins min(c, phi_max) - 1
    (N, n) in `dtype`). The bins are taken step by step beside the counter, while its slice is
    in cache."""
    n, width = s_rows.shape
    if n % counter.steps:
        raise ValueError(f"counter: {n} rows are not {counter.steps} steps of whole batches")
    s = s_rows.reshape(counter.steps, -1)
    c = torch.empty_like(s)
    bins = torch.empty(s.shape, dtype=dtype, device=s.device)
    clipped = torch.empty_like(s[0])
    c[0] = float(counter.c0)
    for t in range(s.shape[0]):
        if t + 1 < s.shape[0]:
            torch.addcmul(c[t], c[t], s[t], value=-1, out=c[t + 1]).add_(1.0)
        bins[t].copy_(torch.clamp(c[t], max=float(counter.phi_max), out=clipped))
    return c, bins.sub_(1).view(n, width)


def counter_grad(c: torch.Tensor, events: torch.Tensor, g_events: torch.Tensor,
                 counter: Counter, out: torch.Tensor) -> None:
    """Add the counter's dL/ds to out (T, B * n), in place, given dL/dphi only at the spike
    events: flat positions `events` (ascending) into (T, B * n) and their values g_events.

    At an event s = 1, so dc[t+1]/dc[t] = 0: the recursion's dL/dc restarts there at the
    event's gated dL/dphi (0 where the counter was clipped), and elsewhere carries on
    unchanged. Each step is then one dense product (dL/ds[t] = -c[t] dL/dc[t+1]) and a
    scatter of that step's events. The sum with the synapse's own dL/ds equals, to the last
    bit, what autograd adds up through isi_phi_gated (tests/test_isi_counted.py)."""
    g = _gated(g_events, counter.gate, counter.strength)
    if g is None or events.numel() == 0:
        return
    c_at = c.reshape(-1).index_select(0, events)
    g.masked_fill_(c_at > counter.phi_max, 0.0)  # clip: no gradient where phi = phi_max < c
    t_steps, width = c.shape
    step = torch.div(events, width, rounding_mode="floor")
    bounds = torch.searchsorted(step, torch.arange(t_steps + 1, device=step.device)).tolist()
    neg = torch.zeros_like(c[0])  # -dL/dc[t], all paths
    part = torch.empty_like(neg)
    for t in range(t_steps - 1, 0, -1):
        lo, hi = bounds[t], bounds[t + 1]
        if hi > lo:
            neg.index_put_((events[lo:hi] - t * width,), g[lo:hi].neg())
        out[t - 1].add_(torch.mul(c[t - 1], neg, out=part))  # product, then sum: not fused
