"""Run an imsnn model in Lava's CPU simulator, safely, on any backend.

`run` asks a backend to build a fresh network (imsnn_lava.backends), runs it in chunks of
whole sample periods under the guard's watchdog (imsnn_lava.runtime.guard), lets the backend
read out the per-sample counts (and, with record=True, every layer's spike trains, synaptic
inputs and voltages), and always shuts the runtime down, also on errors and KeyboardInterrupt.
The runtime does not know which backend ran: a backend returns a network object with
`root`, `run_config()`, `num_periods`, `num_steps`, `processes` and `collect(n, run_s,
raster)`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from imsnn_lava.ir.nodes import ModelFile
from imsnn_lava.numerics.events import EventCounts
from imsnn_lava.runtime import guard

DEFAULT_CHUNK_STEPS = 1000
PROGRESS_UPDATES = 25  # a run is cut into at least this many chunks (when it has the periods)


@dataclass
class LavaResult:
    output_counts: np.ndarray  # (N, n_out) int64
    layer_counts: np.ndarray  # (N, L) int64, spikes per sample of each layer (input excluded)
    input_counts: np.ndarray  # (N,) int64, input spikes per sample
    predictions: np.ndarray  # (N,) argmax of output_counts, lowest index on ties
    num_steps: int  # T
    replicas: int
    fixed: bool
    steps: int  # Lava time steps simulated (periods * T)
    wall_s: float  # build + compile + run + read-out + stop
    run_s: float  # the simulation chunks only
    spikes: list[np.ndarray] | None = None  # record: input + every layer, (T, N, n) bool
    currents: list[np.ndarray] | None = None  # record: per layer, (T, N, n_out) input at t
    voltages: list[np.ndarray] | None = None  # record: per layer, (T, N, n_out) v after t
    events: EventCounts | None = None  # per-sample event counts, counted inside Lava
    raster: list[np.ndarray] | None = None  # raster: input + every layer, (T, n) bool, sample 0

    @property
    def ms_per_step(self) -> float:
        return 1000.0 * self.run_s / max(self.steps, 1)

    @property
    def ms_per_sample(self) -> float:
        return 1000.0 * self.run_s / max(self.output_counts.shape[0], 1)


def run(model: ModelFile, *, fixed: bool, images: np.ndarray | None = None,
        sample_ids: np.ndarray | None = None, spikes: np.ndarray | None = None,
        replicas: int | None = 1, record: bool = False, raster: bool = False,
        timeout_s: float | None = None,
        progress: bool | Callable[[int, int], None] | None = None,
        chunk_steps: int = DEFAULT_CHUNK_STEPS, backend: str = "fused") -> LavaResult:
    """Simulate N samples of `model` in Lava and return per-sample counts.

    images: (N, ...) uint8, rate-coded inside Lava with the model's encoding and `sample_ids`
    (default 0..N-1); or spikes: (N, T, n_in) bool (note: N first, as in the model file's
    reference data; encode() returns (T, N, n_in)). fixed: Lava's bit-accurate fixed-point
    models on the file's integers, else float64. replicas: samples simulated side by side
    (None: the backend's default, backends.default_replicas). backend: "fused" (imsnn's ISI
    synapse processes) or "stock" (every ISI layer lowered onto Lava's own processes; fixed
    point only).
    record: also return every step of every layer (small N only). raster: also return the
    first sample's spike trains (input and every layer; T x n bits per layer to read). The
    per-sample event counts (result.events, imsnn_lava.numerics.events) are always counted.
    timeout_s: the most one chunk (about `chunk_steps` steps) may take before the run is
    declared hung. progress: True for a tqdm bar, or a callable(samples_done, samples_total).
    Raises SimulationError if Lava fails, hangs or is interrupted (KeyboardInterrupt is
    re-raised after the runtime is shut down).
    """
    from imsnn_lava import backends
    from imsnn_lava.ir.nodes import check

    t_start = time.perf_counter()
    check(model)  # an inconsistent model is a ModelFileError, not an error deep in Lava
    n, _, _, _ = check_inputs(model, images=images, spikes=spikes, sample_ids=sample_ids)
    if n < 1:
        raise ValueError("need at least one sample")
    if replicas is None:
        replicas = backends.default_replicas(backend, model, n, fixed=fixed)
    replicas = max(1, min(int(replicas), n))
    net = backends.build(backend, model, fixed=fixed, replicas=replicas, num_samples=n,
                         images=images, spikes=spikes, sample_ids=sample_ids, record=record)
    result = execute(net, n, raster=raster, timeout_s=timeout_s, progress=progress,
                     chunk_steps=chunk_steps)
    result.wall_s = time.perf_counter() - t_start
    return result


def execute(net, n: int, *, raster: bool = False, timeout_s: float | None = None,
            progress: bool | Callable[[int, int], None] | None = None,
            chunk_steps: int = DEFAULT_CHUNK_STEPS) -> LavaResult:
    """Run a built network (any backend's) to its end under the guard, read it out with
    `net.collect`, and always shut Lava down and release the processes, also on errors and
    KeyboardInterrupt. Chunks are whole sample periods (at least PROGRESS_UPDATES of them
    when the run has the periods)."""
    t_start = time.perf_counter()
    period = net.period_steps
    per_chunk = period * max(1, min(int(chunk_steps) // period,
                                    -(-net.num_periods // PROGRESS_UPDATES)))
    bar, report = _progress(progress, n)
    run_s = 0.0
    runtime = None
    try:
        runtime = guard.start_runtime(net)
        done = 0
        while done < net.total_steps:
            k = min(per_chunk, net.total_steps - done)
            t0 = time.perf_counter()
            guard.run_chunk(runtime, k, timeout_s)
            run_s += time.perf_counter() - t0
            done += k
            report(min(done // period * net.replicas, n))
        result = net.collect(n, run_s, raster)
    finally:
        if bar is not None:
            bar.close()
        if runtime is not None:
            guard.shutdown_runtime(runtime)
        guard.release(net.processes)
    result.wall_s = time.perf_counter() - t_start
    return result


def check_inputs(model: ModelFile, *, images=None, spikes=None, sample_ids=None
                 ) -> tuple[int, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Validate the input arrays; returns (N, images (N, n) uint8, spikes (N, T, n) bool, ids)."""
    t = model.num_steps
    n_in = int(np.prod(model.input_shape))
    if (images is None) == (spikes is None):
        raise ValueError("give exactly one of images (N, ...) uint8 or spikes (N, T, n_in)")
    if spikes is not None:
        spikes = np.asarray(spikes)
        if spikes.ndim != 3 or spikes.shape[1:] != (t, n_in):
            hint = ""
            if spikes.ndim == 3 and spikes.shape[0] == t and spikes.shape[2] == n_in:
                hint = " (this looks like (T, N, n_in), as encode returns: pass " \
                       "spikes.transpose(1, 0, 2))"
            raise ValueError(f"spikes: expected shape (N, {t}, {n_in}), got "
                             f"{spikes.shape}{hint}")
        return spikes.shape[0], None, np.asarray(spikes, dtype=bool), None
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"images: expected dtype uint8, got {images.dtype}")
    n = images.shape[0]
    images = images.reshape(n, -1)
    if images.shape[1] != n_in:
        raise ValueError(f"images: expected {n_in} pixels per image, got {images.shape[1]}")
    if sample_ids is None:
        sample_ids = np.arange(n, dtype=np.int64)
    sample_ids = np.asarray(sample_ids, dtype=np.int64).reshape(-1)
    if sample_ids.shape[0] != n:
        raise ValueError(f"sample_ids: expected {n} ids, got {sample_ids.shape[0]}")
    return n, images, None, sample_ids


def _progress(progress, total: int):
    if callable(progress):
        return None, lambda done: progress(done, total)
    if progress:
        from imsnn_lava.runtime.progress import progress_bar

        bar = progress_bar(total=total, unit="sample", desc="lava", dynamic_ncols=True)
        return bar, lambda done: bar.update(done - bar.n)
    return None, lambda done: None

