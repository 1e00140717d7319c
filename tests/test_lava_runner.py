"""imsnn_lava.runtime: exact per-sample reset, replicas, failure handling, cheap import."""

import os
import signal
import subprocess
import sys
import threading
import time

import lava_helpers as H  # tests/lava_helpers.py; conftest.py puts tests/ on sys.path
import numpy as np
import pytest

from imsnn_lava import runtime as runner
from imsnn_lava.errors import SimulationError
from imsnn_lava.numerics import reference as R
from imsnn_lava.numerics import synapse


def _children() -> list[tuple[int, str, str]]:
    """(pid, state, command line) of this process's children, from /proc."""
    me = os.getpid()
    return [(pid, state, cmd) for pid, ppid, _, state, cmd in H.proc_table() if ppid == me]


def _lava_children() -> list[tuple[int, str, str]]:
    """Children other than multiprocessing's resource tracker (it lives as long as Python)."""
    return [c for c in _children() if "resource_tracker" not in c[2]]


def _assert_equal_results(a, b, n_layers: int):
    np.testing.assert_array_equal(a.output_counts, b.output_counts)
    np.testing.assert_array_equal(a.layer_counts, b.layer_counts)
    np.testing.assert_array_equal(a.input_counts, b.input_counts)
    for i in range(n_layers + 1):
        np.testing.assert_array_equal(a.spikes[i], b.spikes[i], err_msg=f"layer {i}")
    for i in range(n_layers):
        np.testing.assert_array_equal(a.currents[i], b.currents[i], err_msg=f"input {i + 1}")
        np.testing.assert_array_equal(a.voltages[i], b.voltages[i], err_msg=f"v {i + 1}")


def test_import_is_cheap_and_lava_free():
    """Importing the runner imports neither Lava nor torch (Lava is imported lazily)."""
    code = ("import sys, imsnn_lava.runtime.run, imsnn_lava.backends.fused.build; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('lava', 'torch')); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_spikes_in_encode_layout_are_rejected_with_a_hint():
    model = H.tiny_model(num_steps=12, n_in=16)
    x = np.zeros((12, 3, 16), dtype=bool)  # (T, N, n) as encode() returns
    with pytest.raises(ValueError, match="transpose"):
        runner.run(model, fixed=False, spikes=x)


@pytest.mark.lava
@pytest.mark.timeout(90)
def test_streaming_equals_fresh_network_per_sample():
    """Four samples streamed through one network give, sample by sample and step by step,
    what a fresh network gives each sample alone: the per-sample reset is exact (nothing of
    one sample leaks into the next, unlike netx's streaming reset). Fixed point."""
    model = H.quantize(H.tiny_model())
    t = model.num_steps
    x = H.random_spikes(np.random.default_rng(4), 4, t, 16, 0.4)
    streamed = runner.run(model, fixed=True, spikes=x, record=True, timeout_s=60)
    ref = R.simulate(model, x.transpose(1, 0, 2), fixed=True)
    np.testing.assert_array_equal(streamed.layer_counts, ref.layer_counts())
    assert streamed.layer_counts.min() > 0  # every sample drives every layer
    for j in range(x.shape[0]):
        alone = runner.run(model, fixed=True, spikes=x[j:j + 1], record=True, timeout_s=60)
        one = _slice(streamed, j)
        _assert_equal_results(one, alone, len(model.layers))


def _slice(res, j):
    """Sample j of a recorded result, as a one-sample result."""
    out = runner.LavaResult(
        output_counts=res.output_counts[j:j + 1], layer_counts=res.layer_counts[j:j + 1],
        input_counts=res.input_counts[j:j + 1], predictions=res.predictions[j:j + 1],
        num_steps=res.num_steps, replicas=1, fixed=res.fixed, steps=res.num_steps,
        wall_s=0.0, run_s=0.0)
    out.spikes = [s[:, j:j + 1] for s in res.spikes]
    out.currents = [c[:, j:j + 1] for c in res.currents]
    out.voltages = [v[:, j:j + 1] for v in res.voltages]
    return out


@pytest.mark.lava
@pytest.mark.timeout(90)
def test_replicas_give_identical_results():
    """N = 5 samples on R = 1 (5 periods) and R = 3 (2 periods, the last one padded with a
    silent replica): identical per-sample results, in float and fixed point, with the images
    rate-coded inside Lava; the progress callback counts samples up to N."""
    float_model = H.tiny_model(num_steps=10, n_in=16)
    rng = np.random.default_rng(8)
    images = rng.integers(0, 256, (5, 4, 4), dtype=np.uint8)
    ids = np.array([3, 1, 4, 1, 5])
    images[3] = images[1]  # same image and id: same spikes, on another replica and period
    for fixed, model in ((False, float_model), (True, H.quantize(float_model))):
        seen = []
        r1 = runner.run(model, fixed=fixed, images=images, sample_ids=ids, replicas=1,
                        record=True, timeout_s=60)
        r3 = runner.run(model, fixed=fixed, images=images, sample_ids=ids, replicas=3,
                        record=True, timeout_s=60,
                        progress=lambda d, n, seen=seen: seen.append((d, n)),
                        chunk_steps=10)
        assert r3.replicas == 3 and r3.steps == 2 * model.num_steps
        assert seen == [(3, 5), (5, 5)]
        _assert_equal_results(r1, r3, len(model.layers))
        np.testing.assert_array_equal(r3.spikes[-1][:, 1], r3.spikes[-1][:, 3])
        assert r1.layer_counts.sum() > 0
        ref = R.simulate(model, r1.spikes[0], fixed=fixed)
        np.testing.assert_array_equal(r1.layer_counts, ref.layer_counts())


@pytest.mark.lava
@pytest.mark.timeout(90)
def test_model_error_raises_and_leaves_no_processes(monkeypatch):
    """An exception inside a ProcessModel (here the synapse step, patched before Lava forks
    its actors) ends the run with SimulationError carrying the model's traceback, well within
    the timeout, leaves no child process behind, and the next run works."""
    model = H.tiny_model()
    x = H.random_spikes(np.random.default_rng(0), 3, model.num_steps, 16, 0.4)
    before = {c[0] for c in _lava_children()}
    original = synapse.synapse_step

    def broken(spikes, counter, syn):
        if syn.isi:
            raise RuntimeError("deliberately broken synapse")
        return original(spikes, counter, syn)

    monkeypatch.setattr(synapse, "synapse_step", broken)
    t0 = time.monotonic()
    with pytest.raises(SimulationError, match="deliberately broken synapse"):
        runner.run(model, fixed=False, spikes=x, timeout_s=30)
    assert time.monotonic() - t0 < 20
    assert [c for c in _lava_children() if c[0] not in before] == []
    monkeypatch.setattr(synapse, "synapse_step", original)
    res = runner.run(model, fixed=False, spikes=x, timeout_s=30)
    np.testing.assert_array_equal(
        res.layer_counts, R.simulate(model, x.transpose(1, 0, 2), fixed=False).layer_counts())


@pytest.mark.lava
@pytest.mark.timeout(90)
def test_hung_model_times_out_and_leaves_no_processes(monkeypatch):
    """A ProcessModel that never returns: the watchdog raises SimulationError after timeout_s,
    kills the actors by process id, and a following run works."""
    model = H.tiny_model()
    x = H.random_spikes(np.random.default_rng(0), 2, model.num_steps, 16, 0.4)
    before = {c[0] for c in _lava_children()}
    original = synapse.synapse_step

    def stuck(spikes, counter, syn):
        time.sleep(3600)

    monkeypatch.setattr(synapse, "synapse_step", stuck)
    t0 = time.monotonic()
    with pytest.raises(SimulationError, match="within 2"):
        runner.run(model, fixed=False, spikes=x, timeout_s=2)
    assert time.monotonic() - t0 < 15
    assert [c for c in _lava_children() if c[0] not in before] == []
    monkeypatch.setattr(synapse, "synapse_step", original)
    res = runner.run(model, fixed=False, spikes=x, timeout_s=30)
    assert res.output_counts.shape == (2, 5)


@pytest.mark.lava
@pytest.mark.timeout(60)
def test_keyboard_interrupt_stops_the_runtime(monkeypatch, ctrl_c):
    """Ctrl-C (SIGINT) while a chunk is stuck: the runtime is shut down (actors killed) and
    KeyboardInterrupt propagates."""
    model = H.tiny_model()
    x = H.random_spikes(np.random.default_rng(0), 2, model.num_steps, 16, 0.4)
    before = {c[0] for c in _lava_children()}

    def stuck(spikes, counter, syn):
        time.sleep(3600)

    monkeypatch.setattr(synapse, "synapse_step", stuck)
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    t0 = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            runner.run(model, fixed=False, spikes=x, timeout_s=30)
    finally:
        timer.cancel()
    assert time.monotonic() - t0 < 15
    assert [c for c in _lava_children() if c[0] not in before] == []


@pytest.mark.lava
@pytest.mark.timeout(60)
def test_stop_all_runtimes_ends_forgotten_runtimes():
    """The conftest safety net: runtimes left running (idle after a blocking run, or mid-run
    after a non-blocking one) are shut down and their actors are gone."""
    from lava.magma.core.run_conditions import RunSteps

    from imsnn_lava.backends.fused import build as network

    model = H.tiny_model()
    x = H.random_spikes(np.random.default_rng(0), 2, model.num_steps, 16, 0.4)
    before = {c[0] for c in _lava_children()}
    for blocking in (True, False):
        net = network.build(model, fixed=False, replicas=1, num_samples=2, spikes=x)
        net.root.run(condition=RunSteps(num_steps=net.total_steps, blocking=blocking),
                     run_cfg=net.run_config())
        assert [c for c in _lava_children() if c[0] not in before]
        assert runner.stop_all_runtimes() == 1
        assert [c for c in _lava_children() if c[0] not in before] == []
        assert runner.stop_all_runtimes() == 0
