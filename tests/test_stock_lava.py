"""The stock backend in Lava's CPU simulator (fixed_pt): spikes per original layer equal the
reference and the fused runner step for step, the deployed network is stock-only, the count
model equals the counts of the spikes Lava recorded, and a broken construction fails.

Every test starts Lava (a few seconds each on 2 cores)."""

from __future__ import annotations

import dataclasses

import lava_helpers as H  # tests/lava_helpers.py; conftest.py puts tests/ on sys.path
import numpy as np
import pytest
import test_stock_lowering as TL  # the same small networks and inputs

from imsnn_lava import runtime as runner
from imsnn_lava.backends.stock import build as SB
from imsnn_lava.backends.stock import lower as L
from imsnn_lava.backends.stock import run as SR
from imsnn_lava.errors import ModelFileError
from imsnn_lava.numerics import encoding
from imsnn_lava.numerics import reference as R

pytestmark = pytest.mark.lava

SAMPLES = 5
TIMEOUT_S = 60


def _check_layers(res, ref) -> int:
    assert len(res.spikes) == len(ref.spikes)
    for i, (got, want) in enumerate(zip(res.spikes, ref.spikes)):
        bad = np.argwhere(got != want)
        assert bad.size == 0, f"layer {i}: spikes differ at (t, sample, n) {bad[:5].tolist()}"
    assert all(s.sum() > 0 for s in ref.spikes), [int(s.sum()) for s in ref.spikes]
    np.testing.assert_array_equal(res.layer_counts, ref.layer_counts())
    np.testing.assert_array_equal(res.output_counts, ref.output_counts())
    return sum(s.size for s in ref.spikes[1:])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", ["dense1-R1", "dense2-R2-c0", "conv-R3"])
def test_stock_lava_equals_reference_step_by_step(case):
    """1-layer dense (phi_max 5, R 1), 2-layer dense with c0 = 3 and a plain last layer
    (phi_max 8, R 2), conv ISI -> dense ISI (phi_max 3, R 3): 5 samples streamed through one
    compiled network; every original layer's spikes at every step equal
    reference.simulate(fixed=True), and the count model equals the events counted from the
    spikes Lava recorded in every population (detectors and rings included)."""
    conv = case.startswith("conv")
    phi_max, c0, layers, replicas = {"dense1-R1": (5, 1, 1, 1), "dense2-R2-c0": (8, 3, 2, 2),
                                     "conv-R3": (3, 1, 2, 3)}[case]
    t = 20
    model = TL.net(7, phi_max, t, conv=conv, c0=c0, plain_last=case == "dense2-R2-c0",
                   layers=layers)
    x = TL.inputs(np.random.default_rng(7), SAMPLES, t, int(np.prod(model.input_shape)),
                  phi_max)
    ref = R.simulate(model, x.transpose(1, 0, 2), fixed=True)
    res = SR.run_stock(model, spikes=x, replicas=replicas, record=True, probe_units=True,
                       timeout_s=TIMEOUT_S)
    _check_layers(res, ref)
    assert res.replicas == replicas and res.steps == res.graph.total_steps(
        -(-SAMPLES // replicas))
    assert res.stock_events.equals(res.measured) == []
    assert res.measured.per_sample_total("spikes").sum() > 0


@pytest.mark.timeout(120)
def test_stock_equals_fused_runner_on_images():
    """Images rate-coded inside both backends' sources (the model's encoding): the stock
    network's spikes per layer equal the fused runner's, every step, and the event counts
    of the original network (imsnn_lava.counting) computed from them equal the fused ones."""
    model = H.quantize(H.tiny_model(seed=2, num_steps=12, n_in=16))
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (4, 16), dtype=np.uint8)
    ids = np.arange(40, 44)
    fused = runner.run(model, fixed=True, images=images, sample_ids=ids, replicas=2,
                       record=True, timeout_s=TIMEOUT_S)
    stock = SR.run_stock(model, images=images, sample_ids=ids, replicas=2, record=True,
                         timeout_s=TIMEOUT_S)
    for i, (a, b) in enumerate(zip(stock.spikes, fused.spikes)):
        np.testing.assert_array_equal(a, b, err_msg=f"layer {i}")
    assert all(s.sum() > 0 for s in fused.spikes)
    for key in ("spikes", "spikes_in", "synops", "active_updates"):
        np.testing.assert_array_equal(getattr(stock.events, key), getattr(fused.events, key),
                                      err_msg=key)
    np.testing.assert_array_equal(stock.input_counts, fused.input_counts)
    np.testing.assert_array_equal(stock.predictions, fused.predictions)
    x = encoding.encode(images, ids, num_steps=12, max_rate=model.encoding.max_rate,
                        seed=model.encoding.seed)
    np.testing.assert_array_equal(stock.spikes[0], x)


@pytest.mark.timeout(120)
def test_broken_construction_fails_in_lava():
    """The same run with one bin group removed from the lowered graph gives wrong spikes."""
    model = TL.net(0, 5, 20, conv=False)
    x = TL.inputs(np.random.default_rng(0), 4, 20, 12, 5)
    ref = R.simulate(model, x.transpose(1, 0, 2), fixed=True)
    graph = L.lower(model, replicas=2)
    bins = [c for c in graph.connections if c.role == "bins" and c.layer == 2]
    assert len(bins) >= 2
    broken = dataclasses.replace(graph, connections=tuple(
        c for c in graph.connections if c is not bins[0]))
    res = SR.run_graph(broken, model, spikes=x, record=True, timeout_s=TIMEOUT_S)
    wrong = sum(int((a != b).sum()) for a, b in zip(res.spikes, ref.spikes))
    assert wrong > 0
    np.testing.assert_array_equal(res.spikes[1], ref.spikes[1])  # layer 1 is untouched


@pytest.mark.timeout(60)
def test_deployed_network_is_stock_only():
    """Walk the built network from the source along every connection: each process reached
    is a lava.proc class, or imsnn's host source / read-out probes (listed as such)."""
    model = TL.net(1, 4, 10, conv=True, c0=2)
    x = TL.inputs(np.random.default_rng(1), 3, 10, 98, 4)
    graph = L.lower(model, replicas=2)
    net = SB.build_graph(graph, model, num_samples=3, spikes=x, probe_units=True)
    try:
        assert SB.non_stock(net) == []
        classes = {c for _, c in SB.deployed_processes(net)}
        assert classes == {"lava.proc.lif.process.LIF", "lava.proc.lif.process.LIFReset",
                           "lava.proc.sparse.process.Sparse", "lava.proc.dense.process.Dense"}
        host = {type(p).__name__ for p in net.host}
        assert host == {"SpikeSource", "Recorder"}
        reached, todo = set(), [net.source]
        while todo:
            proc = todo.pop()
            if id(proc) in reached:
                continue
            reached.add(id(proc))
            for port in proc.out_ports:
                todo += [p.process for p in _destinations(port)]
        allowed = {id(p) for p in net.processes}
        assert reached == allowed  # every process is reachable, nothing else is
        assert len(net.deployed) == len(graph.populations) - 1 + len(graph.connections)
    finally:
        from imsnn_lava.runtime.guard import release

        release(net.processes)


def _destinations(port) -> list:
    """The InPorts a port feeds, through reshape (virtual) ports."""
    from lava.magma.core.process.ports.ports import AbstractVirtualPort

    out = []
    for dst in port.out_connections:
        out += _destinations(dst) if isinstance(dst, AbstractVirtualPort) else [dst]
    return out


@pytest.mark.timeout(60)
def test_run_stock_refuses_a_float_file_before_starting_lava():
    model = TL.net(0, 3, 6, conv=False)
    with pytest.raises(ModelFileError, match="fixed-point"):
        SR.run_stock(dataclasses.replace(model, precision="float"),
                     spikes=np.zeros((1, 6, 12), bool))
    with pytest.raises(ValueError, match="spikes"):
        SR.run_stock(model, spikes=np.zeros((1, 5, 12), bool))
    with pytest.raises(ValueError, match="fixed-point models only"):
        runner.run(model, spikes=np.zeros((1, 6, 12), bool), fixed=False, backend="stock")


@pytest.mark.timeout(120)
def test_a_hung_or_failed_run_is_stopped():
    """A chunk that exceeds its timeout raises SimulationError, and no Lava process of the
    run is left alive afterwards (the runtime is shut down in `finally`)."""
    import multiprocessing

    from imsnn_lava.errors import SimulationError

    model = TL.net(0, 5, 20, conv=False)
    x = TL.inputs(np.random.default_rng(0), 200, 20, 12, 5)
    before = {p.pid for p in multiprocessing.active_children()}
    with pytest.raises(SimulationError, match="within"):
        SR.run_stock(model, spikes=x, timeout_s=0.05, chunk_steps=4000)
    left = [p for p in multiprocessing.active_children() if p.pid not in before]
    assert left == []


def _same_lowered(a: dict, b: dict) -> None:
    assert a["num_samples"] == b["num_samples"]
    assert [r["name"] for r in a["layers"]] == [r["name"] for r in b["layers"]]
    for x, y in zip(a["layers"], b["layers"]):
        for key in x:
            if key.endswith("_per_sample"):
                assert x[key] == pytest.approx(y[key], rel=1e-12, abs=1e-9), (x["name"], key)


@pytest.mark.timeout(180)
def test_lowered_section_of_a_stock_run_equals_the_count_model_of_a_fused_run():
    """`imsnn simulate --backend stock` counts the lowered network's events from its own run;
    `--lowered-counts` on the fused backend derives them with the count model from the
    reference spikes, one run per batch: the `lowered` sections are equal for one batch, and
    for two batches equal to two stock runs merged (each run has its own latency tail)."""
    from imsnn_lava import pipeline
    from imsnn_lava.analysis.result import merge_lowered

    model = H.quantize(H.mnist_model(seed=4, num_steps=8))
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (4, 784), dtype=np.uint8)
    ids = np.arange(10, 14)
    stock = runner.run(model, fixed=True, images=images, sample_ids=ids, backend="stock")
    _same_lowered(stock.lowered, pipeline.lowered_counts(model, images, ids, batch_size=4))
    assert any(r["role"] == "isi-unit" and r["spikes_per_sample"] > 0
               for r in stock.lowered["layers"])
    halves = [runner.run(model, fixed=True, images=images[s], sample_ids=ids[s],
                         backend="stock").lowered for s in (slice(0, 2), slice(2, 4))]
    _same_lowered(merge_lowered(halves),
                  pipeline.lowered_counts(model, images, ids, batch_size=2))
