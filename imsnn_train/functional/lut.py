"""Lookup-table pieces the ISI dense and conv kernels share (method.md section 2).

phi is an integer in [1, phi_max] and mu, sigma are fixed, so the modulation is a table over
ISI bins k = phi - 1: G[k] = exp(-(k + 1 - mu)^2 / (2 sigma^2)), and a layer's effective weights
are E[k] = w * G[k]. The kernels never build a per-sample weight tensor.

dL/ds needs E at the bin of every input (spiking or not), which is the expensive part. Most
inputs of a row (one sample at one step) share one bin: a silent input's counter runs up to
phi_max, and in the first steps of a sample every silent input has the same count. So dL/ds is
computed as one dense product per row with the row's largest bin (`dominant_bins`), and the
inputs whose bin differs are then recomputed directly as dL/da . E[k] (`sorted_row_dots`),
overwriting their dense value. That is exact, and costs about 1/K of the product over all K bins.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F


def gaussian(phi: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return torch.exp(-((phi - mu) ** 2) / (2.0 * sigma**2))


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


def dense_tables(mu: torch.Tensor, sigma: torch.Tensor, phi_max: int):
    """(G^T, R^T), each (K, n_in, n_out) contiguous, for `isi_dense` and `isi_conv`."""
    g, r = modulation_tables(mu, sigma, phi_max)
    return g.transpose(1, 2).contiguous(), r.transpose(1, 2).contiguous()


def modulated(g_t: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """e_t = (G^T * w^T) flattened to (K * n_in, n_out)."""
    kmax, n_in, n_out = g_t.shape
    return (g_t * weight.t()[None]).reshape(kmax * n_in, n_out)


def through_numpy(x: torch.Tensor) -> bool:
    """Whether a scan of x runs in numpy (CPU tensors) or in torch (other devices). The torch
    branch is the one a GPU takes; tests run it on CPU too by replacing this function."""
    return x.device.type == "cpu"


def flat_nonzero(mask: torch.Tensor) -> torch.Tensor:
    """The flat indices (int64, ascending) where a tensor is nonzero. On CPU through numpy,
    whose scan of a bool array is several times faster than torch.nonzero's (1.9 ms against
    5.5 ms for 5.5M entries, one core)."""
    if through_numpy(mask):
        return torch.from_numpy(np.flatnonzero(mask.contiguous().numpy()))
    return torch.nonzero(mask.reshape(-1)).squeeze(1)


def nonzero_2d(mask: torch.Tensor):
    """(rows, cols, flat indices) where a 2-D bool tensor is true, in row-major order
    (torch.nonzero's)."""
    flat = flat_nonzero(mask)
    rows = torch.div(flat, mask.shape[1], rounding_mode="floor")
    return rows, flat - rows * mask.shape[1], flat


def argsort_stable(key: torch.Tensor, upper: int) -> torch.Tensor:
    """Stable argsort of integer keys in [0, upper), sorted as the narrowest integer type that
    holds them: int16 keys sort about four times faster than int64 ones (0.7M keys, one core)."""
    if upper <= 1 << 15:
        key = key.to(torch.int16)
    elif upper <= 1 << 31:
        key = key.to(torch.int32)
    return torch.argsort(key, stable=True)


def table_grad(idx: torch.Tensor, rows: torch.Tensor, ga: torch.Tensor,
               n_table_rows: int) -> torch.Tensor:
    """dL/dE (n_table_rows, n_out): for every table row, the sum of ga[rows[m]] over the events
    m that read it (idx[m]). One embedding bag per table row over the events sorted by it
    (stable, so the sums run in a fixed order); rows no event read come out zero."""
    order = argsort_stable(idx, n_table_rows)
    counts = torch.bincount(idx, minlength=n_table_rows)
    offsets = torch.cumsum(counts, 0) - counts
    return F.embedding_bag(rows.index_select(0, order), ga, offsets, mode="sum")


def weight_grad(ge: torch.Tensor, g_t: torch.Tensor) -> torch.Tensor:
    """dL/dw^T (n_in, n_out) = sum_k dL/dE[k] * G^T[k], accumulated bin by bin (no (K, n_in,
    n_out) temporary). ge, g_t: (K, n_in, n_out)."""
    out = ge[0] * g_t[0]
    for k in range(1, ge.shape[0]):
        out.addcmul_(ge[k], g_t[k])
    return out


def bin_dtype(phi_max: int) -> torch.dtype:
    """The narrowest type for ISI bins 0..phi_max - 1: gathers move less memory."""
    return torch.uint8 if phi_max <= 256 else torch.int32


def dominant_bins(k: torch.Tensor) -> torch.Tensor:
    """The bin of each row's dense dL/ds product: its largest (where silent inputs are), int64.
    k: (N, n) bins."""
    if k.shape[1] == 0:
        return torch.zeros(k.shape[0], dtype=torch.long, device=k.device)
    return k.amax(dim=1).long()


def bin_groups(kd: torch.Tensor):
    """(bin, rows) for each distinct dominant bin; rows is a slice where they are consecutive
    (rows are step-major, and the dominant bin mostly follows the step), else an index."""
    groups = []
    for v in torch.unique(kd).tolist():
        rows = torch.nonzero(kd == v).squeeze(1)
        first, last = int(rows[0]), int(rows[-1])
        groups.append((int(v), slice(first, last + 1) if last - first + 1 == rows.numel()
                       else rows))
    return groups


def take_rows(x: torch.Tensor, rows) -> torch.Tensor:
    return x[rows] if isinstance(rows, slice) else x.index_select(0, rows)


def put_rows(out: torch.Tensor, rows, value: torch.Tensor) -> None:
    if isinstance(rows, slice):
        out[rows] = value
    else:
        out.index_copy_(0, rows, value)


def off_dominant(k: torch.Tensor, kd: torch.Tensor):
    """(rows, cols, bins, flat indices) of the inputs whose bin is not their row's dominant
    one. On CPU the comparison runs in numpy: torch's broadcast compare of uint8 rows is
    several times slower (3.9 ms against 0.5 ms for 2400 x 2304 bins)."""
    if through_numpy(k):
        kn = k.numpy()
        mask = torch.from_numpy(kn != kd.numpy().astype(kn.dtype)[:, None])
    else:
        mask = k != kd[:, None].to(k.dtype)
    flat = flat_nonzero(mask)
    rows = torch.div(flat, k.shape[1], rounding_mode="floor")
    return rows, flat - rows * k.shape[1], k.reshape(-1).index_select(0, flat).long(), flat


def sorted_row_dots(a: torch.Tensor, rows: torch.Tensor, b: torch.Tensor,
                    cols: torch.Tensor) -> torch.Tensor:
    """a[rows[m]] . b[cols[m]] for every m, rows ascending: the pairs as the sparsity pattern of
    a sampled matrix product (a @ b^T at the pairs, torch.sparse.sampled_addmm, one CSR row per
    row of a). A gather-bound loop either way; on the MNIST conv net's 0.6M pairs of 32 floats
    it takes 4.3 ms against 17.5 ms for gathering the rows with embedding bags and vecdot (one
    core)."""
    n_pairs = rows.shape[0]
    if n_pairs == 0:
        return a.new_zeros(0)
    itype = torch.int32 if max(a.shape[0], b.shape[0], n_pairs) < 1 << 31 else torch.int64
    crow = torch.zeros(a.shape[0] + 1, dtype=itype, device=a.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=a.shape[0]), 0)
    with warnings.catch_warnings():  # torch marks its CSR tensors "beta"; these are internal
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        pattern = torch.sparse_csr_tensor(crow, cols.to(itype),
                                          torch.zeros(n_pairs, dtype=a.dtype, device=a.device),
                                          size=(a.shape[0], b.shape[0]))
    return torch.sparse.sampled_addmm(pattern, a, b.t(), beta=0.0).values()
