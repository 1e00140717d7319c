"""The method's levers as config values (issue: fronts against L1), each against its meaning.

- gate strength: the gradient the gate passes to phi is strength x min(g, 0) (selective) or
  strength x g (full); strength 0 is exactly the `none` ablation.
- gate warm-up: epoch e < E uses strength x e / E (a blend from `none`), then the full gate;
  the training loop gives every ISI layer the epoch's strength.
- learned mu, sigma (method.md's optional extension): the lookup-table kernels' gradients with
  respect to mu and sigma equal naive autograd of theta = w G(phi; mu, sigma), dense and conv;
  a training run moves them, keeps sigma >= SIGMA_MIN, and exports what it learned.
- IMSNN + L1: an ISI model with activity_l1 > 0 trains with the L1 term in its loss.
"""

from __future__ import annotations

import pytest
import torch
from test_functional import _naive_conv, _naive_dense  # theta built out, checked by gradcheck

from imsnn_train import config as C
from imsnn_train.functional.isi import isi_conv, isi_dense, isi_gate
from imsnn_train.network import Network

pytestmark = pytest.mark.timeout(120)

D = torch.float64


@pytest.mark.parametrize("mode", ["selective", "full"])
@pytest.mark.parametrize("strength", [0.0, 0.25, 1.0, 3.0])
def test_gate_strength_scales_the_gradient_to_phi(mode, strength):
    g = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], dtype=D)
    phi = torch.ones(5, dtype=D, requires_grad=True)
    (isi_gate(phi, mode, strength) * g).sum().backward()
    kept = g.clamp(max=0.0) if mode == "selective" else g
    assert torch.equal(phi.grad, kept * strength)
    none = torch.ones(5, dtype=D, requires_grad=True)
    (isi_gate(none, "none", strength) * g).sum().backward()
    assert torch.count_nonzero(none.grad) == 0


def test_gate_strength_must_not_be_negative():
    with pytest.raises(ValueError, match="gate strength"):
        isi_gate(torch.ones(2), "selective", -0.1)
    with pytest.raises(C.ConfigError, match="model.isi.gate_strength"):
        C.from_dict({"model": {"isi": {"gate_strength": -1}}})
    with pytest.raises(C.ConfigError, match="model.isi.gate_warmup_epochs"):
        C.from_dict({"model": {"isi": {"gate_warmup_epochs": -1}}})


def test_gate_warmup_blends_from_none_to_the_full_gate():
    isi = C.from_dict({"model": {"isi": {"gate_strength": 0.8, "gate_warmup_epochs": 4}}}
                      ).model.isi
    assert [C.gate_strength(isi, e) for e in range(6)] == pytest.approx(
        [0.0, 0.2, 0.4, 0.6, 0.8, 0.8])
    plain = C.ISIConfig()
    assert [C.gate_strength(plain, e) for e in range(3)] == [1.0, 1.0, 1.0]
    engaged_later = C.replace(plain, gate_warmup_epochs=1)
    assert [C.gate_strength(engaged_later, e) for e in range(3)] == [0.0, 1.0, 1.0]


def test_training_gives_each_epoch_its_gate_strength(monkeypatch, tmp_path):
    """The loop sets the warm-up's strength on every ISI layer before each epoch's steps."""
    import imsnn_train.train as train_mod

    seen = []
    real_step = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        seen.append(tuple(layer.gate_strength for layer in net_ref[0].layers if layer.isi))
        return real_step(self, *args, **kwargs)

    net_ref = []
    real_init = Network.__init__

    def keep(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        net_ref.append(self)

    monkeypatch.setattr(Network, "__init__", keep)
    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    cfg = C.from_dict({
        "name": "warmup",
        "model": {"layers": [{"kind": "dense", "out": 8}, {"kind": "dense", "out": 10}],
                  "isi": {"phi_max": 4, "gate_warmup_epochs": 2, "gate_strength": 0.5}},
        "encoding": {"num_steps": 4},
        "train": {"epochs": 3, "batch_size": 20, "train_subset": 40, "eval_subset": 20,
                  "val_size": 100, "threads": 1, "device": "cpu"}})
    train_mod.train(cfg, tmp_path / "run", progress=False, log=lambda *a: None)
    # two steps per epoch; both layers are ISI
    assert seen == [(0.0, 0.0)] * 2 + [(0.25, 0.25)] * 2 + [(0.5, 0.5)] * 2


# ---------------------------------------------------------------------------------------------
# learned mu and sigma


def _grads_mu_sigma(fn, w, mu, sigma, ga):
    w, mu, sigma = (x.clone().requires_grad_(True) for x in (w, mu, sigma))
    a = fn(w, mu, sigma)
    (a * ga).sum().backward()
    return a.detach(), w.grad, mu.grad, sigma.grad


def _close(x, y, what):
    err = float((x - y).abs().max())
    assert err <= 1e-10 * max(float(y.abs().max()), 1.0), f"{what}: {err:.3g}"


@pytest.mark.parametrize("phi_max", [3, 16])
def test_dense_gradients_wrt_mu_and_sigma_match_naive_autograd(phi_max):
    gen = torch.Generator().manual_seed(phi_max)
    n, n_in, n_out = 19, 13, 7
    s = (torch.rand((n, n_in), generator=gen) < 0.4).to(D)
    phi = torch.randint(1, phi_max + 1, (n, n_in), generator=gen).to(D)
    w = torch.randn((n_out, n_in), generator=gen, dtype=D)
    mu = 1 + torch.rand((n_out, n_in), generator=gen, dtype=D) * (phi_max - 1)
    sigma = 0.5 + torch.rand((n_out, n_in), generator=gen, dtype=D) * 5
    ga = torch.randn((n, n_out), generator=gen, dtype=D)
    lut = _grads_mu_sigma(lambda w_, m_, s_: isi_dense(s, phi, w_, m_, s_, phi_max),
                          w, mu, sigma, ga)
    ref = _grads_mu_sigma(lambda w_, m_, s_: _naive_dense(s, phi, w_, m_, s_), w, mu, sigma, ga)
    for name, x, y in zip(("a", "grad w", "grad mu", "grad sigma"), lut, ref):
        _close(x, y, name)
    assert lut[2].abs().sum() > 0 and lut[3].abs().sum() > 0


@pytest.mark.parametrize("density", [0.05, 0.6])  # the event path and the one-hot path
def test_conv_gradients_wrt_mu_and_sigma_match_naive_autograd(density):
    gen = torch.Generator().manual_seed(int(density * 100))
    phi_max, stride, padding = 6, 2, 1
    s = (torch.rand((3, 2, 9, 9), generator=gen) < density).to(D)
    phi = torch.randint(1, phi_max + 1, s.shape, generator=gen).to(D)
    w = torch.randn((4, 2, 3, 3), generator=gen, dtype=D)
    mu = 1 + torch.rand(w.shape, generator=gen, dtype=D) * (phi_max - 1)
    sigma = 0.5 + torch.rand(w.shape, generator=gen, dtype=D) * 5
    ga = torch.randn((3, 4, 5, 5), generator=gen, dtype=D)
    lut = _grads_mu_sigma(
        lambda w_, m_, s_: isi_conv(s, phi, w_, m_, s_, phi_max, stride, padding),
        w, mu, sigma, ga)
    ref = _grads_mu_sigma(lambda w_, m_, s_: _naive_conv(s, phi, w_, m_, s_, stride, padding),
                          w, mu, sigma, ga)
    for name, x, y in zip(("a", "grad w", "grad mu", "grad sigma"), lut, ref):
        _close(x, y, name)
    assert lut[2].abs().sum() > 0 and lut[3].abs().sum() > 0


def test_fixed_mu_sigma_get_no_gradient_and_stay_buffers():
    cfg = C.from_dict({"model": {"layers": [{"kind": "dense", "out": 6},
                                            {"kind": "dense", "out": 3}]}})
    net = Network(cfg.model)
    names = {n for n, _ in net.named_parameters()}
    assert names == {"layers.0.weight", "layers.1.weight"}
    learned = Network(C.replace(cfg.model, isi=C.replace(cfg.model.isi, learn_mu_sigma=True)))
    names = {n for n, _ in learned.named_parameters()}
    assert {"layers.0.mu", "layers.0.sigma", "layers.1.mu", "layers.1.sigma"} <= names
    # same draw either way: learning starts from the fixed model's mu, sigma
    assert torch.equal(net.layers[0].mu, learned.layers[0].mu.detach())
    assert torch.equal(net.layers[0].sigma, learned.layers[0].sigma.detach())


def test_training_learns_mu_sigma_keeps_sigma_valid_and_exports_them(tmp_path):
    from imsnn_train.checkpoint import load_network
    from imsnn_train.export import to_model_file
    from imsnn_train.train import train

    base = {
        "name": "learned",
        "model": {"layers": [{"kind": "conv", "out": 4, "kernel": 5, "stride": 3},
                             {"kind": "dense", "out": 10}],
                  "isi": {"phi_max": 4, "sigma_lo": 0.1, "sigma_hi": 0.12,
                          "learn_mu_sigma": True}},
        "encoding": {"num_steps": 6},
        "train": {"epochs": 1, "batch_size": 20, "lr": 0.05, "train_subset": 60,
                  "eval_subset": 20, "val_size": 100, "threads": 1, "device": "cpu"}}
    cfg = C.from_dict(base)
    start = Network(cfg.model)
    train(cfg, tmp_path / "run", progress=False, log=lambda *a: None)
    net, _, _ = load_network(tmp_path / "run" / "checkpoint.pt")
    for before, after in zip(start.layers, net.layers):
        assert not torch.equal(before.mu, after.mu), "mu did not move"
        assert not torch.equal(before.sigma, after.sigma), "sigma did not move"
        assert float(after.sigma.min()) >= C.SIGMA_MIN
    # a high learning rate and sigma starting at the floor: the clamp was needed
    assert any(float((layer.sigma == C.SIGMA_MIN).sum()) > 0 for layer in net.layers)
    model = to_model_file(net, cfg, fixed=False)
    for layer, spec in zip(net.layers, model.layers):
        assert torch.equal(torch.tensor(spec.mu).float(), layer.mu.detach())
        assert torch.equal(torch.tensor(spec.sigma).float(), layer.sigma.detach())


def test_isi_model_with_l1_pays_for_its_spikes():
    """IMSNN + L1: the same loss term as the baseline's, on an ISI network."""
    from imsnn_train.train import loss_fn

    cfg = C.from_dict({"model": {"layers": [{"kind": "dense", "out": 12},
                                            {"kind": "dense", "out": 10}]},
                       "encoding": {"num_steps": 5}})
    with_l1 = C.replace(cfg, train=C.replace(cfg.train, activity_l1=0.02))
    net = Network(cfg.model)
    x = (torch.rand(5, 4, 784, generator=torch.Generator().manual_seed(2)) < 0.3).float()
    out = net(x)
    y = torch.tensor([1, 2, 3, 4])
    spikes = sum(float(s.sum()) for s in out.spikes[1:]) / 4
    assert spikes > 0
    assert float(loss_fn(out, y, with_l1)) == pytest.approx(
        float(loss_fn(out, y, cfg)) + 0.02 * spikes, rel=1e-6)
