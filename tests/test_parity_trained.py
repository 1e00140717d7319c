"""PyTorch and Lava agree on a trained network, layer by layer and step by step, on real MNIST.

A small dense + conv ISI network is trained for a few batches on real MNIST, exported in float
and in Loihi fixed point, and run three ways on real test images:
- PyTorch (float64) vs Lava floating point: identical spikes in every layer at every step;
- the quantized PyTorch evaluation (the integer reference) vs Lava fixed point: identical
  synaptic input integers, membrane voltages and spikes in every layer at every step.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imsnn_lava import runtime as runner
from imsnn_lava.numerics import reference
from imsnn_lava.numerics.encoding import encode
from imsnn_train.config import from_dict
from imsnn_train.export import _float64_copy, to_model_file
from imsnn_train.network import Network
from imsnn_train.train import loss_fn

N_SAMPLES = 4
STEPS = 16

CONFIGS = {
    "dense-isi": {"synapse": "isi", "layers": [{"kind": "dense", "out": 48},
                                               {"kind": "dense", "out": 10}]},
    "conv-isi": {"synapse": "isi", "isi": {"phi_max": 6},
                 "layers": [{"kind": "conv", "out": 4, "kernel": 5, "stride": 3},
                            {"kind": "dense", "out": 10}]},
    "dense-plain": {"synapse": "plain", "layers": [{"kind": "dense", "out": 48},
                                                   {"kind": "dense", "out": 10}]},
}


def _trained(name: str, mnist_test):
    cfg = from_dict({"name": name, "model": CONFIGS[name],
                     "encoding": {"num_steps": STEPS, "max_rate": 0.5, "seed": 3}})
    net = Network(cfg.model)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    images, labels, ids = mnist_test
    # train on test images 1000.. (the parity samples below are 0..N-1)
    for b in range(6):
        sl = slice(1000 + 50 * b, 1050 + 50 * b)
        x = torch.from_numpy(encode(images[sl], ids[sl], num_steps=STEPS, max_rate=0.5,
                                    seed=11 + b)).float()
        loss = loss_fn(net(x), torch.from_numpy(labels[sl].astype(np.int64)), cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net, cfg


def _inputs(model, mnist_test):
    images, _, ids = mnist_test
    flat = images[:N_SAMPLES].reshape(N_SAMPLES, -1)
    x = encode(flat, ids[:N_SAMPLES], num_steps=model.num_steps,
               max_rate=model.encoding.max_rate, seed=model.encoding.seed)
    return flat, ids[:N_SAMPLES], x


@pytest.mark.lava
@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_torch_float_equals_lava_float_layer_by_layer(name, mnist_test):
    net, cfg = _trained(name, mnist_test)
    model = to_model_file(net, cfg, fixed=False)
    flat, ids, x = _inputs(model, mnist_test)
    with torch.no_grad():
        out = _float64_copy(net)(torch.from_numpy(x.astype(np.float64)))
    lava = runner.run(model, fixed=False, images=flat, sample_ids=ids, replicas=2, record=True,
                      timeout_s=120)
    assert len(lava.spikes) == len(out.spikes)
    for layer, (s_torch, s_lava) in enumerate(zip(out.spikes, lava.spikes)):
        s_torch = s_torch.numpy().astype(bool)
        assert s_torch.shape == s_lava.shape, layer
        diff = np.argwhere(s_torch != s_lava)
        assert diff.size == 0, f"layer {layer}: spikes differ at (t, sample, neuron) {diff[:5]}"
    hidden = sum(int(s.sum()) for s in lava.spikes[1:])
    assert hidden > 0, "the network must fire for the comparison to mean anything"


@pytest.mark.lava
@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_quantized_torch_equals_lava_fixed_point_integers(name, mnist_test):
    net, cfg = _trained(name, mnist_test)
    model = to_model_file(net, cfg, fixed=True)
    flat, ids, x = _inputs(model, mnist_test)
    ref = reference.simulate(model, x, fixed=True, record=True)
    lava = runner.run(model, fixed=True, images=flat, sample_ids=ids, replicas=2, record=True,
                      timeout_s=120)
    for layer, (a, b) in enumerate(zip(ref.spikes, lava.spikes)):
        diff = np.argwhere(a != b)
        assert diff.size == 0, f"layer {layer}: spikes differ at (t, sample, neuron) {diff[:5]}"
    for layer, (a, b) in enumerate(zip(ref.currents, lava.currents), start=1):
        np.testing.assert_array_equal(a, b, err_msg=f"layer {layer}: synaptic input integers")
    for layer, (a, b) in enumerate(zip(ref.voltages, lava.voltages), start=1):
        np.testing.assert_array_equal(a, b, err_msg=f"layer {layer}: membrane voltages")
    assert all(int(s.sum()) > 0 for s in lava.spikes[1:-1]), "hidden layers must fire"
    np.testing.assert_array_equal(lava.layer_counts, ref.layer_counts())
    np.testing.assert_array_equal(lava.predictions, ref.predictions())
