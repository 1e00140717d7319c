"""The ISI kernels' internal paths against the naive model (tests/test_functional.py's
references): the conv kernel's event scatter and its one-hot convolution, and dL/ds computed
by each row's dominant bin, the other inputs recomputed (functional/lut.py), in float64."""

from __future__ import annotations

import pytest
import torch
from test_functional import (
    D,
    _assert_close,
    _grads,
    _isi_inputs,
    _naive_conv,
    _naive_dense,
    _params,
)

from imsnn_train.functional.isi import isi_conv, isi_dense

pytestmark = pytest.mark.timeout(60)



@pytest.mark.parametrize("path", ["events", "one_hot", "one_hot_sliced"])
@pytest.mark.parametrize("stride,padding,phi_max,rate", [(2, 0, 8, 0.05), (1, 1, 5, 0.3),
                                                          (2, 1, 300, 0.1)])
def test_isi_conv_both_kernel_paths_match_naive(path, stride, padding, phi_max, rate,
                                                monkeypatch):
    """The conv kernel scatters spike events, or (dense inputs) convolves one-hot bins, whole or
    a slice of samples at a time (each slice over the bins it uses); every path, and dL/ds by
    dominant bin + recomputed inputs, against the naive model. h = 10 with kernel 3, stride 2
    leaves the last input row unread (a remainder the input gradient must give back)."""
    import imsnn_train.functional.isi_conv as conv_mod

    monkeypatch.setattr(conv_mod, "ONE_HOT_DENSITY", 1.0 if path == "events" else 0.0)
    if path == "one_hot_sliced":  # 3 samples per slice of 4: one full slice, one partial
        one_sample = phi_max * 3 * 10 * 10 * torch.finfo(D).bits // 8
        monkeypatch.setattr(conv_mod, "ONE_HOT_CHUNK_BYTES", 3 * one_sample)
    gen = torch.Generator().manual_seed(200 + stride + padding + phi_max)
    n, c_in, h, c_out, k = 4, 3, 10, 5, 3
    s, phi = _isi_inputs((n, c_in, h, h), phi_max, gen, rate=rate)
    phi[2] = float(min(phi_max, 4))  # a row with one bin: no corrections there
    if path == "one_hot_sliced":  # the first slice (samples 0-2) convolves bins 1-3 only
        phi[:3] = phi[:3].clamp(max=3.0)
        k_in = (phi - 1).reshape(n, -1).to(torch.int32)
        assert conv_mod._slices(k_in, 1)[0][1] <= 3 < phi_max
    w, mu, sigma = _params((c_out, c_in, k, k), phi_max, gen)
    h_out = (h + 2 * padding - k) // stride + 1
    ga = torch.randn((n, c_out, h_out, h_out), generator=gen, dtype=D)
    lut = _grads(lambda s_, p_, w_: isi_conv(s_, p_, w_, mu, sigma, phi_max, stride, padding),
                 s, phi, w, ga)
    ref = _grads(lambda s_, p_, w_: _naive_conv(s_, p_, w_, mu, sigma, stride, padding),
                 s, phi, w, ga)
    for name, x, y, tol in zip(("a", "grad s", "grad phi", "grad w"), lut, ref,
                               (1e-12, 1e-10, 1e-10, 1e-10)):
        assert x.shape == y.shape, name
        _assert_close(x, y, tol, name)
    assert lut[1].abs().sum() > 0 and lut[3].abs().sum() > 0


def test_isi_dense_dominant_bin_rows_match_naive():
    """dL/ds by each row's dominant bin, the others recomputed: rows with one bin, with many."""
    gen = torch.Generator().manual_seed(21)
    phi_max = 6
    s, phi = _isi_inputs((12, 15), phi_max, gen, rate=0.2)
    phi[:4] = 3.0  # uniform rows
    phi[4:6, :10] = float(phi_max)  # mostly one bin
    w, mu, sigma = _params((7, 15), phi_max, gen)
    ga = torch.randn((12, 7), generator=gen, dtype=D)
    lut = _grads(lambda s_, p_, w_: isi_dense(s_, p_, w_, mu, sigma, phi_max), s, phi, w, ga)
    ref = _grads(lambda s_, p_, w_: _naive_dense(s_, p_, w_, mu, sigma), s, phi, w, ga)
    for name, x, y in zip(("a", "grad s", "grad phi", "grad w"), lut, ref):
        _assert_close(x, y, 1e-10, name)
