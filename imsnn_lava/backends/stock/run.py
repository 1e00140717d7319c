"""Run a model on the stock backend: lower, build, run in chunks under the runner's watchdog,
always stop Lava (also on errors and KeyboardInterrupt), and read the results back aligned to
the fused model's sample windows (the stock network's extra latency undone)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from imsnn_lava.backends.stock import counts, graphsim
from imsnn_lava.backends.stock.lower import StockGraph
from imsnn_lava.backends.stock.summary import lowered_summary
from imsnn_lava.ir import ModelFile
from imsnn_lava.numerics import counting, encoding, reference
from imsnn_lava.runtime.run import LavaResult

DEFAULT_CHUNK_STEPS = 1000


@dataclass
class StockResult(LavaResult):
    """runtime.run.LavaResult plus the stock network's own facts.

    events: the original network's event counts (imsnn_lava.counting definitions) computed
    from the spikes the stock run produced, comparable with the fused runner's.
    stock_events: the lowered network's events (counts.count_model) from those spikes.
    measured: the lowered network's events counted from the spikes Lava recorded in every
    population (probe_units=True only). layer_streams: the recorded (G, size) spikes of every
    probed population on Lava's clock (record=True)."""

    graph: StockGraph | None = None
    stock_events: counts.StockEvents | None = None
    measured: counts.StockEvents | None = None
    layer_streams: dict | None = None
    processes: int = 0  # deployed Lava processes (stock lava.proc classes)
    lava_processes: int = 0  # all Lava processes: deployed + source + probes
    count_s: float = 0.0  # time spent in the numpy event counts after the run (in wall_s)
    neurons: int = 0
    synapses: int = 0
    lowered: dict | None = None  # summary.lowered_summary of stock_events (results JSON)


def host_spikes(model: ModelFile, *, spikes=None, images=None, sample_ids=None
                ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray]:
    """(spikes (N, T, n) or None, images (N, n) or None, ids, input spike trains (T, N, n))."""
    from imsnn_lava.runtime.run import check_inputs

    n, images, spikes, sample_ids = check_inputs(model, images=images, spikes=spikes,
                                                 sample_ids=sample_ids)
    if n < 1:
        raise ValueError("need at least one sample")
    if spikes is not None:
        return spikes, None, None, spikes.transpose(1, 0, 2)
    enc = model.encoding
    x = encoding.encode(images, sample_ids, num_steps=enc.num_steps, max_rate=enc.max_rate,
                        seed=enc.seed)
    return None, images, sample_ids, x


def run_stock(model: ModelFile, *, spikes: np.ndarray | None = None,
              images: np.ndarray | None = None, sample_ids: np.ndarray | None = None,
              replicas: int | None = 1, record: bool = False, timeout_s: float | None = None,
              progress: bool | Callable[[int, int], None] | None = None,
              probe_units: bool = False, count: bool = True, prefer: str = "auto",
              chunk_steps: int = DEFAULT_CHUNK_STEPS) -> StockResult:
    """Simulate N samples of a fixed-point `model` on Lava's stock processes: the stock
    backend under the runtime (imsnn_lava.runtime.run.execute), with its own options.

    spikes: (N, T, n_in) bool, or images: (N, ...) uint8 with sample_ids (rate-coded inside
    Lava's source). replicas: samples side by side (flattened into each stock process; None:
    1, the fastest for large layers, whose Dense bin matrices would grow as R^2). record: also
    return every layer's spike trains (T, N, n) and the probed streams. probe_units: record the
    ISI unit populations too and count their events from the recording (small runs). count:
    compute `events` and `stock_events` (numpy, after the run). Raises ModelFileError for a
    float file, SimulationError if Lava fails or hangs (Lava is stopped in every case).
    """
    from imsnn_lava.backends.stock.build import build
    from imsnn_lava.runtime.run import execute

    t_start = time.perf_counter()
    n = len(spikes) if spikes is not None else len(images) if images is not None else 0
    net = build(model, replicas=1 if replicas is None else replicas, num_samples=n,
                spikes=spikes, images=images, sample_ids=sample_ids, record=record,
                prefer=prefer, probe_units=probe_units, count=count)
    result = execute(net, n, timeout_s=timeout_s, progress=progress, chunk_steps=chunk_steps)
    result.wall_s = time.perf_counter() - t_start
    return result


def run_graph(graph: StockGraph, model: ModelFile, *, spikes=None, images=None,
              sample_ids=None, record: bool = False, timeout_s: float | None = None,
              progress=None, probe_units: bool = False, count: bool = True,
              chunk_steps: int = DEFAULT_CHUNK_STEPS) -> StockResult:
    """run_stock on an already lowered graph (e.g. a deliberately altered one in tests)."""
    from imsnn_lava.backends.stock.build import build_graph
    from imsnn_lava.runtime.run import execute

    spikes, images, sample_ids, x = host_spikes(model, spikes=spikes, images=images,
                                                sample_ids=sample_ids)
    n = x.shape[1]
    net = build_graph(graph, model, num_samples=n, spikes=spikes, images=images,
                      sample_ids=sample_ids, probe_layers=True,
                      probe_input=record or probe_units, probe_units=probe_units)
    net.inputs = x
    net.options = {"record": record, "probe_units": probe_units, "count": count}
    return execute(net, n, timeout_s=timeout_s, progress=progress, chunk_steps=chunk_steps)


def result_of(net, streams: dict, n: int, run_s: float, *, record: bool, probe_units: bool,
              count: bool) -> StockResult:
    """The StockResult of a finished run from its recorded streams (the network's collect)."""
    return _result(net.model, net.graph, net, streams, net.inputs, n, run_s,
                   time.perf_counter(), record=record, probe_units=probe_units, count=count)


def _result(model, graph, net, streams, x, n, run_s, t_start, *, record, probe_units, count
            ) -> StockResult:
    layers = [x.astype(bool)]
    for name, off in zip(graph.layer_names[1:], graph.offsets[1:]):
        layers.append(graphsim.window(graph, graph.population(name), streams[name], n, off))
    out = layers[-1].sum(axis=0).astype(np.int64)
    layer_counts = np.stack([s.sum(axis=(0, 2)) for s in layers[1:]], axis=1).astype(np.int64)
    result = StockResult(
        output_counts=out, layer_counts=layer_counts,
        input_counts=layers[0].sum(axis=(0, 2)).astype(np.int64),
        predictions=reference.predict(out), num_steps=model.num_steps,
        replicas=graph.replicas, fixed=True, steps=net.total_steps, wall_s=0.0, run_s=run_s,
        graph=graph, processes=len(net.deployed), lava_processes=len(net.processes),
        neurons=graph.num_neurons,
        synapses=graph.num_synapses)
    if graph.layer_names[0] in streams:  # the recorded input must be what was sent
        rec_in = graphsim.window(graph, graph.population(graph.layer_names[0]),
                                 streams[graph.layer_names[0]], n, 0)
        if not np.array_equal(rec_in, layers[0]):
            raise RuntimeError("the stock source did not replay the host's input spikes")
    result.raster = [s[:, 0] for s in layers]  # sample 0, as runner.run(raster=True)
    if record:
        result.spikes = layers
        result.layer_streams = streams
    t0 = time.perf_counter()
    if count:
        result.events = counting.count_events(model, layers, fixed=True)
        result.stock_events = counts.count_model(graph, model, layers)
        result.lowered = lowered_summary(graph, result.stock_events)
    result.count_s = time.perf_counter() - t0
    if probe_units:
        result.measured = counts.count_streams(graph, streams, n)
    result.wall_s = time.perf_counter() - t_start
    return result
