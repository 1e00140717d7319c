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

phi comes either as a tensor (from `isi_phi_gated`, the reference form) or from the counter
the synapse runs itself (counter=, functional/counter.py): then dL/dphi at the events goes
through the gate and the counter into dL/ds inside this backward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from imsnn_train.functional.counter import (
    GATE_MODES,
    Counter,
    check_phi_or_counter,
    count_bins,
    counter_grad,
    isi_counter,
    isi_gate,
    isi_phi,
    isi_phi_gated,
)
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
    sorted_row_dots,
    table_grad,
    take_rows,
    weight_grad,
)

__all__ = ["GATE_MODES", "Counter", "dense_tables", "gaussian", "isi_conv", "isi_counter",
           "isi_dense", "isi_gate", "isi_phi", "isi_phi_gated", "modulation_tables",
           "patch_index"]


def _events(s: torch.Tensor, k: torch.Tensor):
    """The spike events of s (N, n_in) in row order: rows, cols, table rows k * n_in + col, and
    each row's first event (embedding-bag offsets)."""
    n, n_in = s.shape
    rows, cols, flat = nonzero_2d(s.bool())
    idx = k.reshape(-1).index_select(0, flat).long() * n_in + cols
    counts = torch.bincount(rows, minlength=n)
    return rows, cols, idx, torch.cumsum(counts, 0) - counts


class _ISIDense(torch.autograd.Function):
    @staticmethod
    def forward(ctx, s, phi, weight, g_t, r_t, counter):
        """g_t, r_t: the modulation tables transposed, (K, n_in, n_out); phi, or None with a
        `Counter`."""
        e_t = modulated(g_t, weight)
        s = s.detach()
        ctx.counter = counter
        if counter is None:
            count = None
            k = phi.detach().to(bin_dtype(g_t.shape[0]), copy=True).sub_(1)
        else:
            count, k = count_bins(s, counter, bin_dtype(g_t.shape[0]))
        rows, cols, idx, offsets = _events(s, k)
        a = F.embedding_bag(idx, e_t, offsets, mode="sum")  # rows of E at the events, summed
        ctx.save_for_backward(k, g_t, r_t, e_t, rows, cols, idx, weight, count)
        return a

    @staticmethod
    def backward(ctx, ga):
        k, g_t, r_t, e_t, rows, cols, idx, weight, count = ctx.saved_tensors
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
                grad_s.view(-1)[flat] = sorted_row_dots(ga, r, e_t, kk * n_in + c)
        counted = need_s and ctx.counter is not None
        if need_phi or counted:  # dL/dphi at the events (elsewhere s = 0: no dL/dphi)
            d_t = (e_t.view(kmax, n_in, n_out) * r_t).view(kmax * n_in, n_out)
            g_events = sorted_row_dots(ga, rows, d_t, idx)  # events are row-major
            if counted:
                counter_grad(count, rows * n_in + cols, g_events, ctx.counter,
                             grad_s.view(ctx.counter.steps, -1))
            else:
                grad_phi = torch.zeros(k.shape, dtype=ga.dtype, device=ga.device)
                grad_phi[rows, cols] = g_events
        return grad_s, grad_phi, grad_w, grad_g, None, None


def isi_dense(s, phi, weight, mu, sigma, phi_max: int, tables=None,
              counter: Counter | None = None) -> torch.Tensor:
    """Synaptic input of an ISI dense layer for N spike vectors: s, phi (N, n_in) -> (N, n_out).

    phi None with `counter`: the synapse runs the presynaptic counter over s itself (rows
    t-major, counter.steps steps), and dL/ds includes the counter's path (as isi_phi_gated
    followed by isi_dense, to the last bit, without building dL/dphi).
    tables: (G^T, R^T) of shape (K, n_in, n_out) from `dense_tables`, to reuse across calls.
    When mu, sigma require grad (learnable) and no tables are given, the tables are built
    differentiably and dL/dmu, dL/dsigma flow through G (R only shapes dL/dphi).
    """
    check_phi_or_counter(phi, counter, phi_max)
    g_t, r_t = tables if tables is not None else dense_tables(mu, sigma, phi_max)
    return _ISIDense.apply(s, phi, weight, g_t, r_t, counter)

