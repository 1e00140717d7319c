"""The ISI layers' synapses run the presynaptic counter themselves (functional/counter.py):
isi_dense / isi_conv with counter= against the reference composition isi_phi_gated -> synapse
with phi, on spike trains whose counters are clipped at phi_max and restart, for every gate
mode and strength, both conv kernel paths, float64 and float32: the same synaptic input and
the same dL/ds and dL/dw, to the last bit."""

from __future__ import annotations

import pytest
import torch

from imsnn_train.functional.counter import Counter, isi_phi_gated
from imsnn_train.functional.isi import isi_conv, isi_dense

pytestmark = pytest.mark.timeout(120)

GATES = [("selective", 1.0), ("selective", 0.3), ("full", 1.0), ("full", 2.0), ("none", 1.0),
         ("selective", 0.0)]


def _trains(shape, rate, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen) < rate).to(dtype), gen


def _compare(run_ref, run_counted, s, weight, ga):
    """Values and gradients of the reference (s -> phi tensor -> synapse) and the counted
    synapse on the same inputs."""
    out = []
    for run in (run_ref, run_counted):
        s_, w_ = s.clone().requires_grad_(True), weight.clone().requires_grad_(True)
        a = run(s_, w_)
        (a * ga).sum().backward()
        out.append((a.detach(), s_.grad, w_.grad))
    (a_ref, gs_ref, gw_ref), (a, gs, gw) = out
    assert torch.equal(a, a_ref)
    assert torch.equal(gs, gs_ref), float((gs - gs_ref).abs().max())
    assert torch.equal(gw, gw_ref)
    return gs


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mode,strength", GATES)
def test_dense_counted_equals_reference(mode, strength, dtype):
    t, b, n_in, n_out, phi_max, c0 = 14, 3, 19, 6, 4, 2
    s, gen = _trains((t, b, n_in), 0.25, dtype, 31)
    w = torch.randn((n_out, n_in), generator=gen).to(dtype)
    mu = (1 + torch.rand((n_out, n_in), generator=gen) * (phi_max - 1)).to(dtype)
    sigma = (1 + torch.rand((n_out, n_in), generator=gen) * 3).to(dtype)
    ga = torch.randn((t * b, n_out), generator=gen).to(dtype)

    def ref(s_, w_):
        phi = isi_phi_gated(s_, c0, phi_max, mode, strength)
        return isi_dense(s_.reshape(t * b, -1), phi.reshape(t * b, -1), w_, mu, sigma, phi_max)

    def counted(s_, w_):
        return isi_dense(s_.reshape(t * b, -1), None, w_, mu, sigma, phi_max,
                         counter=Counter(c0, phi_max, mode, strength, t))

    gs = _compare(ref, counted, s, w, ga)
    assert gs.abs().sum() > 0


@pytest.mark.parametrize("path", ["events", "one_hot"])
@pytest.mark.parametrize("mode,strength", GATES)
@pytest.mark.parametrize("stride,padding", [(2, 0), (1, 1)])
def test_conv_counted_equals_reference(path, mode, strength, stride, padding, monkeypatch):
    import imsnn_train.functional.isi_conv as conv_mod

    monkeypatch.setattr(conv_mod, "ONE_HOT_DENSITY", 1.0 if path == "events" else 0.0)
    t, b, c_in, h, c_out, k, phi_max, c0 = 12, 2, 3, 7, 4, 3, 5, 1
    s, gen = _trains((t, b, c_in, h, h), 0.2, torch.float64, 32 + stride)
    w = torch.randn((c_out, c_in, k, k), generator=gen, dtype=torch.float64)
    mu = 1 + torch.rand(w.shape, generator=gen, dtype=torch.float64) * (phi_max - 1)
    sigma = 1 + torch.rand(w.shape, generator=gen, dtype=torch.float64) * 3
    h_out = (h + 2 * padding - k) // stride + 1
    ga = torch.randn((t * b, c_out, h_out, h_out), generator=gen, dtype=torch.float64)
    rows = (t * b, c_in, h, h)

    def ref(s_, w_):
        phi = isi_phi_gated(s_, c0, phi_max, mode, strength)
        return isi_conv(s_.reshape(rows), phi.reshape(rows), w_, mu, sigma, phi_max, stride,
                        padding)

    def counted(s_, w_):
        return isi_conv(s_.reshape(rows), None, w_, mu, sigma, phi_max, stride, padding,
                        counter=Counter(c0, phi_max, mode, strength, t))

    _compare(ref, counted, s, w, ga)


def test_the_counter_path_carries_gradient():
    """dL/ds with the gate open differs from the synapse alone (gate none): the counter's
    part is there."""
    t, b, n_in, n_out, phi_max = 10, 2, 11, 5, 4
    s, gen = _trains((t * b, n_in), 0.3, torch.float64, 33)
    w = torch.randn((n_out, n_in), generator=gen, dtype=torch.float64)
    mu = torch.full(w.shape, 2.0, dtype=torch.float64)
    sigma = torch.full(w.shape, 1.5, dtype=torch.float64)
    grads = {}
    for mode in ("full", "none"):
        s_ = s.clone().requires_grad_(True)
        isi_dense(s_, None, w, mu, sigma, phi_max,
                  counter=Counter(1, phi_max, mode, 1.0, t)).sum().backward()
        grads[mode] = s_.grad
    assert not torch.equal(grads["full"], grads["none"])


def test_refusals():
    s = torch.zeros(6, 4)
    w, mu, sigma = torch.zeros(3, 4), torch.ones(3, 4), torch.ones(3, 4)
    with pytest.raises(ValueError, match="not both"):
        isi_dense(s, torch.ones_like(s), w, mu, sigma, 4, counter=Counter(1, 4, "full", 1.0, 2))
    with pytest.raises(ValueError, match="not neither"):
        isi_dense(s, None, w, mu, sigma, 4)
    with pytest.raises(ValueError, match="phi_max"):
        isi_dense(s, None, w, mu, sigma, 4, counter=Counter(1, 5, "full", 1.0, 2))
    with pytest.raises(ValueError, match="whole batches"):
        isi_dense(s, None, w, mu, sigma, 4, counter=Counter(1, 4, "full", 1.0, 4))
    with pytest.raises(ValueError, match="gate mode"):
        Counter(1, 4, "sometimes", 1.0, 2)
    with pytest.raises(ValueError, match="gate strength"):
        Counter(1, 4, "full", -1.0, 2)


def test_the_gpu_branch_of_the_scans_gives_the_same_bits(monkeypatch):
    """The event and off-dominant scans run in numpy on CPU and in torch elsewhere
    (lut.through_numpy): both branches, on CPU, give the same values and gradients."""
    import imsnn_train.functional.lut as lut_mod

    t, b, c_in, h, c_out, k, phi_max = 10, 2, 3, 8, 4, 3, 5
    s, gen = _trains((t, b, c_in, h, h), 0.2, torch.float64, 34)
    w = torch.randn((c_out, c_in, k, k), generator=gen, dtype=torch.float64)
    mu = 1 + torch.rand(w.shape, generator=gen, dtype=torch.float64) * (phi_max - 1)
    sigma = 1 + torch.rand(w.shape, generator=gen, dtype=torch.float64) * 3
    wd = torch.randn((6, c_in * h * h), generator=gen, dtype=torch.float64)
    mud, sigd = torch.full(wd.shape, 2.0, dtype=torch.float64), torch.ones(wd.shape).double()

    def run():
        s_ = s.clone().requires_grad_(True)
        counter = Counter(1, phi_max, "selective", 1.0, t)
        a = isi_conv(s_.reshape(t * b, c_in, h, h), None, w, mu, sigma, phi_max, 2, 1,
                     counter=counter)
        d = isi_dense(s_.reshape(t * b, -1), None, wd, mud, sigd, phi_max, counter=counter)
        (a.square().sum() + d.square().sum()).backward()
        return a.detach(), d.detach(), s_.grad

    on_numpy = run()
    asked = []
    monkeypatch.setattr(lut_mod, "through_numpy", lambda x: asked.append(x.shape) or False)
    on_torch = run()
    assert len(asked) >= 4  # events and off-dominant inputs of both layers took torch's branch
    for x, y in zip(on_numpy, on_torch):
        assert torch.equal(x, y)
