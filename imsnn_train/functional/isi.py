"""The ISI-modulated synapse and its selective gradient (method.md sections 2-3).

    theta_ij(t) = w_ij * exp(-(phi_i(t) - mu_ij)^2 / (2 sigma_ij^2))

phi is an integer in [1, phi_max], so the forward pass never builds a (batch x in x out)
weight tensor: it gathers the rows of a per-bin table E[k] = w * G[k] for spiking inputs only
(a sparse-times-dense product). The backward pass is written out by hand:

- dL/dw       = sum_k (S_k^T dL/da) * G[k]            (S_k: spikes whose ISI bin is k)
- dL/ds_i     = (dL/da @ E[k_i])_i  for every input, only when the input is a hidden layer
- dL/dphi_i   = s_i (dL/da @ E'[k_i])_i, E' = w dG/dphi = E * -(k - mu) / sigma^2
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_input, conv2d_weight

GATE_MODES = ("selective", "full", "none")


def gaussian(phi: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return torch.exp(-((phi - mu) ** 2) / (2.0 * sigma**2))


class _Counter(torch.autograd.Function):
    """c[0] = c0, c[t+1] = 1 + c[t] (1 - s[t]), with a hand-written backward
    (dc[t+1]/dc[t] = 1 - s[t], dc[t+1]/ds[t] = -c[t]); no per-step graph nodes."""

    @staticmethod
    def forward(ctx, s: torch.Tensor, c0: int) -> torch.Tensor:
        c = torch.empty_like(s)
        c[0] = float(c0)
        for t in range(s.shape[0] - 1):
            torch.addcmul(torch.ones_like(c[t]), c[t], 1 - s[t], out=c[t + 1])
        ctx.save_for_backward(s, c)
        return c

    @staticmethod
    def backward(ctx, gc: torch.Tensor):
        s, c = ctx.saved_tensors
        g = gc.clone()
        gs = torch.zeros_like(s)
        for t in range(s.shape[0] - 2, -1, -1):
            torch.mul(c[t], g[t + 1], out=gs[t]).neg_()
            g[t].addcmul_(g[t + 1], 1 - s[t])
        return gs, None


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
    def forward(ctx, phi: torch.Tensor, mode: str) -> torch.Tensor:
        ctx.mode = mode
        return phi.clone()

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        if ctx.mode == "selective":  # descent changes phi by -lr g: keep only g <= 0 (longer ISIs)
            return g.clamp(max=0.0), None
        if ctx.mode == "full":
            return g, None
        return torch.zeros_like(g), None


def isi_gate(phi: torch.Tensor, mode: str) -> torch.Tensor:
    """Identity forward; backward passes dL/dphi per mode: selective min(g, 0), full g, none 0."""
    if mode not in GATE_MODES:
        raise ValueError(f"gate mode {mode!r}: expected one of {GATE_MODES}")
    return _Gate.apply(phi, mode)


def _bins(phi_max: int, like: torch.Tensor, ndim: int) -> torch.Tensor:
    return torch.arange(1, phi_max + 1, dtype=like.dtype, device=like.device).view(
        (-1,) + (1,) * ndim
    )


def modulation_tables(mu: torch.Tensor, sigma: torch.Tensor, phi_max: int):
    """G[k] = exp(-(k - mu)^2 / (2 sigma^2)) and R[k] = dlogG/dphi = -(k - mu) / sigma^2 at
    k = 1..phi_max, shape (K, *mu.shape). They depend only on the fixed mu and sigma, so layers
    compute them once."""
    bins = _bins(phi_max, mu, mu.ndim)
    return gaussian(bins, mu[None], sigma[None]), -(bins - mu[None]) / sigma[None] ** 2


def _tables(weight, mu, sigma, phi_max):
    """G[k], E[k] = w G[k] and E'[k] = E[k] R[k] for k = 1..phi_max."""
    g, r = modulation_tables(mu, sigma, phi_max)
    e = weight[None] * g
    return g, e, e * r


GRAD_S_ROWS = 512  # rows per block of the dL/ds product (bounds its N x K x n_in temporary)


class _ISIDense(torch.autograd.Function):
    @staticmethod
    def forward(ctx, s, phi, weight, g_t, r_t, phi_max: int):
        """g_t, r_t: the modulation tables transposed, (K, n_in, n_out)."""
        n, n_in = s.shape
        n_out = weight.shape[0]
        e_t = (g_t * weight.t()[None]).reshape(phi_max * n_in, n_out)
        k = phi.detach().long() - 1
        rows, cols = torch.nonzero(s.detach() > 0, as_tuple=True)
        idx = k[rows, cols] * n_in + cols
        sel = torch.sparse_coo_tensor(
            torch.stack([rows, idx]), torch.ones_like(rows, dtype=s.dtype),
            (n, phi_max * n_in),
        ).coalesce()
        a = torch.sparse.mm(sel, e_t)
        ctx.save_for_backward(k, g_t, r_t, e_t, rows, cols, idx)
        ctx.sel, ctx.phi_max, ctx.shape = sel, phi_max, (n, n_in, n_out)
        return a

    @staticmethod
    def backward(ctx, ga):
        k, g_t, r_t, e_t, rows, cols, idx = ctx.saved_tensors
        n, n_in, n_out = ctx.shape
        kmax = ctx.phi_max
        grad_s = grad_phi = grad_w = None
        ga = ga.contiguous()
        if ctx.needs_input_grad[2]:
            ge = torch.sparse.mm(ctx.sel.t(), ga).view(kmax, n_in, n_out)
            grad_w = (ge * g_t).sum(0).t()
        if ctx.needs_input_grad[0]:
            # dL/ds_i = (dL/da @ E[k_i])_i: one product over all bins, then pick each input's bin
            grad_s = torch.empty((n, n_in), dtype=ga.dtype, device=ga.device)
            for i in range(0, n, GRAD_S_ROWS):
                z = (ga[i:i + GRAD_S_ROWS] @ e_t.t()).view(-1, kmax, n_in)
                grad_s[i:i + GRAD_S_ROWS] = z.gather(1, k[i:i + GRAD_S_ROWS, None]).squeeze(1)
        if ctx.needs_input_grad[1]:
            d_t = (e_t.view(kmax, n_in, n_out) * r_t).view(kmax * n_in, n_out)
            per_event = (d_t[idx] * ga[rows]).sum(1)
            grad_phi = torch.zeros((n, n_in), dtype=ga.dtype, device=ga.device)
            grad_phi[rows, cols] = per_event
        return grad_s, grad_phi, grad_w, None, None, None


def isi_dense(s, phi, weight, mu, sigma, phi_max: int, tables=None) -> torch.Tensor:
    """Synaptic input of an ISI dense layer for N spike vectors: s, phi (N, n_in) -> (N, n_out).

    tables: (G^T, R^T) of shape (K, n_in, n_out) from `dense_tables`, to reuse across calls.
    """
    g_t, r_t = tables if tables is not None else dense_tables(mu, sigma, phi_max)
    return _ISIDense.apply(s, phi, weight, g_t, r_t, phi_max)


def dense_tables(mu: torch.Tensor, sigma: torch.Tensor, phi_max: int):
    """(G^T, R^T), each (K, n_in, n_out) contiguous, for `isi_dense`."""
    g, r = modulation_tables(mu, sigma, phi_max)
    return g.transpose(1, 2).contiguous(), r.transpose(1, 2).contiguous()


class _ISIConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, s, phi, weight, mu, sigma, phi_max: int, stride: int, padding: int):
        g, e, de = _tables(weight, mu, sigma, phi_max)
        k = phi.detach().long() - 1
        sd = s.detach()
        a = None
        for b in range(phi_max):
            m = sd * (k == b)
            out = F.conv2d(m, e[b], stride=stride, padding=padding)
            a = out if a is None else a + out
        ctx.save_for_backward(sd, k, g, e, de)
        ctx.cfg = (phi_max, stride, padding)
        return a

    @staticmethod
    def backward(ctx, ga):
        s, k, g, e, de = ctx.saved_tensors
        phi_max, stride, padding = ctx.cfg
        need_s, need_phi, need_w = ctx.needs_input_grad[:3]
        grad_s = torch.zeros_like(s) if need_s else None
        grad_phi = torch.zeros_like(s) if need_phi else None
        grad_w = torch.zeros_like(e[0]) if need_w else None
        for b in range(phi_max):
            mask = k == b
            if not mask.any():
                continue
            m = s * mask
            if need_w:
                grad_w += conv2d_weight(m, e[b].shape, ga, stride=stride, padding=padding) * g[b]
            if need_s:
                grad_s += mask * conv2d_input(s.shape, e[b], ga, stride=stride, padding=padding)
            if need_phi:
                grad_phi += m * conv2d_input(s.shape, de[b], ga, stride=stride, padding=padding)
        return grad_s, grad_phi, grad_w, None, None, None, None, None


def isi_conv(s, phi, weight, mu, sigma, phi_max: int, stride: int, padding: int):
    """Synaptic input of an ISI conv layer: s, phi (N, C, H, W) -> (N, C_out, H', W')."""
    return _ISIConv.apply(s, phi, weight, mu, sigma, phi_max, stride, padding)
