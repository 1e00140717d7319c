"""Run an imsnn model in Lava's CPU simulator, safely.

`run` builds a fresh network (imsnn_lava.network), runs it in chunks of whole sample periods
under a watchdog, reads the per-sample counts (and, with record=True, every layer's spike
trains, synaptic inputs and voltages), and always shuts the runtime down, also on errors and
KeyboardInterrupt. Lava is imported only inside functions, so importing this module is cheap,
and nothing here touches the multiprocessing start method (Lava sets it on import).

Failure handling (docs/lava-notes.md): an exception inside a ProcessModel makes Lava hang
instead of raising, and a stuck runtime cannot be stopped gracefully. While a chunk runs, the
watchdog polls Lava's actor processes: one that reports an exception or dies ends the run at
once; a chunk that exceeds `timeout_s` ends it too. Either way the actors are killed by process
id, the shared memory is released, and SimulationError is raised (with the model's traceback
when Lava delivered it).
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from imsnn_lava import reference
from imsnn_lava.counting import EventCounts
from imsnn_lava.errors import SimulationError
from imsnn_lava.format import ModelFile

POLL_S = 0.05
GRACE_S = 2.0
STOP_TIMEOUT_S = 30.0
DEFAULT_CHUNK_STEPS = 1000
PROGRESS_UPDATES = 25  # a run is cut into at least this many chunks (when it has the periods)

# Choosing the replica count R (`auto_replicas`). Lava's simulator costs about 1.7 ms per step
# whatever the network (message passing between the processes, not math), so R samples side by
# side share that cost, while the math grows with R. Measured on 2 cores (demo 784-200-10
# network, 994 neurons, fixed point; bench/lava_throughput.py): ms per step 1.7 (R = 1), 2.3
# (32), 4.8 (94), 11.3 (256), at load ~6: the fixed cost is a third of a step at R ~ 100 and
# a sixth at R ~ 250, where samples/s flatten out. So: R x (input + all layer sizes) ~
# REPLICA_NEURONS.
# Memory: every connection of Lava's CPU backend buffers LAVA_CHANNEL_SLOTS messages of (R, n)
# values, so a replica costs about `replica_bytes` (0.4 MB for the demo network); R is capped to
# keep that under MEMORY_BUDGET.
REPLICA_NEURONS = 250_000
MEMORY_BUDGET = 1 << 30  # bytes for the replica-dependent part (about 0.4 GB base besides)
LAVA_CHANNEL_SLOTS = 64  # Lava 0.10's default pypy_channel_size
REPLICA_BYTES_FACTOR = 2.0  # measured PSS growth per replica / the estimate below


def replica_bytes(model: ModelFile, fixed: bool) -> int:
    """Estimated memory one replica adds: the channel buffers of every connection (source
    -> synapse: bool; synapse -> neurons and neurons -> next: 4-byte ints in fixed point,
    float64 in floating point, LAVA_CHANNEL_SLOTS messages each) plus the models' per-replica
    state, times REPLICA_BYTES_FACTOR (calibrated on the demo network)."""
    n_in = int(np.prod(model.input_shape))
    value = 4 if fixed else 8
    outs = [layer.n_out for layer in model.layers]
    message = n_in + 2 * value * sum(outs)
    state = model.num_steps * n_in + 8 * n_in * len(outs) + 8 * 6 * sum(outs)
    return int(REPLICA_BYTES_FACTOR * (LAVA_CHANNEL_SLOTS * message + state))


def auto_replicas(model: ModelFile, num_samples: int, *, fixed: bool,
                  memory_budget: int = MEMORY_BUDGET) -> int:
    """The replica count for N samples: R_max = min(ceil(REPLICA_NEURONS / neurons),
    memory_budget // replica_bytes), neurons = input size + every layer's size; then balanced
    so that the last sample period is as full as the others: R = ceil(N / ceil(N / R_max))."""
    neurons = int(np.prod(model.input_shape)) + sum(layer.n_out for layer in model.layers)
    r_speed = -(-REPLICA_NEURONS // max(neurons, 1))
    r_mem = max(1, int(memory_budget) // max(replica_bytes(model, fixed), 1))
    r_max = max(1, min(r_speed, r_mem))
    n = max(int(num_samples), 1)
    periods = -(-n // r_max)
    return -(-n // periods)


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


# ---------------------------------------------------------------------------------------------
# the public entry point


def run(model: ModelFile, *, fixed: bool, images: np.ndarray | None = None,
        sample_ids: np.ndarray | None = None, spikes: np.ndarray | None = None,
        replicas: int | None = 1, record: bool = False, raster: bool = False,
        timeout_s: float | None = None,
        progress: bool | Callable[[int, int], None] | None = None,
        chunk_steps: int = DEFAULT_CHUNK_STEPS) -> LavaResult:
    """Simulate N samples of `model` in Lava and return per-sample counts.

    images: (N, ...) uint8, rate-coded inside Lava with the model's encoding and `sample_ids`
    (default 0..N-1); or spikes: (N, T, n_in) bool (note: N first, as in the model file's
    reference data; encode() returns (T, N, n_in)). fixed: Lava's bit-accurate fixed-point
    models on the file's integers, else float64. replicas: samples simulated side by side
    (None: auto_replicas).
    record: also return every step of every layer (small N only). raster: also return the
    first sample's spike trains (input and every layer, recorded by the synapses and the
    output counter as they receive them; T x n bits per layer to read). The per-sample event counts
    (result.events, imsnn_lava.counting) are always counted inside Lava. timeout_s: the most one
    chunk (about `chunk_steps` steps) may take before the run is declared hung. progress: True
    for a tqdm bar, or a callable(samples_done, samples_total).
    Raises SimulationError if Lava fails, hangs or is interrupted (KeyboardInterrupt is
    re-raised after the runtime is shut down).
    """
    from imsnn_lava import format as fmt
    from imsnn_lava import network

    t_start = time.perf_counter()
    fmt.check(model)  # an inconsistent model is a ModelFileError, not an error deep in Lava
    n, _, _, _ = network.check_inputs(model, images=images, spikes=spikes,
                                      sample_ids=sample_ids)
    if n < 1:
        raise ValueError("need at least one sample")
    if replicas is None:
        replicas = auto_replicas(model, n, fixed=fixed)
    replicas = max(1, min(int(replicas), n))
    net = network.build(model, fixed=fixed, replicas=replicas, num_samples=n, images=images,
                        spikes=spikes, sample_ids=sample_ids, record=record)
    t = model.num_steps
    periods_per_chunk = max(1, min(int(chunk_steps) // t,
                                   -(-net.num_periods // PROGRESS_UPDATES)))
    bar, report = _progress(progress, n)
    run_s = 0.0
    runtime = None
    try:
        runtime = _start_runtime(net)
        done = 0
        while done < net.num_periods:
            k = min(periods_per_chunk, net.num_periods - done)
            t0 = time.perf_counter()
            _run_chunk(runtime, k * t, timeout_s)
            run_s += time.perf_counter() - t0
            done += k
            report(min(done * replicas, n))
        result = _collect(net, n, run_s, raster)
    finally:
        if bar is not None:
            bar.close()
        if runtime is not None:
            shutdown_runtime(runtime)
        network.release(net)
    result.wall_s = time.perf_counter() - t_start
    return result


# ---------------------------------------------------------------------------------------------
# running under a watchdog


def _start_runtime(net):
    """Compile the network and start its actor processes (no steps yet)."""
    from imsnn_lava.network import lava_logging_guard

    root = net.root
    try:
        with lava_logging_guard():
            root.create_runtime(run_cfg=net.run_config())
    except BaseException as exc:
        if root.runtime is not None:
            _kill_runtime(root.runtime)
        if isinstance(exc, Exception):
            raise SimulationError(f"Lava could not compile or start the network: "
                                  f"{type(exc).__name__}: {exc}") from exc
        raise
    return root.runtime


def _run_chunk(runtime, num_steps: int, timeout_s: float | None) -> None:
    """Run num_steps steps; raise SimulationError on a model error, a dead actor or a hang.

    The blocking Lava call runs in a daemon thread; this thread watches the actors. On any
    failure the caller's `finally` kills the actors (the runtime is then still 'running').
    """
    from lava.magma.core.run_conditions import RunSteps

    box: dict = {}

    def target():
        try:
            runtime.start(RunSteps(num_steps=num_steps, blocking=True))
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            box["error"] = exc

    thread = threading.Thread(target=target, name="imsnn-lava-run", daemon=True)
    deadline = None if timeout_s is None else time.monotonic() + float(timeout_s)
    thread.start()
    while True:
        thread.join(POLL_S)
        if not thread.is_alive():
            break
        errors, exits = _actor_status(runtime)
        if errors or exits:
            # Lava stops the other actors after an error: give the failing one a moment to
            # deliver its traceback, then report the traceback rather than the exits.
            grace = time.monotonic() + GRACE_S
            while not errors and thread.is_alive() and time.monotonic() < grace:
                thread.join(POLL_S)
                errors, exits = _actor_status(runtime)
            raise SimulationError("a Lava process failed: " + _describe(errors, exits))
        if deadline is not None and time.monotonic() > deadline:
            raise SimulationError(f"Lava did not finish {num_steps} steps within "
                                  f"{timeout_s} s (hung or too slow); the run was stopped")
    if "error" in box:
        exc = box["error"]
        errors, exits = _actor_status(runtime)
        detail = f"\n{_describe(errors, exits)}" if errors or exits else ""
        raise SimulationError(f"Lava run failed: {type(exc).__name__}: {exc}{detail}") from exc


def _actors(runtime) -> list:
    mi = getattr(runtime, "_messaging_infrastructure", None)
    return list(getattr(mi, "actors", None) or [])


def _actor_status(runtime) -> tuple[list[str], list[str]]:
    """(exceptions the actors reported, descriptions of actors that exited)."""
    errors, exits = [], []
    for actor in _actors(runtime):
        try:
            exc = actor.exception  # polls the pipe Lava's SystemProcess reports exceptions on
        except (OSError, ValueError, EOFError):
            exc = None
        if exc:
            err, tb = exc if isinstance(exc, tuple) and len(exc) == 2 else (exc, "")
            errors.append(f"{type(err).__name__}: {err}\n{tb}".rstrip())
        try:
            code = actor.exitcode
            pid = actor.pid
        except ValueError:  # process object already closed (joined by Lava)
            continue
        if code is not None:
            exits.append(f"actor process {pid} exited with code {code}")
    return errors, exits


def _describe(errors: list[str], exits: list[str]) -> str:
    if errors:
        return "\n".join(errors)
    return "; ".join(exits) + " (no traceback was reported)"


# ---------------------------------------------------------------------------------------------
# shutting down


def shutdown_runtime(runtime, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop a Lava runtime for good: gracefully if it is idle, else (or if that does not finish
    within timeout_s) by killing its actor processes. Safe to call more than once."""
    if runtime is None:
        return
    idle = getattr(runtime, "_is_started", False) and not getattr(runtime, "_is_running", True)
    if idle and not any(_actor_status(runtime)):
        box: dict = {}

        def target():
            try:
                runtime.stop()
            except BaseException as exc:  # noqa: BLE001
                box["error"] = exc

        thread = threading.Thread(target=target, name="imsnn-lava-stop", daemon=True)
        thread.start()
        thread.join(timeout_s)
        if not thread.is_alive() and "error" not in box and not _live_actors(runtime):
            return
    _kill_runtime(runtime)


def _live_actors(runtime) -> list:
    live = []
    for actor in _actors(runtime):
        try:
            if actor.is_alive():
                live.append(actor)
        except (ValueError, AssertionError):  # closed, or not our child
            continue
    return live


def _kill_runtime(runtime) -> None:
    """Kill the runtime's actor processes by id, reap them, release shared memory, and mark
    the runtime stopped so that Lava's own __del__/stop() do not wait on dead processes."""
    import multiprocessing.connection as mpc
    from multiprocessing.process import BaseProcess

    actors = _actors(runtime)
    for actor in actors:
        try:
            pid, alive = actor.pid, actor.is_alive()
        except (ValueError, AssertionError):  # closed, or not our child
            pid, alive = None, False
        if pid and alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    sentinels = []
    for actor in actors:
        try:
            sentinels.append(actor.sentinel)
        except ValueError:
            pass
    deadline = time.monotonic() + 10.0
    while sentinels and time.monotonic() < deadline:
        ready = mpc.wait(sentinels, timeout=0.5)
        sentinels = [s for s in sentinels if s not in ready]
    for actor in actors:  # reap (BaseProcess.join: Lava's SystemProcess.join also closes)
        try:
            BaseProcess.join(actor, timeout=1.0)
        except (ValueError, AssertionError):
            pass
    runtime._is_running = False
    runtime._is_started = False
    for port in list(getattr(runtime, "_open_ports", [])):
        try:
            port.join()
        except Exception:  # noqa: BLE001 - best effort
            pass
    mi = getattr(runtime, "_messaging_infrastructure", None)
    smm = getattr(mi, "smm", None)
    if smm is not None:
        try:
            smm.shutdown()
        except Exception:  # noqa: BLE001 - best effort: the manager process may be gone
            pass
    wd = getattr(runtime, "_watchdog_manager", None)
    if wd is not None:
        try:
            wd.stop()
        except Exception:  # noqa: BLE001
            pass


def stop_all_runtimes(timeout_s: float = STOP_TIMEOUT_S) -> int:
    """Shut down every Lava runtime of this Python process that still has live actors (a test
    safety net). Returns how many were shut down. Cheap when none is alive."""
    if "lava.magma.runtime.runtime" not in sys.modules:
        return 0
    import multiprocessing

    if not multiprocessing.active_children():
        return 0
    from lava.magma.runtime.runtime import Runtime

    stopped = 0
    for obj in gc.get_objects():
        if isinstance(obj, Runtime) and (getattr(obj, "_is_started", False)
                                         or _live_actors(obj)):
            shutdown_runtime(obj, timeout_s)
            stopped += 1
    return stopped


# ---------------------------------------------------------------------------------------------
# results


def _progress(progress, total: int):
    if callable(progress):
        return None, lambda done: progress(done, total)
    if progress:
        from imsnn_lava.progress import progress_bar

        bar = progress_bar(total=total, unit="sample", desc="lava", dynamic_ncols=True)
        return bar, lambda done: bar.update(done - bar.n)
    return None, lambda done: None


def _per_sample(data: np.ndarray, net, n: int) -> np.ndarray:
    """(periods * T, R, ...) step records -> (T, N, ...) per sample."""
    p, t, r = net.num_periods, net.num_steps, net.replicas
    data = data.reshape((p, t, r) + data.shape[2:])
    data = np.swapaxes(data, 0, 1).reshape((t, p * r) + data.shape[3:])
    return data[:, :n]


def _get_int(var, n: int | None = None) -> np.ndarray:
    values = np.rint(var.get()).astype(np.int64)
    return values if n is None else values[:n]


def _collect(net, n: int, run_s: float, raster: bool = False) -> LavaResult:
    from imsnn_lava.proc_common import unpack_counts, unpack_words

    c = net.counter
    out = unpack_counts(c.packed_counts.get(), c.s_in.shape[-1], c.proc_params["bits"],
                        c.proc_params["per"])[:n]
    pre = [_get_int(s.spike_counts, n) for s in net.synapses]
    layer_counts = np.stack(pre[1:] + [out.sum(axis=1)], axis=1)
    model = net.model
    isi = [layer.synapse == "isi" for layer in model.layers]
    events = EventCounts(
        input_spikes=pre[0], spikes=layer_counts, spikes_in=np.stack(pre, axis=1),
        synops=np.stack([_get_int(s.synops, n) for s in net.synapses], axis=1),
        active_updates=np.stack([_get_int(s.active_updates, n) for s in net.synapses], axis=1),
        neuron_updates=np.array([net.num_steps * layer.n_out for layer in model.layers],
                                np.int64),
        isi=isi, isi_histograms=[_get_int(s.isi_histogram) if k else None
                                 for s, k in zip(net.synapses, isi)])
    result = LavaResult(output_counts=out, layer_counts=layer_counts, input_counts=pre[0],
                        predictions=reference.predict(out), num_steps=net.num_steps,
                        replicas=net.replicas, fixed=net.fixed, steps=net.total_steps,
                        wall_s=0.0, run_s=run_s, events=events)
    if raster:
        result.raster = [unpack_words(s.raster.get(), s.s_in.shape[-1]) for s in net.synapses]
        result.raster.append(unpack_words(net.counter.raster.get(), net.counter.s_in.shape[-1]))
    if net.spike_recorders is not None:
        dtype = np.int64 if net.fixed else np.float64
        result.spikes = [_per_sample(unpack_words(rec.data.get(), rec.a_in.shape[-1]), net, n)
                         for rec in net.spike_recorders]
        result.currents = [_per_sample(_as(rec.data.get(), dtype), net, n)
                           for rec in net.current_recorders]
        result.voltages = [_per_sample(_as(np.moveaxis(rd.data.get(), -1, 0), dtype), net, n)
                           for rd in net.voltage_readers]
    return result


def _as(values: np.ndarray, dtype) -> np.ndarray:
    return np.rint(values).astype(dtype) if dtype is np.int64 else values.astype(dtype)
