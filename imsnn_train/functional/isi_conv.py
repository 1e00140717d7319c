"""The ISI-modulated convolution (method.md section 2: one (w, mu, sigma) per kernel weight,
phi of the presynaptic pixel), with a hand-written backward.

A convolution is a dense layer applied at every output position p to its receptive field
(patch), so the math is `isi_dense`'s on (N * P, Q) patch rows, Q = C * kh * kw. The kernel
never builds the patch matrix: it starts from the input spike events and lists the patch
entries each one lands in (`_patches_of`), so the forward pass, dL/dw and dL/dphi cost follow
the spike events:

- a[n, p]  = sum over events (n, i) in patch p of E[k_i][q(p, i)]   (embedding bags)
- dL/dw    = sum_k (events of bin k)^T dL/da * G[k]
- dL/dphi  = per event sum over its patches of dL/da . E'[k][q], E' = E * -(k - mu) / sigma^2
- dL/ds    = the transposed convolution of dL/da with E at each row's dominant bin; the inputs
             whose bin differs recomputed over their patches (see functional/lut.py).

Inputs dense in spikes (a conv net's first layer) take a one-hot convolution instead of the
events for the forward pass and dL/dw (`ONE_HOT_DENSITY`). With counter= the synapse runs the
presynaptic counter itself and its dL/dphi at the events goes through the gate and the counter
into dL/ds (functional/counter.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from imsnn_train.functional.counter import (
    Counter,
    check_phi_or_counter,
    count_bins,
    counter_grad,
)
from imsnn_train.functional.lut import (
    argsort_stable,
    bin_dtype,
    bin_groups,
    dense_tables,
    dominant_bins,
    flat_nonzero,
    modulated,
    nonzero_2d,
    off_dominant,
    put_rows,
    sorted_row_dots,
    table_grad,
    take_rows,
    weight_grad,
)


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


def _patches_of(index: torch.Tensor, n_pixels: int):
    """The inverse of `patch_index`: for every padded input pixel, the output positions p and
    kernel entries q of the patches that read it, left-aligned and padded with -1: two int32
    (n_pixels, W) tables, W the most patches per pixel rounded up to a power of two (so that
    `_expand` splits a flat slot by shifts)."""
    q = index.shape[1]
    flat = index.reshape(-1)
    order = torch.argsort(flat, stable=True)
    counts = torch.bincount(flat, minlength=n_pixels)
    starts = torch.cumsum(counts, 0) - counts
    pixel = flat[order]
    slot = torch.arange(flat.numel(), device=flat.device) - starts[pixel]
    width = 1 << (max(int(counts.max()), 1) - 1).bit_length()
    at_p = torch.full((n_pixels, width), -1, dtype=torch.int32, device=flat.device)
    at_q = torch.full((n_pixels, width), -1, dtype=torch.int32, device=flat.device)
    at_p[pixel, slot] = torch.div(order, q, rounding_mode="floor").int()
    at_q[pixel, slot] = (order % q).int()
    return at_p, at_q


def _expand(patches, pixels: torch.Tensor):
    """(which of `pixels` (int64), output position p, kernel entry q (int32)) for every patch
    entry the pixels land in, pixel by pixel."""
    at_p, at_q = patches
    cand = at_p.index_select(0, pixels)
    flat = flat_nonzero(cand >= 0)
    which = flat >> (at_p.shape[1].bit_length() - 1)
    return (which, cand.view(-1).index_select(0, flat),
            at_q.index_select(0, pixels).view(-1).index_select(0, flat))


def _unpadded(c: int, h: int, w: int, padding: int, device) -> torch.Tensor:
    """Flat padded index of every unpadded pixel (c, y, x)."""
    hp, wp = h + 2 * padding, w + 2 * padding
    flat = torch.arange(c * hp * wp, device=device).view(c, hp, wp)
    return flat[:, padding:padding + h, padding:padding + w].reshape(-1)


ONE_HOT_DENSITY = 0.004
"""Above this fraction of input spike events among all (sample, input, bin) triples, the
forward pass and dL/dw run as one dense convolution of the bins' one-hot spikes (N, K * C, H,
W) with E (C_out, K * C, kh, kw) instead of the events' patch entries. The first layer of the
MNIST conv net is at 0.8%, its hidden layer at 0.15%. On that first layer (2400 samples, one
core, the layer alone, both paths interleaved) they measure close: one-hot 70 ms, events 73 ms
for forward + dL/dw. The threshold dates from slower event kernels (break-even near 0.5% then)
and is kept."""


def _one_hot(s, k_in, kmax: int, channels_last: bool) -> torch.Tensor:
    """(N, K * C, H, W): s in the channel block of its bin (channel k * C + c), in channels-last
    memory or contiguous. The convolution library is fastest on contiguous input for the forward
    pass and on channels-last input and gradient for the weight gradient (MNIST conv net's
    first layer, one core: forward 20 against 28 ms, weight gradient 19 against 28-40 ms)."""
    n, c, h, w = s.shape
    if not channels_last:
        x = torch.zeros((n, kmax, c, h * w), dtype=s.dtype, device=s.device)
        x.scatter_(1, k_in.view(n, 1, c, h * w).long(), s.reshape(n, 1, c, h * w))
        return x.view(n, kmax * c, h, w)
    x = torch.zeros((n, h * w, kmax, c), dtype=s.dtype, device=s.device)
    x.scatter_(2, k_in.view(n, c, 1, h * w).permute(0, 3, 2, 1).long(),
               s.reshape(n, c, 1, h * w).permute(0, 3, 2, 1))
    return x.view(n, h, w, kmax * c).permute(0, 3, 1, 2)


ONE_HOT_CHUNK_BYTES = 1 << 26
"""The one-hot input is built, convolved and (in backward) rebuilt a slice of samples at a
time, each slice at most this many bytes, so that its memory stays bounded for any batch. With
freed memory kept for reuse (imsnn_train/memory.py) larger slices are faster: the MNIST conv
IMSNN's training step (one core, interleaved) took a median 247 ms with 8 MB slices and 237 ms
with slices up to 1 GB. 64 MB holds that net's largest run of rows sharing a bin (42 MB) in one
slice."""


def _slices(k_in: torch.Tensor, bytes_per_bin: int):
    """(rows, bins used) slices covering the samples in order, each at most ONE_HOT_CHUNK_BYTES
    of one-hot input: runs of rows that share their largest bin (that of their silent inputs,
    whose counters ran longest), so a sample's first steps, which have fewer bins (c <= c0 + t),
    convolve fewer channels. bytes_per_bin: one sample's one-hot bytes per bin."""
    top = dominant_bins(k_in)
    cuts = (torch.nonzero(top[1:] != top[:-1]).squeeze(1) + 1).tolist()
    out = []
    for lo, hi in zip([0, *cuts], [*cuts, k_in.shape[0]]):
        used = int(top[lo]) + 1
        step = max(1, ONE_HOT_CHUNK_BYTES // max(used * bytes_per_bin, 1))
        out.extend((slice(i, min(i + step, hi)), used) for i in range(lo, hi, step))
    return out


def _one_hot_forward(s, k_in, kernels, stride: int, padding: int) -> torch.Tensor:
    """conv2d of the one-hot input with kernels (C_out, K * C, kh, kw), slice by slice, each
    slice over the bins it uses."""
    n, c, h, w = s.shape
    out = [F.conv2d(_one_hot(s[sl], k_in[sl], used, channels_last=False), kernels[:, :used * c],
                    stride=stride, padding=padding)
           for sl, used in _slices(k_in, c * h * w * s.element_size())]
    return torch.cat(out) if len(out) > 1 else out[0]


def _one_hot_weight_grad(s, k_in, ga4, w_shape, kmax: int, stride: int,
                         padding: int) -> torch.Tensor:
    """dL/dE as conv weights (C_out, K * C, kh, kw): the weight gradient of the one-hot
    convolution, summed slice by slice (each slice's bins)."""
    n, c, h, w = s.shape
    ga4 = ga4.contiguous(memory_format=torch.channels_last)
    ge = torch.zeros((w_shape[0], kmax * c, *w_shape[2:]), dtype=ga4.dtype, device=ga4.device)
    for sl, used in _slices(k_in, c * h * w * s.element_size()):
        ge[:, :used * c] += torch.nn.grad.conv2d_weight(
            _one_hot(s[sl], k_in[sl], used, channels_last=True),
            (w_shape[0], used * c, *w_shape[2:]), ga4[sl], stride=stride, padding=padding)
    return ge


def _kernels(e_t: torch.Tensor, w_shape) -> torch.Tensor:
    """E as conv weights (K, C_out, C, kh, kw) (a view of e_t)."""
    c_out, c, kh, kw = w_shape
    return e_t.view(-1, c, kh, kw, c_out).permute(0, 4, 1, 2, 3)


class _ISIConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, s, phi, weight, g_t, r_t, index, stride: int, padding: int, counter):
        """s (0/1 spikes), phi (N, C, H, W) or None with a `Counter`; index (P, Q) from
        `patch_index`; g_t, r_t (K, Q, C_out)."""
        n, c, h, w = s.shape
        c_out, kmax = weight.shape[0], g_t.shape[0]
        p, q = index.shape
        e_t = modulated(g_t, weight.reshape(c_out, q))
        s = s.detach()
        ctx.counter = counter
        if counter is None:
            c_run = None
            k_in = phi.detach().reshape(n, -1).to(bin_dtype(kmax), copy=True).sub_(1)
        else:
            c_run, k_in = count_bins(s.reshape(n, -1), counter, bin_dtype(kmax))
        n_events = float(s.sum())  # s is 0/1: the sum counts the events, in one cheap pass
        ctx.geometry = (s.shape, weight.shape, stride, padding)
        ctx.one_hot = n_events > ONE_HOT_DENSITY * s.numel() * kmax
        if ctx.one_hot:
            kernels = _kernels(e_t, weight.shape).transpose(0, 1).reshape(
                c_out, kmax * c, *weight.shape[2:])
            a = _one_hot_forward(s, k_in, kernels, stride, padding).reshape(n, c_out, p)
            ctx.save_for_backward(s, k_in, g_t, r_t, e_t, index, weight, c_run)
            return a
        entries = _entries(s, k_in, index, padding)
        a = _event_forward(e_t, entries, n * p)
        ctx.save_for_backward(s, k_in, g_t, r_t, e_t, index, weight, c_run, *entries)
        return a.view(n, p, c_out).transpose(1, 2).reshape(n, c_out, p)

    @staticmethod
    def backward(ctx, ga):
        s, k_in, g_t, r_t, e_t, index, weight, c_run, *saved = ctx.saved_tensors
        (n, c, h, w), w_shape, stride, pd = ctx.geometry
        c_out = w_shape[0]
        kmax, q = g_t.shape[0], g_t.shape[1]
        p = index.shape[0]
        need_s, need_phi, need_w, need_g = ctx.needs_input_grad[:4]
        need_ge = need_w or need_g  # dL/dE, (K, Q, C_out)
        grad_s = grad_phi = grad_w = grad_g = ge = None
        counted = need_s and ctx.counter is not None
        need_events = need_phi or counted  # dL/dphi at the events
        if need_phi or need_s or (need_ge and not ctx.one_hot):  # dL/da per output row (n, p)
            ga_rows = ga.reshape(n, c_out, p).transpose(1, 2).reshape(n * p, c_out)
        if ctx.one_hot and need_ge:
            ga4 = ga.reshape(n, c_out, *_out_hw(h, w, w_shape, stride, pd))
            ge = _one_hot_weight_grad(s, k_in, ga4, w_shape, kmax, stride, pd)
            ge = ge.reshape(c_out, kmax, q).permute(1, 2, 0)
        g_events = None
        if need_events or (need_ge and not ctx.one_hot):
            if ctx.one_hot:
                saved = _entries(s, k_in, index, pd)
            rows, idx, ev_of, events = saved
            if need_ge and not ctx.one_hot:
                ge = table_grad(idx, rows, ga_rows, kmax * q).view(kmax, q, c_out)
            if need_events:  # per entry dL/da . E'[k][q], summed per event
                d_t = (e_t.view(kmax, q, c_out) * r_t).view(kmax * q, c_out)
                per_entry = sorted_row_dots(ga_rows, rows, d_t, idx)
                g_events = torch.zeros(events.shape[0], dtype=ga.dtype, device=ga.device)
                g_events.index_add_(0, ev_of, per_entry)
            if need_phi:
                flat = torch.zeros(n * c * h * w, dtype=ga.dtype, device=ga.device)
                grad_phi = flat.index_copy_(0, events, g_events).view(n, c, h, w)
        if need_w:
            grad_w = weight_grad(ge, g_t).t().reshape(w_shape)
        if need_g:  # learnable mu, sigma: dL/dG = dL/dE * w
            grad_g = ge * weight.reshape(c_out, q).t()[None]
        if need_s:
            grad_s = _grad_spikes(ga, ga_rows, e_t, k_in, index, (n, c, h, w), w_shape,
                                  stride, pd)
            if counted:
                counter_grad(c_run, events, g_events, ctx.counter,
                             grad_s.view(ctx.counter.steps, -1))
        return grad_s, grad_phi, grad_w, grad_g, None, None, None, None, None


def _out_hw(h: int, w: int, w_shape, stride: int, pd: int):
    return (h + 2 * pd - w_shape[2]) // stride + 1, (w + 2 * pd - w_shape[3]) // stride + 1


def _entries(s, k_in, index, padding: int):
    """The patch entries of the input spike events, sorted by output row (stable): rows
    n * P + p, table rows k * Q + q and the event of each entry; and the events' flat
    positions n * C * H * W + i in s (ascending)."""
    n, c, h, w = s.shape
    p, q = index.shape
    n_pix = c * (h + 2 * padding) * (w + 2 * padding)
    ev_n, ev_in, ev_flat = nonzero_2d(s.reshape(n, -1).bool())
    ev_pix = _unpadded(c, h, w, padding, s.device).index_select(0, ev_in)
    ev_of, at_p, at_q = _expand(_patches_of(index, n_pix), ev_pix)
    rows = ev_n.index_select(0, ev_of) * p + at_p
    order = argsort_stable(rows, n * p)  # entries by output row: one embedding bag each
    rows, ev_of, at_q = rows[order], ev_of[order], at_q[order]
    idx = k_in.reshape(-1).index_select(0, ev_flat).long().index_select(0, ev_of) * q + at_q
    return rows, idx, ev_of, ev_flat


def _event_forward(e_t, entries, n_rows: int):
    """(N * P, C_out): per output row, the sum of E at its entries (one embedding bag each)."""
    rows, idx = entries[:2]
    counts = torch.bincount(rows, minlength=n_rows)
    return F.embedding_bag(idx, e_t, torch.cumsum(counts, 0) - counts, mode="sum")


def _input_grad(ga4, kernel, in_chw, stride: int, pd: int) -> torch.Tensor:
    """The input gradient of conv2d(x, kernel) for dL/d out = ga4, by the op autograd itself
    runs for conv2d (its input is not read): on the hidden MNIST conv layer 22 ms against
    26 ms for conv_transpose2d with output padding, to the same bits."""
    shape = (ga4.shape[0], *in_chw)
    return torch.ops.aten.convolution_backward(
        ga4, ga4.new_empty(shape), kernel, None, [stride] * 2, [pd] * 2, [1, 1], False, [0, 0], 1,
        [True, False, False])[0]


def _grad_spikes(ga, ga_rows, e_t, k_in, index, in_shape, w_shape, stride, pd):
    """dL/ds (N, C, H, W): a transposed convolution per dominant bin, then the inputs in
    another bin recomputed, summed over the patches each lands in."""
    n, c, h, w = in_shape
    c_out = w_shape[0]
    p, q = index.shape
    ga4 = ga.reshape(n, c_out, *_out_hw(h, w, w_shape, stride, pd))
    kernels = _kernels(e_t, w_shape)
    kd = dominant_bins(k_in)
    grad_s = torch.empty(in_shape, dtype=ga.dtype, device=ga.device)
    for v, rows in bin_groups(kd):
        put_rows(grad_s, rows, _input_grad(take_rows(ga4, rows), kernels[v].contiguous(),
                                           (c, h, w), stride, pd))
    r, col, k, flat = off_dominant(k_in, kd)
    if r.numel():  # the inputs in another bin: dL/da . E[k] summed over their patches, anew
        patches = _patches_of(index, c * (h + 2 * pd) * (w + 2 * pd))
        which, at_p, at_q = _expand(patches,
                                    _unpadded(c, h, w, pd, ga.device).index_select(0, col))
        if n * p < 1 << 31:  # int32 pair indices: half the memory traffic
            r, k = r.int(), k.int()
        pair_rows = r.index_select(0, which) * p + at_p
        order = argsort_stable(pair_rows, n * p)  # by output row, for sorted_row_dots
        which = which.index_select(0, order)
        vals = sorted_row_dots(ga_rows, pair_rows.index_select(0, order), e_t,
                               (k.index_select(0, which) * q + at_q.index_select(0, order)))
        sums = torch.zeros(r.shape[0], dtype=ga.dtype, device=ga.device).index_add_(0, which,
                                                                                    vals)
        grad_s.view(-1)[flat] = sums
    return grad_s


def isi_conv(s, phi, weight, mu, sigma, phi_max: int, stride: int, padding: int, tables=None,
             index=None, counter: Counter | None = None):
    """Synaptic input of an ISI conv layer: s (0/1 spikes), phi (N, C, H, W) -> (N, C_out, H',
    W').

    phi None with `counter`: the synapse runs the presynaptic counter over s itself (rows
    t-major, counter.steps steps), and dL/ds includes the counter's path (as isi_phi_gated
    followed by isi_conv, to the last bit, without building dL/dphi).
    tables: `dense_tables` of mu, sigma reshaped to (C_out, C * kh * kw); index:
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
    check_phi_or_counter(phi, counter, phi_max)
    a = _ISIConv.apply(s, phi, weight, tables[0], tables[1], index, stride, padding, counter)
    return a.view(s.shape[0], c_out, h_out, w_out)
