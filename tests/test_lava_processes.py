"""The imsnn Lava processes against the numpy reference and Lava's stock processes.

Every test here starts Lava's multi-process CPU simulator (about 1-2 s each on 2 cores).
"""


import lava_helpers as H  # tests/lava_helpers.py; conftest.py puts tests/ on sys.path
import numpy as np
import pytest

from imsnn_lava import ir as F
from imsnn_lava import runtime as runner
from imsnn_lava.numerics import encoding, synapse
from imsnn_lava.numerics import reference as R

pytestmark = pytest.mark.lava

N_MNIST = 3


@pytest.fixture(scope="module")
def mnist_images(mnist_test):
    """Three real MNIST test images (from index 100) and their dataset sample ids
    (conftest's mnist_test fetches and verifies the data if the cache lacks it)."""
    lo, hi = 100, 100 + N_MNIST
    images, _, ids = mnist_test
    return images[lo:hi], np.asarray(ids[lo:hi])


def _run_and_compare(model, mnist, fixed: bool):
    """Lava (2 replicas, images encoded inside the source) vs reference.simulate."""
    images, ids = mnist
    enc = model.encoding
    x = encoding.encode(images, ids, num_steps=enc.num_steps, max_rate=enc.max_rate,
                        seed=enc.seed)
    ref = R.simulate(model, x, fixed=fixed, record=True)
    res = runner.run(model, fixed=fixed, images=images, sample_ids=ids, replicas=2,
                     record=True, timeout_s=60)
    # the network is not trivially silent: every layer spikes
    assert all(s.sum() > 0 for s in ref.spikes), [int(s.sum()) for s in ref.spikes]
    assert len(res.spikes) == len(ref.spikes)
    for i, (got, want) in enumerate(zip(res.spikes, ref.spikes)):
        mismatch = np.argwhere(got != want)
        assert mismatch.size == 0, f"layer {i}: spikes differ at (t, sample, neuron) " \
                                   f"{mismatch[:5].tolist()}"
    for i, (got, want) in enumerate(zip(res.currents, ref.currents)):
        np.testing.assert_array_equal(got, want, err_msg=f"synaptic input of layer {i + 1}")
    for i, (got, want) in enumerate(zip(res.voltages, ref.voltages)):
        np.testing.assert_array_equal(got, want, err_msg=f"voltage of layer {i + 1}")
    np.testing.assert_array_equal(res.layer_counts, ref.layer_counts())
    np.testing.assert_array_equal(res.output_counts, ref.output_counts())
    np.testing.assert_array_equal(res.input_counts, x.sum(axis=(0, 2)))
    np.testing.assert_array_equal(res.predictions, ref.predictions())
    return res


@pytest.mark.timeout(90)
def test_fixed_point_equals_reference_step_by_step(mnist_images):
    """conv ISI + dense ISI + dense plain, fixed point, real MNIST images encoded in Lava:
    every layer's spike train, the integer synaptic input delivered at every step and the
    integer v after every step equal reference.simulate(fixed=True)."""
    model = H.quantize(H.mnist_model())
    res = _run_and_compare(model, mnist_images, fixed=True)
    assert res.currents[0].dtype == np.int64 and res.voltages[0].dtype == np.int64


@pytest.mark.timeout(90)
def test_float_equals_reference_step_by_step(mnist_images):
    """The same network in floating point: float64 on both sides and the same numpy synapse
    function, so spikes, inputs and voltages are exactly equal (no tolerance)."""
    _run_and_compare(H.mnist_model(), mnist_images, fixed=False)


@pytest.mark.timeout(60)
def test_plain_isidense_equals_stock_dense_fixed_point():
    """A plain (K = 1) ISIDense in fixed point hands on the same integers, one step late, as
    Lava's Dense(weights=mantissas, weight_exp=exp, num_weight_bits=8), and the LIF behind
    each spikes identically (R = 1, one sample, so no reset is involved)."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.lif.process import LIF

    from imsnn_lava.backends.fused.proc.isi_synapse.process import ISIDense
    from imsnn_lava.backends.host.proc.recorder.process import Recorder
    from imsnn_lava.backends.host.proc.source.process import SpikeSource
    from imsnn_lava.backends.host.wire import unpack_words

    rng = np.random.default_rng(11)
    t, n_in, n_out = 30, 24, 8
    model = H.quantize(F.ModelFile(
        precision="float", input_shape=(n_in, 1, 1), encoding=F.EncodingSpec(t, 0.5, 0),
        layers=[H.dense(rng, "d", (n_in, 1, 1), n_out, False, gain=3.0)]))
    layer = model.layers[0]
    mant, exp = layer.fixed.table.mant[0], int(layer.fixed.table.exp[0])
    assert exp > 0  # exercise the exponent
    x = H.random_spikes(rng, 1, t, n_in, 0.3)
    nrn = dict(du=layer.fixed.du, dv=layer.fixed.dv, vth=layer.fixed.vth, bias_mant=0)

    src = SpikeSource(shape=(1, n_in), num_steps=t, num_samples=1, spikes=x)
    ours = ISIDense.from_table(synapse.synapse_table(layer, fixed=True), replicas=1, n_in=n_in,
                               num_steps=t)
    stock = Dense(weights=mant.astype(np.int32), weight_exp=exp, num_weight_bits=8)
    lif_ours, lif_stock = LIF(shape=(1, n_out), **nrn), LIF(shape=(n_out,), **nrn)
    src.s_out.connect(ours.s_in)
    src.s_out.reshape((n_in,)).connect(stock.s_in)
    ours.a_out.connect(lif_ours.a_in)
    stock.a_out.connect(lif_stock.a_in)
    recs = {}
    for key, port in (("a_ours", ours.a_out), ("a_stock", stock.a_out)):
        recs[key] = Recorder(shape=port.shape, num_steps=t)
        port.connect(recs[key].a_in)
    for key, port in (("s_ours", lif_ours.s_out), ("s_stock", lif_stock.s_out)):
        recs[key] = Recorder(shape=port.shape, num_steps=t, pack=True)
        port.connect(recs[key].a_in)
    try:
        src.run(condition=RunSteps(num_steps=t), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        a_ours = recs["a_ours"].data.get()[:, 0]
        a_stock = recs["a_stock"].data.get()
        s_ours = unpack_words(recs["s_ours"].data.get(), n_out)[:, 0]
        s_stock = unpack_words(recs["s_stock"].data.get(), n_out)
    finally:
        runner.shutdown_runtime(src.runtime)
    assert np.abs(a_stock).sum() > 0 and s_stock.sum() > 0
    np.testing.assert_array_equal(a_ours, a_stock)
    np.testing.assert_array_equal(s_ours, s_stock)
    # and both are the reference's
    ref = R.simulate(model, x.transpose(1, 0, 2), fixed=True, record=True)
    np.testing.assert_array_equal(a_stock, ref.currents[0][:, 0])
    np.testing.assert_array_equal(s_stock, ref.spikes[1][:, 0])


def _netx_model(t: int) -> F.ModelFile:
    """Fixed-point baseline 20 -> 12 -> 6 whose weights need no exponent (|w| <= 254):
    netx reads `weight` as 8-bit weights and clips anything larger (see the report)."""
    rng = np.random.default_rng(5)
    layers = [H.dense(rng, "d1", (20, 1, 1), 12, False, gain=4.0),
              H.dense(rng, "d2", (12, 1, 1), 6, False, gain=4.0)]
    model = H.quantize(F.ModelFile(precision="float", input_shape=(20, 1, 1),
                                   encoding=F.EncodingSpec(t, 0.5, 1), layers=layers),
                       max_scale_log2=5)
    assert all(int(layer.fixed.table.exp[0]) == 0 for layer in model.layers)
    return model


@pytest.mark.timeout(90)
def test_netx_runs_fixed_baseline_file_like_reference(tmp_path):
    """format.write's fixed-point plain dense file loads in lava-dl netx
    (hdf5.Network(reset_interval=T, reset_offset=1)) and, for one sample, every netx layer
    spikes as the reference and as our network: netx chains Dense (one step late) + CUBA
    LIFReset per layer like we do, and its staggered resets (layer i at time_step % T ==
    1 + i) fall on steps where that layer's state is still zero."""
    from lava.lib.dl.netx import hdf5
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    from imsnn_lava.backends.host.proc.recorder.process import Recorder
    from imsnn_lava.backends.host.proc.source.process import SpikeSource
    from imsnn_lava.backends.host.wire import unpack_words

    t = 16
    model = _netx_model(t)
    path = tmp_path / "baseline_fixed.h5"
    F.write(model, path)
    model = F.read(path)
    x = H.random_spikes(np.random.default_rng(2), 1, t, 20, 0.4)
    ref = R.simulate(model, x.transpose(1, 0, 2), fixed=True)

    net = hdf5.Network(net_config=str(path), reset_interval=t, reset_offset=1)
    src = SpikeSource(shape=(1, 20), num_steps=t, num_samples=1, spikes=x)
    src.s_out.reshape((20,)).connect(net.inp)
    recs = []
    for block in net.layers:
        recs.append(Recorder(shape=block.out.shape, num_steps=t, pack=True))
        block.out.connect(recs[-1].a_in)
    try:
        src.run(condition=RunSteps(num_steps=t), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        got = [unpack_words(rec.data.get(), rec.a_in.shape[-1]) for rec in recs]
    finally:
        runner.shutdown_runtime(src.runtime)
        net.net_config.f.close()
    ours = runner.run(model, fixed=True, spikes=x, record=True, timeout_s=60)
    assert len(got) == len(model.layers)
    for i, spikes in enumerate(got):
        assert ref.spikes[i + 1].sum() > 0
        np.testing.assert_array_equal(spikes, ref.spikes[i + 1][:, 0], err_msg=f"layer {i + 1}")
        np.testing.assert_array_equal(ours.spikes[i + 1][:, 0], spikes)
