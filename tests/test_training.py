"""Training on real MNIST: it learns, it is deterministic, and resuming changes nothing.

- learning: a tiny 784-32-2 network (IMSNN `selective` and the plain baseline) trained with the
  project's Network, loss and Adam on digits 0 vs 1 reaches >= 90% on held-out test images.
  `train()` cannot restrict classes (train_subset takes the first N images of all ten), so this
  test drives Network + Adam itself; `train()` is exercised by the tests below.
- determinism: two `train()` runs with one config, in two folders, give identical metrics
  (all but wall-clock seconds and the checkpoint path) and identical model and optimizer state.
- resume: a run with epochs=2 that crashes in the middle of epoch 2 (after two optimizer steps
  there, i.e. after its epoch-1 checkpoint was written), resumed with `resume=True` and the same
  config, ends bit-identical to an uninterrupted epochs=2 run: weights, Adam state, history,
  test metrics. The config is the same object in both runs, so the resume check on the config
  is honest (and a different config is refused).
- checkpoints load with weights_only=True: one carrying a pickled callable is refused with
  CheckpointError, and the callable never runs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import imsnn_train.train as train_mod
from imsnn_lava.data.datasets import load_split_with_ids
from imsnn_lava.numerics.encoding import encode
from imsnn_train import checkpoint
from imsnn_train.checkpoint import CheckpointError
from imsnn_train.config import from_dict, replace, to_json
from imsnn_train.errors import ConfigError
from imsnn_train.network import Network
from imsnn_train.train import loss_fn, make_optimizer, train, train_seed

pytestmark = pytest.mark.timeout(120)




def _quiet(*_args, **_kwargs):
    pass


TINY = {
    "name": "tiny",
    "model": {"synapse": "isi", "layers": [{"kind": "dense", "out": 32},
                                           {"kind": "dense", "out": 10}]},
    "encoding": {"num_steps": 15, "max_rate": 0.5, "seed": 3},
    "train": {"epochs": 2, "batch_size": 50, "lr": 5e-3, "train_subset": 500,
              "eval_subset": 200, "threads": 1, "seed": 7},
}


def _comparable(metrics: dict) -> dict:
    """Metrics without what legitimately differs between runs: wall-clock and paths."""
    out = {k: v for k, v in metrics.items() if k != "checkpoint"}
    out["history"] = [{k: v for k, v in row.items() if k != "seconds"}
                      for row in metrics["history"]]
    return out


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _assert_same_optimizer(a: dict, b: dict) -> None:
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        for k, v in a["state"][i].items():
            assert torch.equal(v, b["state"][i][k]), (i, k)


# ---------------------------------------------------------------------------------------------
# (a) it learns


@pytest.fixture(scope="module")
def zeros_and_ones():
    x, y, ids = load_split_with_ids("mnist", "train", limit=5000)
    keep = y < 2
    x, y, ids = x[keep][:1000], y[keep][:1000], ids[keep][:1000]
    xt, yt, idt = load_split_with_ids("mnist", "test", limit=2000)
    keep = yt < 2
    assert len(y) == 1000 and keep.sum() > 300 and 0.3 < y.mean() < 0.7
    return (x, y, ids), (xt[keep], yt[keep], idt[keep])


def _accuracy(net, images, labels, ids, enc) -> float:
    with torch.no_grad():
        s = encode(images, ids, num_steps=enc.num_steps, max_rate=enc.max_rate, seed=enc.seed)
        pred = net(torch.from_numpy(s).float()).predictions().numpy()
    return float((pred == labels).mean())


@pytest.mark.parametrize("synapse", ["isi", "plain"])
def test_learns_zero_vs_one(synapse, zeros_and_ones):
    (x, y, ids), (xt, yt, idt) = zeros_and_ones
    cfg = from_dict({
        "model": {"synapse": synapse, "layers": [{"kind": "dense", "out": 32},
                                                 {"kind": "dense", "out": 2}]},
        "encoding": {"num_steps": 10},
        "train": {"lr": 2e-3, "batch_size": 50},
    })
    net = Network(cfg.model)
    opt = make_optimizer(net, cfg)
    enc = cfg.encoding
    before = _accuracy(net, xt, yt, idt, enc)
    losses = []
    for epoch in range(2):
        order = np.random.default_rng(epoch).permutation(len(y))
        for start in range(0, len(y), cfg.train.batch_size):
            idx = order[start:start + cfg.train.batch_size]
            s = encode(x[idx], ids[idx], num_steps=enc.num_steps, max_rate=enc.max_rate,
                       seed=train_seed(cfg, epoch))
            out = net(torch.from_numpy(s).float())
            loss = loss_fn(out, torch.from_numpy(y[idx].astype(np.int64)), cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss))
    after = _accuracy(net, xt, yt, idt, enc)
    assert after >= 0.9, f"{synapse}: accuracy {before:.3f} -> {after:.3f}"
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


# ---------------------------------------------------------------------------------------------
# (b) determinism, (c) resume


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    cfg = from_dict(TINY)
    out = tmp_path_factory.mktemp("run_a")
    n = torch.get_num_threads()
    try:
        metrics = train(cfg, out, progress=False, log=_quiet)
    finally:
        torch.set_num_threads(n)
    return cfg, out, metrics


def test_training_moves_the_weights_and_learns_something(reference_run):
    cfg, out, metrics = reference_run
    payload = checkpoint.load(out / train_mod.CHECKPOINT_NAME)
    init = Network(cfg.model).state_dict()
    assert payload["epoch"] == 2
    for k in ("layers.0.weight", "layers.1.weight"):
        assert not torch.equal(payload["model"][k], init[k]), f"{k} did not change"
    for k in ("layers.0.mu", "layers.0.sigma"):  # fixed per synapse
        assert torch.equal(payload["model"][k], init[k])
    hist = metrics["history"]
    assert [r["epoch"] for r in hist] == [1, 2]
    assert hist[1]["train_loss"] < hist[0]["train_loss"]
    assert hist[-1]["val"]["accuracy"] > 0.25  # 10 classes, 500 images, 2 epochs: > chance


def test_two_runs_are_identical(reference_run, tmp_path):
    cfg, out_a, metrics_a = reference_run
    metrics_b = train(cfg, tmp_path / "run_b", progress=False, log=_quiet)
    assert _comparable(metrics_a) == _comparable(metrics_b)
    a = checkpoint.load(out_a / train_mod.CHECKPOINT_NAME)
    b = checkpoint.load(tmp_path / "run_b" / train_mod.CHECKPOINT_NAME)
    _assert_same_state(a["model"], b["model"])
    _assert_same_optimizer(a["optimizer"], b["optimizer"])


class _Crash(Exception):
    pass


def test_resume_after_a_crash_equals_an_uninterrupted_run(reference_run, tmp_path,
                                                          monkeypatch):
    cfg, out_a, metrics_a = reference_run
    out_b = tmp_path / "run_b"
    crash_seed = train_seed(cfg, 1)  # epoch 2's input spikes
    calls = {"n": 0}
    real_encode = train_mod.encode

    def crashing_encode(*args, **kwargs):
        if kwargs.get("seed") == crash_seed:
            calls["n"] += 1
            if calls["n"] == 3:  # two optimizer steps of epoch 2 are done, in memory only
                raise _Crash
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(train_mod, "encode", crashing_encode)
    with pytest.raises(_Crash):
        train(cfg, out_b, progress=False, log=_quiet)
    monkeypatch.setattr(train_mod, "encode", real_encode)
    interrupted = checkpoint.load(out_b / train_mod.CHECKPOINT_NAME)
    assert interrupted["epoch"] == 1 and len(interrupted["history"]) == 1
    assert not (out_b / train_mod.METRICS_NAME).exists()

    logged = []
    metrics_b = train(cfg, out_b, resume=True, progress=False, log=logged.append)
    assert any("resuming" in line and "after epoch 1" in line for line in logged)
    assert _comparable(metrics_a) == _comparable(metrics_b)
    a = checkpoint.load(out_a / train_mod.CHECKPOINT_NAME)
    b = checkpoint.load(out_b / train_mod.CHECKPOINT_NAME)
    assert to_json(a["config"]) == to_json(b["config"]) == to_json(cfg)
    assert a["epoch"] == b["epoch"] == 2
    _assert_same_state(a["model"], b["model"])
    _assert_same_optimizer(a["optimizer"], b["optimizer"])
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in a["history"]] == \
        [{k: v for k, v in r.items() if k != "seconds"} for r in b["history"]]


def test_resume_with_a_different_config_is_refused(reference_run, tmp_path):
    cfg, out_a, _ = reference_run
    out = tmp_path / "copy"
    shutil.copytree(out_a, out)
    other = replace(cfg, train=replace(cfg.train, lr=1e-3))
    with pytest.raises(ConfigError, match="different config"):
        train(other, out, resume=True, progress=False, log=_quiet)


# ---------------------------------------------------------------------------------------------
# checkpoints: weights_only


class _Payload:
    """Unpickling this would call os.mkdir(marker)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_checkpoint_with_a_pickled_object_is_refused(reference_run, tmp_path):
    cfg, out_a, _ = reference_run
    good = checkpoint.load(out_a / train_mod.CHECKPOINT_NAME)  # the real one loads
    marker = tmp_path / "pwned"
    payload = {
        "format": checkpoint.FORMAT, "version": checkpoint.VERSION,
        "config_json": to_json(cfg), "epoch": 1, "model": good["model"], "optimizer": None,
        "history_json": "[]", "extra": _Payload(str(marker)),
    }
    bad = tmp_path / "bad.pt"
    torch.save(payload, bad)
    with pytest.raises(CheckpointError, match="bad.pt"):
        checkpoint.load(bad)
    assert not marker.exists()
    with pytest.raises(CheckpointError):
        checkpoint.load_network(bad)
    assert not marker.exists()
    # the same payload without the object loads: the refusal is about the object
    del payload["extra"]
    torch.save(payload, tmp_path / "ok.pt")
    assert checkpoint.load(tmp_path / "ok.pt")["epoch"] == 1


def test_activity_regulariser_is_lambda_times_layer_spike_counts():
    """method.md 3: lambda x spike counts per layer (hidden and output), batch-averaged."""
    from imsnn_train.network import NetOutput
    from imsnn_train.train import loss_fn

    gen = torch.Generator().manual_seed(0)
    spikes = [(torch.rand(5, 3, n, generator=gen) < 0.3).float() for n in (8, 6, 4)]
    logits = torch.randn(3, 4, generator=gen)
    labels = torch.tensor([0, 1, 3])
    out = NetOutput(spikes=spikes, logits=logits)
    base = from_dict({"train": {"activity_l1": 0.0}})
    reg = from_dict({"train": {"activity_l1": 0.01}})
    ce = float(loss_fn(out, labels, base))
    counts = sum(float(s.sum()) for s in spikes[1:]) / 3  # per sample, hidden + output
    assert float(loss_fn(out, labels, reg)) == pytest.approx(ce + 0.01 * counts, rel=1e-6)


def test_cosine_schedule_is_a_function_of_the_epoch():
    from imsnn_train.train import epoch_lr

    cfg = from_dict({"train": {"lr": 1e-3, "epochs": 4, "lr_schedule": "cosine"}})
    assert [round(epoch_lr(cfg, e), 12) for e in range(4)] == [
        1e-3, round(1e-3 * (1 + np.cos(np.pi / 4)) / 2, 12), 5e-4,
        round(1e-3 * (1 + np.cos(3 * np.pi / 4)) / 2, 12)]
    const = from_dict({"train": {"lr": 1e-3, "epochs": 4}})
    assert {epoch_lr(const, e) for e in range(4)} == {1e-3}


def test_membrane_readout_sums_output_voltage_over_time():
    from imsnn_train.network import Network

    cfg = from_dict({"model": {"readout": "membrane", "readout_scale": 0.5,
                               "layers": [{"kind": "dense", "out": 12},
                                          {"kind": "dense", "out": 3}]}})
    net = Network(cfg.model).double()
    x = (torch.rand(10, 4, 784, generator=torch.Generator().manual_seed(1)) < 0.2).double()
    with torch.no_grad():
        out = net(x, record_v=True)
    torch.testing.assert_close(out.logits, 0.5 * out.voltages[-1].sum(0))
    assert out.logits.abs().sum() > 0


def test_isi_modulation_can_be_chosen_per_layer(tmp_path):
    """model.layers[i].synapse overrides model.synapse: an input layer plain, the hidden one
    ISI; the export carries each layer's own kind, and only ISI layers get the init gain."""
    from imsnn_train import config as C
    from imsnn_train.export import to_model_file
    from imsnn_train.network import Network

    cfg = C.load(Path(__file__).resolve().parents[1] / "deploy/configs/demo_imsnn.toml", [
        'model.layers=[{"kind":"dense","out":16,"synapse":"plain"},'
        '{"kind":"dense","out":10}]', "encoding.num_steps=6"])
    net = Network(cfg.model)
    assert [layer.isi for layer in net.layers] == [False, True]
    model = to_model_file(net, cfg, fixed=True)
    assert [layer.type_name for layer in model.layers] == ["dense", "isi_dense"]
    plain = Network(C.replace(cfg.model, synapse="plain",
                              layers=(C.LayerConfig("dense", 16), C.LayerConfig("dense", 10))))
    assert torch.equal(plain.layers[0].weight, net.layers[0].weight)  # no gain on plain
    with pytest.raises(C.ConfigError, match=r"model.layers\[0\].synapse"):
        C.load(Path(__file__).resolve().parents[1] / "deploy/configs/demo_imsnn.toml",
               ['model.layers=[{"kind":"dense","out":16,"synapse":"iss"},'
                '{"kind":"dense","out":10}]'])
