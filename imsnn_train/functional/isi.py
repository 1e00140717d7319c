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


GRAD_S_ROWS = 512  # rows per block of the dL/ds product (bounds its N x K x n_in temporary)


def _lut_forward(s, bin_of, e_t, phi_max: int):
    """a = sum over spiking (row, i) of E[k_row,i][i, :]. s: (N, n_in); bin_of(rows, cols): the
    ISI bins k = phi - 1 (int64) of those events; e_t: (K * n_in, n_out).

    Returns a and what the backward needs: the event selector (N, K * n_in), the events' rows
    and columns, and their rows of e_t."""
    n, n_in = s.shape
    rows, cols = torch.nonzero(s, as_tuple=True)
    idx = bin_of(rows, cols) * n_in + cols
    sel = torch.sparse_coo_tensor(
        torch.stack([rows, idx]), torch.ones_like(rows, dtype=e_t.dtype), (n, phi_max * n_in),
    ).coalesce()
    return torch.sparse.mm(sel, e_t), (sel, rows, cols, idx)


def _lut_backward(ga, k, g_t, r_t, e_t, events, need_s, need_phi, need_w):
    """Gradients of `_lut_forward` for ga = dL/da (N, n_out): dL/ds for every (row, input)
    (N, n_in; k holds the bins of all of them, any integer type), dL/dphi per event (in the
    order of the events' rows and cols) and dL/dw (n_out, n_in)."""
    sel, rows, _, idx = events
    kmax, n_in, n_out = g_t.shape
    n = ga.shape[0]
    grad_s = grad_phi = grad_w = None
    if need_w:
        ge = torch.sparse.mm(sel.t(), ga).view(kmax, n_in, n_out)
        grad_w = (ge * g_t).sum(0).t()
    if need_s:
        # dL/ds_i = (dL/da @ E[k_i])_i: one product over all bins, then pick each input's bin
        grad_s = torch.empty((n, n_in), dtype=ga.dtype, device=ga.device)
        for i in range(0, n, GRAD_S_ROWS):
            z = (ga[i:i + GRAD_S_ROWS] @ e_t.t()).view(-1, kmax, n_in)
            k_blk = k[i:i + GRAD_S_ROWS, None].long()
            grad_s[i:i + GRAD_S_ROWS] = z.gather(1, k_blk).squeeze(1)
    if need_phi:
        d_t = (e_t.view(kmax, n_in, n_out) * r_t).view(kmax * n_in, n_out)
        grad_phi = (d_t[idx] * ga[rows]).sum(1)
    return grad_s, grad_phi, grad_w


def _modulated(g_t, weight):
    """e_t = (G^T * w^T) flattened to (K * n_in, n_out)."""
    kmax, n_in, n_out = g_t.shape
    return (g_t * weight.t()[None]).reshape(kmax * n_in, n_out)


class _ISIDense(torch.autograd.Function):
    @staticmethod
    def forward(ctx, s, phi, weight, g_t, r_t):
        """g_t, r_t: the modulation tables transposed, (K, n_in, n_out)."""
        e_t = _modulated(g_t, weight)
        k = phi.detach().long() - 1
        a, events = _lut_forward(s.detach(), lambda r, c: k[r, c], e_t, g_t.shape[0])
        ctx.save_for_backward(k, g_t, r_t, e_t, *events[1:])
        ctx.sel = events[0]
        return a

    @staticmethod
    def backward(ctx, ga):
        k, g_t, r_t, e_t, rows, cols, idx = ctx.saved_tensors
        events = (ctx.sel, rows, cols, idx)
        need_s, need_phi, need_w = ctx.needs_input_grad[:3]
        grad_s, per_event, grad_w = _lut_backward(ga.contiguous(), k, g_t, r_t, e_t, events,
                                                  need_s, need_phi, need_w)
        grad_phi = None
        if need_phi:
            grad_phi = torch.zeros(k.shape, dtype=ga.dtype, device=ga.device)
            grad_phi[rows, cols] = per_event
        return grad_s, grad_phi, grad_w, None, None


def isi_dense(s, phi, weight, mu, sigma, phi_max: int, tables=None) -> torch.Tensor:
    """Synaptic input of an ISI dense layer for N spike vectors: s, phi (N, n_in) -> (N, n_out).

    tables: (G^T, R^T) of shape (K, n_in, n_out) from `dense_tables`, to reuse across calls.
    """
    g_t, r_t = tables if tables is not None else dense_tables(mu, sigma, phi_max)
    return _ISIDense.apply(s, phi, weight, g_t, r_t)


def dense_tables(mu: torch.Tensor, sigma: torch.Tensor, phi_max: int):
    """(G^T, R^T), each (K, n_in, n_out) contiguous, for `isi_dense`."""
    g, r = modulation_tables(mu, sigma, phi_max)
    return g.transpose(1, 2).contiguous(), r.transpose(1, 2).contiguous()


def patch_index(in_shape, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """For every output position p and kernel entry q = (c, i, j) (the order of a conv weight),
    the flat index it reads in the zero-padded input (C, H + 2 padding, W + 2 padding):
    shape (P, Q)."""
    c, h, w = in_shape
    hp, wp = h + 2 * padding, w + 2 * padding
    flat = torch.arange(c * hp * wp).view(c, hp, wp)
    h_out = (hp - kernel) // stride + 1
    w_out = (wp - kernel) // stride + 1
    sc, sh, sw = flat.stride()
    return flat.as_strided((h_out, w_out, c, kernel, kernel),
                           (stride * sh, stride * sw, sc, sh, sw)).reshape(h_out * w_out, -1)


def _bin_dtype(phi_max: int) -> torch.dtype:
    """The narrowest type for ISI bins 0..phi_max - 1: the patch gathers move less memory."""
    return torch.uint8 if phi_max <= 256 else torch.int32


class _ISIConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, s, phi, weight, g_t, r_t, index, padding: int):
        """s, phi (N, C, H, W); index (P, Q) from `patch_index`; g_t, r_t (K, Q, C_out)."""
        n, c_out = s.shape[0], weight.shape[0]
        kmax = g_t.shape[0]
        p, q = index.shape
        e_t = _modulated(g_t, weight.reshape(c_out, q))
        pad = (padding,) * 4
        s_flat = F.pad(s.detach(), pad).reshape(n, -1).to(torch.uint8)
        k_flat = F.pad(phi.detach() - 1, pad).reshape(n, -1).to(_bin_dtype(kmax))
        flat_index = index.reshape(-1)
        s_rows = s_flat.index_select(1, flat_index).view(n * p, q)

        def bin_of(rows, cols):
            return k_flat[rows // p, index[rows % p, cols]].long()

        a, events = _lut_forward(s_rows, bin_of, e_t, kmax)
        k_rows = k_flat.index_select(1, flat_index).view(n * p, q) if ctx.needs_input_grad[0] \
            else None
        ctx.save_for_backward(k_rows, g_t, r_t, e_t, flat_index, *events[1:])
        ctx.sel, ctx.in_shape, ctx.w_shape, ctx.padding = events[0], s.shape, weight.shape, padding
        return a.view(n, p, c_out).transpose(1, 2).reshape(n, c_out, p)

    @staticmethod
    def backward(ctx, ga):
        k_rows, g_t, r_t, e_t, flat_index, rows, cols, idx = ctx.saved_tensors
        n, c, h, w = ctx.in_shape
        pd = ctx.padding
        c_out, q = e_t.shape[1], g_t.shape[1]
        p = flat_index.numel() // q
        need_s, need_phi, need_w = ctx.needs_input_grad[:3]
        ga_rows = ga.reshape(n, c_out, p).transpose(1, 2).reshape(n * p, c_out)
        grad_s, per_event, grad_w = _lut_backward(ga_rows, k_rows, g_t, r_t, e_t,
                                                  (ctx.sel, rows, cols, idx),
                                                  need_s, need_phi, need_w)

        def fold(x):  # adjoint of the patch gather: sum each input's share over its patches
            out = torch.zeros((n, c * (h + 2 * pd) * (w + 2 * pd)), dtype=x.dtype,
                              device=x.device)
            out = out.index_add_(1, flat_index, x.view(n, -1)).view(n, c, h + 2 * pd, w + 2 * pd)
            return out[:, :, pd:pd + h, pd:pd + w] if pd else out

        if need_s:
            grad_s = fold(grad_s)
        grad_phi = None
        if need_phi:
            flat = torch.zeros((n * p, q), dtype=ga.dtype, device=ga.device)
            flat[rows, cols] = per_event
            grad_phi = fold(flat)
        if need_w:
            grad_w = grad_w.reshape(ctx.w_shape)
        return grad_s, grad_phi, grad_w, None, None, None, None


def isi_conv(s, phi, weight, mu, sigma, phi_max: int, stride: int, padding: int, tables=None,
             index=None):
    """Synaptic input of an ISI conv layer: s (0/1 spikes), phi (N, C, H, W) -> (N, C_out, H',
    W').

    A convolution is a dense layer applied at every output position to the receptive field
    (patch), so this is `isi_dense`'s lookup-table math on (N * P, C * kh * kw) patches (P
    output positions), gathered by one index; the gradients of s and phi are summed back over
    the patches each input appears in. Cost follows the input spike events, as in the dense
    layer. tables: `dense_tables` of mu, sigma reshaped to (C_out, C * kh * kw); index:
    `patch_index` (both cached by the layer).
    """
    c_out, _, kh, kw = weight.shape
    if kh != kw:
        raise ValueError(f"isi_conv: square kernels only, got {kh} x {kw}")
    h_out = (s.shape[2] + 2 * padding - kh) // stride + 1
    w_out = (s.shape[3] + 2 * padding - kw) // stride + 1
    if tables is None:
        tables = dense_tables(mu.reshape(c_out, -1), sigma.reshape(c_out, -1), phi_max)
    if index is None:
        index = patch_index(s.shape[1:], kh, stride, padding).to(s.device)
    a = _ISIConv.apply(s, phi, weight, tables[0], tables[1], index, padding)
    return a.view(s.shape[0], c_out, h_out, w_out)
