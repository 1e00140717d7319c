"""Event counts (imsnn_lava.numerics.events): the definitions by hand, the integer synapse
kernel the fixed-point Lava models run, and Lava == reference == PyTorch counts on real MNIST."""

from __future__ import annotations

import lava_helpers as H  # tests/lava_helpers.py; conftest.py puts tests/ on sys.path
import numpy as np
import pytest

from imsnn_lava import ir as F
from imsnn_lava.analysis import layer_stats
from imsnn_lava.numerics import counting, isi, synapse
from imsnn_lava.numerics import reference as R

# ---------------------------------------------------------------------------------------------
# the definitions, on a network small enough to count by hand


def _hand_model() -> F.ModelFile:
    """2 inputs -> ISI dense 3 (phi_max 3, c0 2) -> plain dense 1, fixed-point integers.

    Table of the ISI layer, per bin k (rows: input 0, 1; columns: output 0, 1, 2):
    k=1: [[5, 0, 1], [2, 0, -1]]   k=2: [[4, 0, 1], [2, 0, -1]]   k=3: [[3, 0, 1], [2, 0, -1]]
    Output 1 has only zero weights (its events activate nothing); a spike of input 0 and one
    of input 1 in the same step cancel on output 2 (+1 - 1 = 0)."""
    layer1 = F.LayerSpec(name="isi", kind="dense", synapse="isi", in_shape=(2, 1, 1),
                         out_shape=(3, 1, 1), weight=np.ones((3, 2)), du=1.0, dv=0.0,
                         vth=1e9, mu=np.ones((3, 2)), sigma=np.ones((3, 2)), phi_max=3, c0=2)
    layer2 = F.LayerSpec(name="plain", kind="dense", synapse="plain", in_shape=(3, 1, 1),
                         out_shape=(1, 1, 1), weight=np.ones((1, 3)), du=1.0, dv=0.0, vth=1e9)
    return F.ModelFile(precision="float", input_shape=(2, 1, 1),
                       encoding=F.EncodingSpec(5, 1.0, 0), layers=[layer1, layer2])


def _hand_table() -> np.ndarray:
    """The flat (K * Q, C_out) table of synapse.synapse_table for _hand_model's ISI layer."""
    per_bin = [np.array([[5, 0, 1], [2, 0, -1]]), np.array([[4, 0, 1], [2, 0, -1]]),
               np.array([[3, 0, 1], [2, 0, -1]])]
    return np.concatenate(per_bin).astype(np.float64)


def test_count_definitions_by_hand():
    """T = 5 steps, one sample. Input spikes: input 0 at steps 0, 1, 4; input 1 at step 1.
    Counters (c0 = 2, held at phi_max = 3): input 0: 2, 1, 1, 2, 3 -> bins used 2, 1, 3;
    input 1: 2, 3, 1, 2, 3 -> bin 3 at step 1.
    Delivered input of step t comes from step t-1's spikes: t=1: input 0 bin 2 -> [4, 0, 1];
    t=2: input 0 bin 1 + input 1 bin 3 -> [5+2, 0, 1-1] = [7, 0, 0]; the step-4 spike is sent,
    looked up and counted, but its input would arrive after the sample."""
    model = _hand_model()
    layer = model.layers[0]
    syn = synapse.SynapseTable(src=synapse.connectivity(layer), table=_hand_table(), phi_max=3,
                               c0=2, isi=True)
    pre = np.zeros((5, 1, 2), dtype=bool)
    pre[[0, 1, 4], 0, 0] = True
    pre[1, 0, 1] = True
    # the delivered input, as the synapse computes it
    counter = isi.counter_start((1, 2), syn.c0, syn.phi_max)
    delivered = np.zeros((5, 1, 3))
    for t in range(4):
        delivered[t + 1] = synapse.synapse_step(pre[t], counter, syn)
        counter = isi.counter_step(counter, pre[t], syn.phi_max)
    np.testing.assert_array_equal(delivered[:, 0], [[0, 0, 0], [4, 0, 1], [7, 0, 0],
                                                    [0, 0, 0], [0, 0, 0]])
    post = np.zeros((5, 1, 3), dtype=bool)
    post[3, 0, 0] = True
    out = np.zeros((5, 1, 1), dtype=bool)
    counts = counting.count_events([layer, model.layers[1]], [pre, post, out], fixed=False,
                                   currents=[delivered, np.zeros((5, 1, 1))])
    assert counts.input_spikes.tolist() == [4]
    assert counts.spikes_in[0].tolist() == [4, 1]  # input spikes; the hidden layer's spike
    assert counts.spikes[0].tolist() == [1, 0]
    assert counts.synops[0].tolist() == [4 * 3, 1 * 1]  # fan-out: 3 outputs, then 1
    assert counts.lookups[0].tolist() == [4, 0]  # plain layers do no lookups
    assert counts.isi_histograms[0].tolist() == [1, 1, 2]  # bins 1, 2, 3
    assert counts.isi_histograms[1] is None
    assert counts.neuron_updates.tolist() == [15, 5]
    assert counts.active_updates[0].tolist() == [3, 0]  # t=1: outputs 0, 2; t=2: output 0
    assert counts.idle_updates[0].tolist() == [12, 5]
    rows = layer_stats.layer_rows(counts, [layer_stats.LayerInfo.of(x) for x in model.layers])
    assert rows[0]["synops_per_sample"] == 12 and rows[0]["lookups_per_sample"] == 4
    assert rows[0]["isi_histogram"] == [1, 1, 2] and "isi_histogram" not in rows[1]
    assert rows[0]["fan_in"] == 2 and rows[1]["fan_in"] == 3
    assert "lookups_per_sample" not in rows[1]
    assert rows[0]["synops_per_sample_distribution"] == {"p5": 12.0, "p50": 12.0, "p95": 12.0}


def test_conv_fan_out_varies_at_the_border():
    """Conv synops use each input's own fan-out (synapse.fan_out): with padding, corner
    pixels drive fewer synapses than central ones."""
    rng = np.random.default_rng(0)
    layer = H.conv(rng, "c", (1, 6, 6), 2, 3, 1, True)
    layer = layer.replace(padding=1, out_shape=(2, 6, 6))
    fo = synapse.fan_out(layer)
    assert fo[0] == 2 * 4 and fo[7] == 2 * 9  # corner: 2x2 window positions; inside: 3x3
    pre = np.zeros((3, 1, 36), dtype=bool)
    pre[0, 0, [0, 7]] = True
    post = np.zeros((3, 1, 72), dtype=bool)
    counts = counting.count_events([layer], [pre, post], fixed=False)
    assert counts.synops[0, 0] == 8 + 18


# ---------------------------------------------------------------------------------------------
# the integer kernel of the fixed-point synapse models


def _kernel_layers():
    rng = np.random.default_rng(3)
    padded = H.conv(rng, "cp", (2, 9, 9), 3, 3, 2, True)
    padded = padded.replace(padding=1, out_shape=(3,) + F.conv_out_hw(9, 9, 3, 2, 1))
    return [H.dense(rng, "di", (30, 1, 1), 7, True), H.dense(rng, "dp", (30, 1, 1), 7, False),
            H.conv(rng, "ci", (2, 9, 9), 3, 3, 2, True), H.conv(rng, "cpl", (2, 9, 9), 3, 3, 2,
                                                                   False), padded]


@pytest.mark.parametrize("replicas", [1, 3])
def test_integer_kernel_equals_reference_synapse_step(replicas):
    """IntegerSynapseKernel (the fixed-point Lava synapses' step) equals
    synapse.synapse_step + counter_step exactly, for dense and conv (with and without
    padding), ISI and plain, float32 and float64 tables, over many steps of random spikes."""
    from imsnn_lava.numerics.synapse import IntegerSynapseKernel

    rng = np.random.default_rng(replicas)
    for layer in _kernel_layers():
        model = H.quantize(F.ModelFile(precision="float", input_shape=layer.in_shape,
                                       encoding=F.EncodingSpec(8, 0.5, 0), layers=[layer]))
        syn = synapse.synapse_table(model.layers[0], fixed=True)
        big = synapse.SynapseTable(src=syn.src, table=syn.table * 2 ** 20, phi_max=syn.phi_max,
                             c0=syn.c0, isi=syn.isi)
        for table in (syn, big):
            kernel = IntegerSynapseKernel(table, layer.n_in)
            assert kernel.dtype == (np.float32 if table is syn else np.float64)
            c_ref = isi.counter_start((replicas, layer.n_in), table.c0, table.phi_max)
            c_fast = isi.counter_start((replicas, layer.n_in), table.c0, table.phi_max,
                                       dtype=np.int32)
            for t in range(40):
                spikes = rng.random((replicas, layer.n_in)) < (0.0 if t == 5 else 0.3)
                want = synapse.synapse_step(spikes, c_ref, table)
                got = kernel.step(spikes, c_fast)
                assert got.shape == want.shape
                np.testing.assert_array_equal(got, want, err_msg=f"{layer.name} step {t}")
                np.testing.assert_array_equal(np.minimum(c_ref, table.phi_max), c_fast)
                c_ref = isi.counter_step(c_ref, spikes, table.phi_max)
                isi.counter_advance(c_fast, spikes, table.phi_max)
    with pytest.raises(ValueError, match="integer"):
        IntegerSynapseKernel(synapse.SynapseTable(src=syn.src, table=syn.table + 0.5, phi_max=1,
                                            c0=1, isi=False), layer.n_in)


def test_table_fan_out_and_count_packing():
    from imsnn_lava.backends.host.wire import count_packing, pack_counts, unpack_counts

    for layer in _kernel_layers():
        syn = synapse.synapse_table(layer, fixed=False)
        np.testing.assert_array_equal(syn.fan_out(layer.n_in), synapse.fan_out(layer))
    rng = np.random.default_rng(0)
    for steps in (1, 12, 25, 100, 4000):
        bits, per = count_packing(steps)
        assert bits * per <= 52 and (1 << bits) > steps
        counts = rng.integers(0, steps + 1, (7, 23))
        packed = pack_counts(counts, bits, per)
        assert packed.shape == (7, -(-23 // per)) and packed.max() < 2 ** 53
        np.testing.assert_array_equal(unpack_counts(packed.astype(np.float64), 23, bits, per),
                                      counts)


def test_counting_from_spikes_equals_counting_from_recorded_input():
    """count_events recomputes the delivered input from the spikes when it is not given:
    the same counts as from reference.simulate's recorded input, float and fixed."""
    model = H.mnist_model(num_steps=10)
    x = H.random_spikes(np.random.default_rng(1), 3, 10, 784, 0.15).transpose(1, 0, 2)
    for fixed, m in ((False, model), (True, H.quantize(model))):
        ref = R.simulate(m, x, fixed=fixed, record=True)
        a = counting.count_events(m, ref.spikes, fixed=fixed, currents=ref.currents)
        b = counting.count_events(m, ref.spikes, fixed=fixed)
        assert a.differences(b) == []
        assert a.active_updates.min() >= 0 and (a.idle_updates >= 0).all()
        np.testing.assert_array_equal(a.spikes, ref.layer_counts())


# ---------------------------------------------------------------------------------------------
# Lava == reference == PyTorch, on real MNIST

N_SAMPLES = 5
STEPS = 16


def _torch_network():
    """An untrained conv ISI -> dense ISI -> dense plain network (imsnn_train's own layers
    and initialisation), weights scaled so that every layer fires."""
    import torch

    from imsnn_train.config import from_dict
    from imsnn_train.layers import Dense
    from imsnn_train.network import Network

    cfg = from_dict({"name": "counts-mixed", "model": {
        "synapse": "isi", "isi": {"phi_max": 6},
        "layers": [{"kind": "conv", "out": 4, "kernel": 5, "stride": 3, "padding": 1},
                   {"kind": "dense", "out": 24}, {"kind": "dense", "out": 10}]},
        "encoding": {"num_steps": STEPS, "max_rate": 0.5, "seed": 5}})
    net = Network(cfg.model)
    gen = torch.Generator().manual_seed(1)
    net.layers[2] = Dense(net.layers[1].out_shape, 10, gen)
    with torch.no_grad():
        for layer, gain in zip(net.layers, (3.0, 5.0, 8.0)):
            layer.weight.mul_(gain)
    return net, cfg


@pytest.mark.lava
@pytest.mark.timeout(180)
def test_lava_counts_equal_reference_and_torch_on_mnist(mnist_test):
    """Per sample and per layer, the events counted inside Lava's processes equal the counts
    of the same functions applied to the numpy reference's spike trains and to the PyTorch
    network's (float64) spike trains: float; and to the integer reference (the quantized
    PyTorch evaluation) in fixed point. The first sample's raster is the reference's."""
    import copy

    import torch

    from imsnn_lava import runtime as runner
    from imsnn_lava.numerics.encoding import encode
    from imsnn_train.export import to_model_file

    net, cfg = _torch_network()
    images, _, ids = mnist_test
    flat = images[:N_SAMPLES].reshape(N_SAMPLES, -1)
    ids = np.asarray(ids[:N_SAMPLES])
    assert [layer.synapse for layer in to_model_file(net, cfg, fixed=False).layers] == [
        "isi", "isi", "plain"]
    for fixed in (False, True):
        model = to_model_file(net, cfg, fixed=fixed)
        x = encode(flat, ids, num_steps=STEPS, max_rate=0.5, seed=5)
        ref = R.simulate(model, x, fixed=fixed, record=True)
        ref_counts = counting.count_events(model, ref.spikes, fixed=fixed,
                                           currents=ref.currents)
        lava = runner.run(model, fixed=fixed, images=flat, sample_ids=ids, replicas=2,
                          raster=True, timeout_s=120)
        assert lava.events.differences(ref_counts) == [], f"fixed={fixed}"
        tally = layer_stats.EventTally(model.layers, STEPS, fixed=fixed)
        if fixed:  # the quantized evaluation is the integer reference, counted from spikes
            tally.add_spikes(ref.spikes)
        else:
            with torch.no_grad():
                out = copy.deepcopy(net).double()(torch.from_numpy(x.astype(np.float64)))
            tally.add_spikes([s.numpy() for s in out.spikes])
        assert tally.counts().differences(lava.events) == [], f"fixed={fixed}"
        for got, want in zip(lava.raster, ref.spikes):
            np.testing.assert_array_equal(got, want[:, 0])
        ev = lava.events
        assert (ev.spikes > 0).all(), "every layer must fire in every sample"
        assert (ev.active_updates > 0).all() and (ev.idle_updates > 0).any()
        np.testing.assert_array_equal(ev.spikes_in[:, 1:], ev.spikes[:, :-1])
        assert ev.isi_histograms[0].sum() == ev.spikes_in[:, 0].sum()
        assert ev.isi_histograms[2] is None
        # conv synops follow the per-input fan-out, which varies at the (padded) border
        fo = synapse.fan_out(model.layers[0])
        assert fo.min() < fo.max()
        np.testing.assert_array_equal(ev.synops[:, 0], x.sum(axis=0).astype(np.int64) @ fo)
