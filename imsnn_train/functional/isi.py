"""The ISI-modulated synapse and its selective gradient (method.md sections 2-3).

    theta_ij(t) = w_ij * exp(-(phi_i(t) - mu_ij)^2 / (2 sigma_ij^2))

phi is an integer in [1, phi_max], so the forward pass never builds a (batch x in x out)
weight tensor: it sums the rows of a per-bin table E[k] = w * G[k] for spiking inputs only
(an embedding bag over the spike events). The backward pass is written out by hand:

- dL/dw       = sum_k (S_k^T dL/da) * G[k]            (S_k: spikes whose ISI bin is k)
- dL/ds_i     = (dL/da @ E[k_i])_i  for every input, only when the input is a hidden layer
                (by each row's dominant bin, the other inputs recomputed: functional/lut.py)
- dL/dphi_i   = s_i (dL/da @ E'[k_i])_i, E' = w dG/dphi = E * -(k - mu) / sigma^2
- dL/dG[k]    = (S_k^T dL/da) * w   (only when mu, sigma are learned; autograd takes it on
                to mu, sigma through G = exp(-(k - mu)^2 / (2 sigma^2)))
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from imsnn_train.functional.isi_conv import isi_conv, patch_index
from imsnn_train.functional.lut import (
    bin_dtype,
    bin_groups,
    dense_tables,
    dominant_bins,
    gaussian,
    modulated,
    modulation_tables,
    nonzero_2d,
    off_dominant,
    put_rows,
    row_dots,
    table_grad,
    take_rows,
    weight_grad,
)

GATE_MODES = ("selective", "full", "none")
__all__ = ["dense_tables", "gaussian", "isi_conv", "isi_counter", "isi_dense", "isi_gate",
           "isi_phi", "isi_phi_gated", "modulation_tables", "patch_index"]


def _count(s: torch.Tensor, c0: int) -> torch.Tensor:
    """c[0] = c0, c[t+1] = 1 + c[t] (1 - s[t]), written as c[t] - c[t] s[t] + 1: step slices
    only, no full-size temporary."""
    c = torch.empty_like(s)
    c[0] = float(c0)
    for t in range(s.shape[0] - 1):
        torch.addcmul(c[t], c[t], s[t], value=-1, out=c[t + 1]).add_(1.0)
    return c


def _count_backward(s: torch.Tensor, c: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """dL/ds of the counter from dL/dc = g (read only): dc[t+1]/dc[t] = 1 - s[t],
    dc[t+1]/ds[t] = -c[t]. The recursion carries -dL/dc[t+1] over all paths, so each step is
    three slice operations."""
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


class _Gate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, phi: torch.Tensor, mode: str, strength: float) -> torch.Tensor:
        ctx.mode, ctx.strength = mode, strength
        return phi.clone()

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        if ctx.mode == "none" or ctx.strength == 0.0:
            return torch.zeros_like(g), None, None
        if ctx.mode == "selective":  # descent changes phi by -lr g: keep only g <= 0 (longer ISIs)
            g = g.clamp(max=0.0)
        return (g if ctx.strength == 1.0 else g * ctx.strength), None, None


def isi_gate(phi: torch.Tensor, mode: str, strength: float = 1.0) -> torch.Tensor:
    """Identity forward; backward passes dL/dphi per mode: selective min(g, 0), full g, none 0,
    times `strength` (>= 0; the config's gate strength and warm-up, method.md section 3)."""
    if mode not in GATE_MODES:
        raise ValueError(f"gate mode {mode!r}: expected one of {GATE_MODES}")
    if not strength >= 0.0:
        raise ValueError(f"gate strength {strength!r}: expected >= 0")
    return _Gate.apply(phi, mode, float(strength))


def _zero_where_clipped(g: torch.Tensor, c: torch.Tensor, phi_max: int) -> None:
    """g = 0 where c > phi_max, in place. On CPU through numpy, whose compare and masked store
    take 6 ms where torch's take 9 (24 x 100 x 2304, one core)."""
    if (g.device.type == "cpu" and not g.requires_grad and g.is_contiguous()
            and c.is_contiguous()):
        np.putmask(g.numpy(), c.numpy() > phi_max, 0.0)
    else:
        g.masked_fill_(c > phi_max, 0.0)


class _GatedPhi(torch.autograd.Function):
    """isi_gate(isi_phi(isi_counter(s, c0), phi_max), mode, strength) as one node: the backward
    gates dL/dphi, masks it where the counter was clipped and runs the counter's recursion,
    without the full-size temporaries of three nodes."""

    @staticmethod
    def forward(ctx, s: torch.Tensor, c0: int, phi_max: int, mode: str, strength: float):
        c = _count(s, c0)
        ctx.mode, ctx.strength, ctx.phi_max = mode, strength, phi_max
        ctx.save_for_backward(s, c)
        return c.clamp(max=float(phi_max))

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        s, c = ctx.saved_tensors
        if ctx.mode == "none" or ctx.strength == 0.0:
            return torch.zeros_like(s), None, None, None, None
        g = g.clamp(max=0.0) if ctx.mode == "selective" else g.clone()
        if ctx.strength != 1.0:
            g.mul_(ctx.strength)
        _zero_where_clipped(g, c, ctx.phi_max)  # clamp: no gradient where c was clipped
        return _count_backward(s, c, g), None, None, None, None


def isi_phi_gated(s: torch.Tensor, c0: int, phi_max: int, mode: str,
                  strength: float = 1.0) -> torch.Tensor:
    """The ISI each spike of s (T, ...) carries, with the gate on its gradient: equal in value
    and gradient to isi_gate(isi_phi(isi_counter(s, c0), phi_max), mode, strength)."""
    if mode not in GATE_MODES:
        raise ValueError(f"gate mode {mode!r}: expected one of {GATE_MODES}")
    if not strength >= 0.0:
        raise ValueError(f"gate strength {strength!r}: expected >= 0")
    return _GatedPhi.apply(s, int(c0), int(phi_max), mode, float(strength))


def _events(s: torch.Tensor, k: torch.Tensor):
    """The spike events of s (N, n_in) in row order: rows, cols, table rows k * n_in + col, and
    each row's first event (embedding-bag offsets)."""
    n, n_in = s.shape
    rows, cols = nonzero_2d(s.bool())
    idx = k[rows, cols].long() * n_in + cols
    counts = torch.bincount(rows, minlength=n)
    return rows, cols, idx, torch.cumsum(counts, 0) - counts


class _ISIDense(torch.autograd.Function):
    @staticmethod
    def forward(ctx, s, phi, weight, g_t, r_t):
        """g_t, r_t: the modulation tables transposed, (K, n_in, n_out)."""
        e_t = modulated(g_t, weight)
        k = phi.detach().to(bin_dtype(g_t.shape[0]), copy=True).sub_(1)
        rows, cols, idx, offsets = _events(s.detach(), k)
        a = F.embedding_bag(idx, e_t, offsets, mode="sum")  # rows of E at the events, summed
        ctx.save_for_backward(k, g_t, r_t, e_t, rows, cols, idx, weight)
        return a

    @staticmethod
    def backward(ctx, ga):
        k, g_t, r_t, e_t, rows, cols, idx, weight = ctx.saved_tensors
        kmax, n_in, n_out = g_t.shape
        n = ga.shape[0]
        ga = ga.contiguous()
        need_s, need_phi, need_w, need_g = ctx.needs_input_grad[:4]
        grad_s = grad_phi = grad_w = grad_g = None
        if need_w or need_g:  # dL/dE: per table row, dL/da summed over its events
            ge = table_grad(idx, rows, ga, kmax * n_in).view(kmax, n_in, n_out)
            if need_w:
                grad_w = weight_grad(ge, g_t).t()
            if need_g:  # learnable mu, sigma: the table's own gradient, dL/dG = dL/dE * w
                grad_g = ge * weight.t()[None]
        if need_s:  # dL/ds_i = dL/da . E[k_i][i]: the row's dominant bin, then the others
            kd = dominant_bins(k)
            grad_s = torch.empty((n, n_in), dtype=ga.dtype, device=ga.device)
            tables = e_t.view(kmax, n_in, n_out)
            for v, sel in bin_groups(kd):
                put_rows(grad_s, sel, take_rows(ga, sel) @ tables[v].t())
            r, c, kk, flat = off_dominant(k, kd)
            if r.numel():
                grad_s.view(-1)[flat] = row_dots(ga, r, e_t, kk * n_in + c)
        if need_phi:
            d_t = (e_t.view(kmax, n_in, n_out) * r_t).view(kmax * n_in, n_out)
            grad_phi = torch.zeros(k.shape, dtype=ga.dtype, device=ga.device)
            grad_phi[rows, cols] = (d_t.index_select(0, idx) * ga.index_select(0, rows)).sum(1)
        return grad_s, grad_phi, grad_w, grad_g, None


def isi_dense(s, phi, weight, mu, sigma, phi_max: int, tables=None) -> torch.Tensor:
    """Synaptic input of an ISI dense layer for N spike vectors: s, phi (N, n_in) -> (N, n_out).

    tables: (G^T, R^T) of shape (K, n_in, n_out) from `dense_tables`, to reuse across calls.
    When mu, sigma require grad (learnable) and no tables are given, the tables are built
    differentiably and dL/dmu, dL/dsigma flow through G (R only shapes dL/dphi).
    """
    g_t, r_t = tables if tables is not None else dense_tables(mu, sigma, phi_max)
    return _ISIDense.apply(s, phi, weight, g_t, r_t)
