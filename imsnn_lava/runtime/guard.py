"""The guard that always stops Lava: start a runtime, run chunks under a watchdog, shut it down
(gracefully, else by killing its actors by process id), and the safety nets around it.

Failure handling (docs/lava-notes.md): an exception inside a ProcessModel makes Lava hang
instead of raising, and a stuck runtime cannot be stopped gracefully. While a chunk runs, the
watchdog polls Lava's actor processes: one that reports an exception or dies ends the run at
once; a chunk that exceeds `timeout_s` ends it too. Either way the actors are killed by process
id, the shared memory is released, and SimulationError is raised (with the model's traceback
when Lava delivered it). Lava is imported only inside functions, and nothing here touches the
multiprocessing start method (Lava sets it on import).
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

from imsnn_lava.errors import SimulationError

POLL_S = 0.05
GRACE_S = 2.0
STOP_TIMEOUT_S = 30.0

# ---------------------------------------------------------------------------------------------
# running under a watchdog


def start_runtime(net):
    """Compile the network and start its actor processes (no steps yet)."""
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


def run_chunk(runtime, num_steps: int, timeout_s: float | None) -> None:
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
# Lava's global state

_LAVA_LOGGERS = ("", "lava.magma.compiler.compiler")


@contextmanager
def lava_logging_guard():
    """Undo the logging handlers Lava 0.10 adds: every process adds a console handler to the
    root logger and every compile one to the compiler's logger, so each run would multiply
    every later log line of the whole program. Wrap process creation and compilation."""
    loggers = [logging.getLogger(name) for name in _LAVA_LOGGERS]
    before = [list(lg.handlers) for lg in loggers]
    try:
        yield
    finally:
        for lg, keep in zip(loggers, before):
            for handler in list(lg.handlers):
                if handler not in keep:
                    lg.removeHandler(handler)


def release(procs: list) -> None:
    """Forget a finished network's processes and Vars in Lava's global registries, which
    otherwise keep every process (with its tables and input arrays) alive for the life of
    the Python process. Call only after its runtime has been shut down."""
    from lava.magma.core.process.process import ProcessServer
    from lava.magma.core.process.variable import VarServer

    proc_ids = {id(p) for p in procs}
    var_ids = {id(v) for p in procs for v in p.vars}
    server = ProcessServer()
    server.processes[:] = [p for p in server.processes if id(p) not in proc_ids]
    var_server = VarServer()
    var_server.vars[:] = [v for v in var_server.vars if id(v) not in var_ids]
