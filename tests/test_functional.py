"""imsnn_train.functional against hand-computed values and a naive dense autograd model.

- isi_counter / isi_phi: exact values on hand-made spike trains (before the first spike too).
- isi_gate: the gradient that reaches phi, and through the counter reaches s, is exactly
  min(g, 0) (selective), g (full) or 0 (none) for a loss whose dL/dphi has both signs.
- isi_dense / isi_conv (lookup-table autograd Functions) against theta = w * G(phi) built out
  in float64 and differentiated by autograd; the naive Gaussian path itself is checked against
  finite differences (gradcheck), so the analytic derivative is proven, not just matched.
- spike(): strict Heaviside forward, the documented surrogate derivatives backward.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from imsnn_train.functional.isi import (
    gaussian,
    isi_conv,
    isi_counter,
    isi_dense,
    isi_gate,
    isi_phi,
    isi_phi_gated,
)
from imsnn_train.functional.surrogate import spike

pytestmark = pytest.mark.timeout(60)

D = torch.float64




# ---------------------------------------------------------------------------------------------
# counter and phi


def test_isi_counter_hand_made_trains():
    # columns: silent, spikes at 0, spikes at 2 and 3, spikes at 1 and 5
    s = torch.tensor([
        [0, 1, 0, 0],
        [0, 0, 0, 1],
        [0, 0, 1, 0],
        [0, 0, 1, 0],
        [0, 1, 0, 0],
        [0, 0, 0, 1],
        [0, 0, 0, 0],
    ], dtype=D)
    expected = torch.tensor([
        [1, 1, 1, 1],  # c[0] = c0
        [2, 1, 2, 2],  # c[t+1] = 1 after a spike at t
        [3, 2, 3, 1],
        [4, 3, 1, 2],  # spike at 2 carried ISI 3 (counted from the start), at 3 carries 1
        [5, 4, 1, 3],
        [6, 1, 2, 4],
        [7, 2, 3, 1],  # spike at 5 carried ISI 4
    ], dtype=D)
    c = isi_counter(s, c0=1)
    assert c.shape == s.shape and c.dtype == s.dtype
    assert torch.equal(c, expected)
    # the ISI each spike carries: col 1 spikes at 0 (c0) and at 4 (4 steps later), ...
    assert [float(c[t, 1]) for t in (0, 4)] == [1.0, 4.0]
    assert [float(c[t, 2]) for t in (2, 3)] == [3.0, 1.0]
    assert [float(c[t, 3]) for t in (1, 5)] == [2.0, 4.0]


def test_isi_counter_c0_offsets_only_the_first_interval():
    s = torch.tensor([[0.0], [1.0], [0.0], [1.0], [0.0]])
    assert isi_counter(s, c0=5)[:, 0].tolist() == [5, 6, 1, 2, 1]
    assert isi_counter(s, c0=1)[:, 0].tolist() == [1, 2, 1, 2, 1]
    # batch dimensions are carried through: (T, B, n)
    sb = torch.zeros((4, 2, 3))
    sb[1, 1, 2] = 1
    c = isi_counter(sb, c0=2)
    assert c.shape == (4, 2, 3)
    assert c[:, 0, 0].tolist() == [2, 3, 4, 5]
    assert c[:, 1, 2].tolist() == [2, 3, 1, 2]


def test_isi_phi_clips_at_phi_max():
    c = torch.arange(1.0, 21.0)
    phi = isi_phi(c, phi_max=16)
    assert phi.tolist() == [float(min(k, 16)) for k in range(1, 21)]
    s = torch.zeros((30, 1))  # silent for 30 steps: the counter grows, phi stays at 16
    phi = isi_phi(isi_counter(s, 1), 16)
    assert phi.max() == 16 and phi[:16, 0].tolist() == [float(k) for k in range(1, 17)]


# ---------------------------------------------------------------------------------------------
# the gate


COEFFS = torch.tensor([[0.7, -1.3, 0.0, 2.0], [-0.4, 0.9, -2.5, 0.1]], dtype=D)


@pytest.mark.parametrize("mode,expected", [
    ("selective", COEFFS.clamp(max=0.0)),
    ("full", COEFFS),
    ("none", torch.zeros_like(COEFFS)),
])
def test_gate_gradient_at_phi(mode, expected):
    phi = torch.tensor([[1.0, 3.0, 5.0, 16.0], [2.0, 2.0, 7.0, 9.0]], dtype=D,
                       requires_grad=True)
    out = isi_gate(phi, mode)
    assert torch.equal(out, phi.detach())  # identity forward
    (out * COEFFS).sum().backward()  # dL/dphi = COEFFS, both signs
    assert torch.equal(phi.grad, expected)


def _counter_vjp(s: torch.Tensor, c: torch.Tensor, g_phi: torch.Tensor, phi_max: int):
    """dL/ds by hand for phi = clamp(c, max=phi_max), c[t+1] = 1 + c[t] (1 - s[t]).

    g_c[t] = g_phi[t] [c[t] <= phi_max] + g_c[t+1] (1 - s[t]);  g_s[t] = -c[t] g_c[t+1].
    (torch's clamp passes the gradient where the input equals the bound.)
    """
    t_steps = s.shape[0]
    g_s = torch.zeros_like(s)
    g_c_next = torch.zeros_like(s[0])
    for t in range(t_steps - 1, -1, -1):
        if t < t_steps - 1:
            g_s[t] = -c[t] * g_c_next
        g_c = g_phi[t] * (c[t] <= phi_max) + g_c_next * (1 - s[t])
        g_c_next = g_c
    return g_s


@pytest.mark.parametrize("mode", ["selective", "full", "none"])
def test_gate_gradient_through_counter_to_spikes(mode):
    gen = torch.Generator().manual_seed(3)
    t_steps, n, phi_max = 12, 6, 4
    s = (torch.rand((t_steps, n), generator=gen) < 0.3).to(D).requires_grad_(True)
    coeffs = torch.randn((t_steps, n), generator=gen, dtype=D)
    assert (coeffs > 0).any() and (coeffs < 0).any()
    c = isi_counter(s, c0=1)
    phi = isi_phi(c, phi_max)
    (isi_gate(phi, mode) * coeffs).sum().backward()
    gated = {"selective": coeffs.clamp(max=0.0), "full": coeffs,
             "none": torch.zeros_like(coeffs)}[mode]
    expected = _counter_vjp(s.detach(), c.detach(), gated, phi_max)
    assert torch.allclose(s.grad, expected, rtol=0, atol=1e-12)
    if mode == "selective":
        # what the gate removes makes a difference here (the test is not vacuous)
        ungated = _counter_vjp(s.detach(), c.detach(), coeffs, phi_max)
        assert not torch.allclose(expected, ungated)
    if mode == "none":
        assert torch.count_nonzero(s.grad) == 0


def test_gated_phi_rejects_what_the_gate_rejects():
    with pytest.raises(ValueError, match="gate mode"):
        isi_phi_gated(torch.zeros(3, 2), 1, 4, "sometimes")
    with pytest.raises(ValueError, match="gate strength"):
        isi_phi_gated(torch.zeros(3, 2), 1, 4, "selective", -1.0)


def test_gate_rejects_unknown_mode():
    with pytest.raises(ValueError, match="gate mode"):
        isi_gate(torch.ones(3), "sometimes")


# ---------------------------------------------------------------------------------------------
# lookup-table Functions vs naive dense autograd


def _naive_dense(s, phi, w, mu, sigma):
    """a[n, j] = sum_i s[n, i] w[j, i] G(phi[n, i]; mu[j, i], sigma[j, i]), theta built out."""
    theta = w[None] * gaussian(phi[:, None, :], mu[None], sigma[None])  # (N, out, in)
    return (s[:, None, :] * theta).sum(-1)


def _naive_conv(s, phi, w, mu, sigma, stride, padding):
    """The same, per kernel weight, with phi of the presynaptic pixel (via unfold)."""
    n = s.shape[0]
    c_out, _, k, _ = w.shape
    h_out = (s.shape[2] + 2 * padding - k) // stride + 1
    w_out = (s.shape[3] + 2 * padding - k) // stride + 1
    s_u = F.unfold(s, k, padding=padding, stride=stride)  # (N, Q, L)
    # pad phi with 1.0: padded positions carry s = 0, so their value does not matter
    phi_p = F.pad(phi, (padding,) * 4, value=1.0) if padding else phi
    phi_u = F.unfold(phi_p, k, stride=stride)
    wf, mf, sf = (x.reshape(c_out, -1)[None, :, :, None] for x in (w, mu, sigma))
    theta = wf * gaussian(phi_u[:, None], mf, sf)  # (N, C_out, Q, L)
    a = (s_u[:, None] * theta).sum(2)
    return a.reshape(n, c_out, h_out, w_out)


def _isi_inputs(shape, phi_max, gen, rate=0.4):
    s = (torch.rand(shape, generator=gen) < rate).to(D)
    phi = torch.randint(1, phi_max + 1, shape, generator=gen).to(D)
    return s, phi


def _params(wshape, phi_max, gen):
    w = torch.randn(wshape, generator=gen, dtype=D)
    mu = 1 + torch.rand(wshape, generator=gen, dtype=D) * (phi_max - 1)
    sigma = 1 + torch.rand(wshape, generator=gen, dtype=D) * 5
    return w, mu, sigma


def _grads(fn, s, phi, w, ga):
    s = s.clone().requires_grad_(True)
    phi = phi.clone().requires_grad_(True)
    w = w.clone().requires_grad_(True)
    a = fn(s, phi, w)
    (a * ga).sum().backward()
    return a.detach(), s.grad, phi.grad, w.grad


def _assert_close(x, y, tol, what):
    err = float((x - y).abs().max())
    scale = max(float(y.abs().max()), 1.0)
    assert err <= tol * scale, f"{what}: max abs diff {err:.3g} (scale {scale:.3g})"


@pytest.mark.parametrize("phi_max", [1, 4, 16])
def test_isi_dense_matches_naive(phi_max):
    gen = torch.Generator().manual_seed(10 + phi_max)
    n, n_in, n_out = 23, 17, 9
    s, phi = _isi_inputs((n, n_in), phi_max, gen)
    w, mu, sigma = _params((n_out, n_in), phi_max, gen)
    ga = torch.randn((n, n_out), generator=gen, dtype=D)
    lut = _grads(lambda s_, p_, w_: isi_dense(s_, p_, w_, mu, sigma, phi_max), s, phi, w, ga)
    ref = _grads(lambda s_, p_, w_: _naive_dense(s_, p_, w_, mu, sigma), s, phi, w, ga)
    for name, x, y, tol in zip(("a", "grad s", "grad phi", "grad w"), lut, ref,
                               (1e-12, 1e-10, 1e-10, 1e-10)):
        _assert_close(x, y, tol, name)
    # gradients are non-trivial, and phi's only where a spike carries it
    assert lut[1].abs().sum() > 0 and lut[3].abs().sum() > 0
    if phi_max > 1:
        assert lut[2].abs().sum() > 0
    assert torch.count_nonzero(lut[2][s == 0]) == 0


def test_isi_dense_without_input_grad():
    """First layer: s is data (no grad). grad w and grad phi are still right."""
    gen = torch.Generator().manual_seed(5)
    phi_max = 6
    s, phi = _isi_inputs((11, 8), phi_max, gen)
    w, mu, sigma = _params((5, 8), phi_max, gen)
    w1 = w.clone().requires_grad_(True)
    w2 = w.clone().requires_grad_(True)
    isi_dense(s, phi, w1, mu, sigma, phi_max).sum().backward()
    _naive_dense(s, phi, w2, mu, sigma).sum().backward()
    _assert_close(w1.grad, w2.grad, 1e-10, "grad w")


def test_isi_dense_all_silent():
    phi_max = 4
    gen = torch.Generator().manual_seed(0)
    w, mu, sigma = _params((3, 5), phi_max, gen)
    s = torch.zeros((4, 5), dtype=D, requires_grad=True)
    phi = torch.ones((4, 5), dtype=D, requires_grad=True)
    wg = w.clone().requires_grad_(True)
    a = isi_dense(s, phi, wg, mu, sigma, phi_max)
    assert torch.equal(a, torch.zeros((4, 3), dtype=D))
    a.sum().backward()
    assert torch.count_nonzero(wg.grad) == 0 and torch.count_nonzero(phi.grad) == 0
    expected = (w * gaussian(phi.detach()[0][None], mu, sigma)).sum(0)  # dL/ds_i, bin of phi
    _assert_close(s.grad, expected.expand(4, 5), 1e-12, "grad s")


@pytest.mark.parametrize("stride,padding,phi_max", [(1, 0, 5), (2, 1, 5), (2, 2, 3), (2, 1, 300)])
def test_isi_conv_matches_naive(stride, padding, phi_max):
    gen = torch.Generator().manual_seed(100 + stride * 10 + padding)
    n, c_in, h, c_out, k = 3, 2, 9, 4, 3
    s, phi = _isi_inputs((n, c_in, h, h), phi_max, gen)
    w, mu, sigma = _params((c_out, c_in, k, k), phi_max, gen)
    h_out = (h + 2 * padding - k) // stride + 1
    ga = torch.randn((n, c_out, h_out, h_out), generator=gen, dtype=D)
    lut = _grads(lambda s_, p_, w_: isi_conv(s_, p_, w_, mu, sigma, phi_max, stride, padding),
                 s, phi, w, ga)
    ref = _grads(lambda s_, p_, w_: _naive_conv(s_, p_, w_, mu, sigma, stride, padding),
                 s, phi, w, ga)
    # the unfold reference itself agrees with conv2d when the Gaussian is constant
    assert torch.allclose(_naive_conv(s, phi, w, mu, torch.full_like(sigma, 1e9), stride,
                                      padding),
                          F.conv2d(s, w, stride=stride, padding=padding), atol=1e-12)
    for name, x, y, tol in zip(("a", "grad s", "grad phi", "grad w"), lut, ref,
                               (1e-12, 1e-10, 1e-10, 1e-10)):
        assert x.shape == y.shape, name
        _assert_close(x, y, tol, name)
    assert lut[1].abs().sum() > 0 and lut[2].abs().sum() > 0 and lut[3].abs().sum() > 0
    assert torch.count_nonzero(lut[2][s == 0]) == 0


def test_naive_gaussian_path_passes_gradcheck():
    """Finite differences prove the analytic dtheta/dphi (and d/dw, d/ds) of the naive model,
    which the LUT Functions are matched against above."""
    gen = torch.Generator().manual_seed(7)
    phi_max = 8
    s, _ = _isi_inputs((5, 6), phi_max, gen)
    phi = (1 + torch.rand((5, 6), generator=gen, dtype=D) * (phi_max - 1)).requires_grad_(True)
    w, mu, sigma = _params((4, 6), phi_max, gen)
    w.requires_grad_(True)
    s.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda s_, p_, w_: _naive_dense(s_, p_, w_, mu, sigma), (s, phi, w), eps=1e-6,
        atol=1e-8)
    sc, _ = _isi_inputs((2, 2, 6, 6), phi_max, gen)
    phic = (1 + torch.rand((2, 2, 6, 6), generator=gen, dtype=D) * (phi_max - 1))
    wc, muc, sigc = _params((3, 2, 3, 3), phi_max, gen)
    assert torch.autograd.gradcheck(
        lambda p_, w_: _naive_conv(sc, p_, w_, muc, sigc, 2, 1),
        (phic.requires_grad_(True), wc.requires_grad_(True)), eps=1e-6, atol=1e-8)


def test_lut_functions_pass_gradcheck_wrt_w():
    """The LUT outputs are linear in w: finite differences check grad w directly."""
    gen = torch.Generator().manual_seed(8)
    phi_max = 5
    s, phi = _isi_inputs((6, 7), phi_max, gen)
    w, mu, sigma = _params((3, 7), phi_max, gen)
    assert torch.autograd.gradcheck(
        lambda w_: isi_dense(s, phi, w_, mu, sigma, phi_max), (w.requires_grad_(True),))
    sc, phic = _isi_inputs((2, 2, 6, 6), phi_max, gen)
    wc, muc, sigc = _params((3, 2, 3, 3), phi_max, gen)
    assert torch.autograd.gradcheck(
        lambda w_: isi_conv(sc, phic, w_, muc, sigc, phi_max, 2, 1), (wc.requires_grad_(True),))


def test_isi_dense_float32_matches_float64():
    gen = torch.Generator().manual_seed(9)
    phi_max = 16
    s, phi = _isi_inputs((40, 30), phi_max, gen)
    w, mu, sigma = _params((12, 30), phi_max, gen)
    a64 = isi_dense(s, phi, w, mu, sigma, phi_max)
    a32 = isi_dense(s.float(), phi.float(), w.float(), mu.float(), sigma.float(), phi_max)
    assert a32.dtype == torch.float32
    assert torch.allclose(a32.double(), a64, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# surrogate spikes


def test_spike_forward_is_strict_heaviside():
    x = torch.tensor([-2.0, -1e-12, 0.0, 1e-12, 3.0], dtype=D)
    for kind in ("fast_sigmoid", "arctan"):
        out = spike(x, kind, 5.0)
        assert out.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
        assert out.dtype == D


@pytest.mark.parametrize("kind,scale", [("fast_sigmoid", 5.0), ("fast_sigmoid", 2.0),
                                        ("arctan", 5.0), ("arctan", 1.0)])
def test_spike_backward_shapes(kind, scale):
    x = (torch.arange(-20, 21, dtype=D) / 10).requires_grad_(True)  # x[20] == 0 exactly
    g = torch.linspace(0.5, 1.5, 41, dtype=D)
    (spike(x, kind, scale) * g).sum().backward()
    xd = x.detach()
    if kind == "fast_sigmoid":
        d = 1.0 / (1.0 + scale * xd.abs()) ** 2

        def primitive(z):  # the fast sigmoid x / (1 + k|x|)
            return z / (1.0 + scale * z.abs())
    else:
        d = 1.0 / (1.0 + (0.5 * math.pi * scale * xd) ** 2)

        def primitive(z):  # a scaled arctan step
            return torch.atan(0.5 * math.pi * scale * z) * 2 / (math.pi * scale)
    assert torch.allclose(x.grad, g * d, rtol=0, atol=1e-15)
    # the surrogate is the derivative of a smooth step (central differences)
    h = 1e-6
    fd = (primitive(xd + h) - primitive(xd - h)) / (2 * h)
    assert torch.allclose(d, fd, atol=1e-7)
    # peak 1 at threshold, symmetric, decreasing away from it
    assert float(d[20]) == 1.0
    assert torch.allclose(d, d.flip(0))
    assert (d[21:].diff() < 0).all()
    # wider for a smaller scale
    if kind == "arctan" and scale == 1.0:
        assert float(d[30]) > 1.0 / (1.0 + (0.5 * math.pi * 5.0 * 0.5) ** 2)


def test_spike_unknown_surrogate_raises_on_backward():
    x = torch.zeros(3, requires_grad=True)
    out = spike(x, "boxcar", 1.0)
    with pytest.raises(ValueError, match="surrogate"):
        out.sum().backward()
