"""train.device: validation, a clear error for a device this machine lacks, and on a CUDA
machine the same integers as on CPU for everything bit-exact (quantized tables, fixed-point
evaluation, reference vectors), the ISI kernels' gradients equal to CPU's in float64, and a
run trained on CUDA that loads on CPU.

The CUDA tests skip, saying why, on a machine without CUDA (the project installs and tests on
CPU only); bench/gpu_check.sh runs them on a GPU machine.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imsnn_train import device as devices
from imsnn_train.config import from_dict, identity_json
from imsnn_train.errors import ConfigError

pytestmark = pytest.mark.timeout(120)

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine "
                                f"(torch {torch.__version__}); run bench/gpu_check.sh on one")

SMALL = {
    "model": {"synapse": "isi", "input_shape": [1, 12, 12],
              "layers": [{"kind": "conv", "out": 4, "kernel": 3, "stride": 2},
                         {"kind": "dense", "out": 16}, {"kind": "dense", "out": 10}],
              "isi": {"phi_max": 8}},
    "encoding": {"num_steps": 12},
}


@pytest.mark.parametrize("value", ["gpu", "cuda:", "cuda:x", "CPU", "cuda:0:1", ""])
def test_bad_device_names_are_refused(value):
    with pytest.raises(ConfigError, match="train.device"):
        from_dict({"train": {"device": value}})


@pytest.mark.parametrize("value", ["auto", "cpu", "cuda", "cuda:0", "cuda:3"])
def test_device_names(value):
    assert from_dict({"train": {"device": value}}).train.device == value


def test_auto_and_cpu_resolve_here():
    assert devices.resolve("cpu") == torch.device("cpu")
    assert devices.resolve("auto").type == ("cuda" if HAS_CUDA else "cpu")


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
@pytest.mark.parametrize("value", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_cuda_is_one_clear_error(value):
    with pytest.raises(ConfigError, match=r"train.device = .*no CUDA device is available"):
        devices.resolve(value)


@needs_cuda
def test_a_cuda_index_beyond_the_devices_is_refused():
    n = torch.cuda.device_count()
    with pytest.raises(ConfigError, match=f"cuda:{n} does not exist"):
        devices.resolve(f"cuda:{n}")


def test_the_device_is_not_part_of_a_runs_identity():
    a = from_dict({"train": {"device": "cpu"}})
    b = from_dict({"train": {"device": "cuda"}})
    assert identity_json(a) == identity_json(b)
    assert identity_json(a) != identity_json(from_dict({"train": {"lr": 0.5}}))


def _trained_like(cfg):
    """A network with weights moved off their init (as after training), on CPU."""
    from imsnn_train.network import Network

    net = Network(cfg.model)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(1.5).add_(0.1 * torch.randn(p.shape, generator=gen))
    return net


@needs_cuda
def test_bit_exact_paths_give_the_same_integers_on_cuda(mnist_test):
    from imsnn_train.evaluate import evaluate_fixed
    from imsnn_train.export import attach_reference, to_model_file

    cfg = from_dict(SMALL)
    images, labels, ids = mnist_test
    images = np.ascontiguousarray(images[:64, 8:20, 8:20])
    labels, ids = labels[:64], ids[:64]
    cpu = _trained_like(cfg)
    gpu = _trained_like(cfg).to("cuda")
    for fixed in (True, False):
        a, b = to_model_file(cpu, cfg, fixed=fixed), to_model_file(gpu, cfg, fixed=fixed)
        attach_reference(a, cpu, images[:8], labels[:8], ids[:8])
        attach_reference(b, gpu, images[:8], labels[:8], ids[:8])
        for la, lb in zip(a.layers, b.layers):
            assert np.array_equal(la.weight, lb.weight)
            if fixed:
                assert (la.fixed.scale, la.fixed.du, la.fixed.dv, la.fixed.vth) == \
                    (lb.fixed.scale, lb.fixed.du, lb.fixed.dv, lb.fixed.vth)
                assert np.array_equal(la.fixed.table.mant, lb.fixed.table.mant)
                assert np.array_equal(la.fixed.table.exp, lb.fixed.table.exp)
        assert np.array_equal(a.reference.layer_counts, b.reference.layer_counts)
        assert np.array_equal(a.reference.output_counts, b.reference.output_counts)
        if fixed:
            ra = evaluate_fixed(a, images, labels, ids, progress=False)
            rb = evaluate_fixed(b, images, labels, ids, progress=False)
            assert ra == rb


@needs_cuda
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_isi_kernels_on_cuda_match_cpu_in_float64(kind):
    from imsnn_train.functional.isi import isi_conv, isi_dense

    gen = torch.Generator().manual_seed(11)
    phi_max = 8
    shape = (30, 40) if kind == "dense" else (6, 3, 11, 11)
    s = (torch.rand(shape, generator=gen) < 0.2).double()
    phi = torch.randint(1, phi_max + 1, shape, generator=gen).double()
    wshape = (9, 40) if kind == "dense" else (5, 3, 3, 3)
    w = torch.randn(wshape, generator=gen, dtype=torch.float64)
    mu = 1 + torch.rand(wshape, generator=gen, dtype=torch.float64) * (phi_max - 1)
    sigma = 1 + torch.rand(wshape, generator=gen, dtype=torch.float64) * 5

    def run(dev):
        args = [x.to(dev).clone().requires_grad_(True) for x in (s, phi, w)]
        m, sg = mu.to(dev), sigma.to(dev)
        a = (isi_dense(*args, m, sg, phi_max) if kind == "dense"
             else isi_conv(*args, m, sg, phi_max, 2, 1))
        torch.manual_seed(0)
        ga = torch.randn(a.shape, dtype=a.dtype).to(dev)
        (a * ga).sum().backward()
        return [a.detach().cpu()] + [x.grad.cpu() for x in args]

    for x, y in zip(run("cpu"), run("cuda")):
        assert torch.allclose(x, y, rtol=0, atol=1e-10)


@needs_cuda
def test_train_on_cuda_then_load_and_evaluate_on_cpu(tmp_path, mnist_test):
    from imsnn_train.checkpoint import load_network
    from imsnn_train.train import train

    cfg = from_dict({
        "model": {"layers": [{"kind": "dense", "out": 32}, {"kind": "dense", "out": 10}]},
        "encoding": {"num_steps": 10},
        "train": {"epochs": 1, "batch_size": 50, "train_subset": 500, "eval_subset": 100,
                  "device": "cuda"},
    })
    metrics = train(cfg, tmp_path, progress=False, log=lambda *_: None)
    net, _, _ = load_network(tmp_path / "checkpoint.pt")
    assert next(net.parameters()).device.type == "cpu"
    assert metrics["history"][0]["train_loss"] > 0
