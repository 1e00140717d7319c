"""Lava shutdown leaves nothing behind: no process, no shared memory; the next run works.

Failures covered: an exception inside a ProcessModel, a model that passes reading but fails
while the network is built, a runtime that fails while starting its actors, and Ctrl-C
(SIGINT) and SIGTERM during a real `imsnn simulate` subprocess (sent to its whole process
group, as a terminal or a service manager does, and to its main process only).

Shared memory is attributed, not diffed globally (other test runs may use /dev/shm at the
same time): a sampler thread records every /dev/shm object mapped by the processes under test
while they run (from /proc/PID/maps); afterwards none of them may still exist.
(tests/test_lava_runner.py checks the child processes after a model error, a hang and an
in-process KeyboardInterrupt; these add shared memory, build/start failures and the CLI.)
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import lava_helpers as H  # tests/lava_helpers.py; conftest.py puts tests/ on sys.path
import numpy as np
import pytest

from imsnn_lava import ir as fmt
from imsnn_lava import runtime as runner
from imsnn_lava.errors import SimulationError
from imsnn_lava.numerics import reference as R
from imsnn_lava.numerics import synapse

REPO = Path(__file__).resolve().parents[1]




# ---------------------------------------------------------------------------------------------
# processes and shared memory, from /proc


def _proc_table() -> list[tuple[int, int, int, str]]:
    """(pid, ppid, pgid, command line) of every live (not zombie) process."""
    return [(pid, ppid, pgid, cmd) for pid, ppid, pgid, state, cmd in H.proc_table()
            if state != "Z"]


def _descendants(root: int) -> list[int]:
    """Live descendants of `root`, except multiprocessing's resource tracker (it lives as
    long as its Python process)."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, ppid, _, _ in table:
        children.setdefault(ppid, []).append(pid)
    tracker = {pid for pid, _, _, cmd in table if "resource_tracker" in cmd}
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            todo.append(child)
            if child not in tracker:
                out.append(child)
    return out


def _group(pgid: int) -> list[int]:
    return [pid for pid, _, group, _ in _proc_table() if group == pgid]


def _mapped_shm(pids) -> set[str]:
    names = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as f:
                for line in f:
                    if "/dev/shm/" in line:
                        names.add(line.split("/dev/shm/", 1)[1].split()[0])
        except OSError:
            continue
    return names


class ShmSampler:
    """Records the /dev/shm objects mapped by `pids()` every 20 ms while active."""

    def __init__(self, pids: Callable[[], list[int]]):
        self.pids = pids
        self.names: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            self.names |= _mapped_shm(self.pids())
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def leaked(self) -> list[str]:
        return sorted(n for n in self.names if os.path.exists(f"/dev/shm/{n}"))


def _in_process_sampler() -> ShmSampler:
    me = os.getpid()
    return ShmSampler(lambda: [me, *_descendants(me)])


def _assert_clean(sampler: ShmSampler, before: set[int]) -> None:
    assert sampler.names, "the sampler saw no shared memory: Lava never started?"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (
            set(_descendants(os.getpid())) - before or sampler.leaked()):
        time.sleep(0.1)
    assert sorted(set(_descendants(os.getpid())) - before) == []
    assert sampler.leaked() == []


def _next_run_works(model, x) -> None:
    with _in_process_sampler() as sampler:
        res = runner.run(model, fixed=model.precision == "fixed", spikes=x, timeout_s=60)
    fixed = model.precision == "fixed"
    np.testing.assert_array_equal(res.layer_counts, R.simulate(
        model, x.transpose(1, 0, 2), fixed=fixed).layer_counts())
    assert sampler.leaked() == []


@pytest.fixture
def fixed_model(tmp_path):
    """A fixed-point model that went through a file (write + read)."""
    path = tmp_path / "tiny.h5"
    fmt.write(H.quantize(H.tiny_model()), path)
    return fmt.read(path)


# ---------------------------------------------------------------------------------------------
# in-process failures


@pytest.mark.lava
@pytest.mark.timeout(90)
def test_model_error_mid_run_frees_shared_memory(monkeypatch):
    """A ProcessModel raises on its 30th step (after two chunks have run): SimulationError,
    the actors are gone, every shared-memory object they mapped is unlinked, the next run
    works. (Float: the fixed-point synapse runs its own integer kernel, not synapse_step.)"""
    model = H.tiny_model()
    x = H.random_spikes(np.random.default_rng(0), 6, model.num_steps, 16, 0.4)
    before = set(_descendants(os.getpid()))
    calls = {"n": 0}
    original = synapse.synapse_step

    def breaks_later(spikes, counter, syn):  # counted per actor process (patched pre-fork)
        calls["n"] += 1
        if calls["n"] >= 30:
            raise RuntimeError("deliberately broken on step 30")
        return original(spikes, counter, syn)

    monkeypatch.setattr(synapse, "synapse_step", breaks_later)
    with _in_process_sampler() as sampler, pytest.raises(SimulationError, match="step 30"):
        runner.run(model, fixed=False, spikes=x, timeout_s=30, chunk_steps=model.num_steps)
    _assert_clean(sampler, before)
    monkeypatch.setattr(synapse, "synapse_step", original)
    _next_run_works(model, x)


@pytest.mark.lava
@pytest.mark.timeout(90)
def test_model_that_fails_while_building_leaves_nothing(fixed_model):
    """A ModelFile that passed reading, made inconsistent in memory (layer 2 expects 13
    inputs, layer 1 gives 12): building the network fails before a runtime exists; nothing
    is left running or mapped, and the next run (of the intact model) works."""
    x = H.random_spikes(np.random.default_rng(1), 3, fixed_model.num_steps, 16, 0.4)
    bad = copy.deepcopy(fixed_model)
    layer = bad.layers[1]
    # the IR's nodes are frozen and validated: only a corruption in memory gets past them
    table = type(layer.fixed.table)(mant=np.zeros((1, layer.n_out, 13), np.int16),
                                    exp=layer.fixed.table.exp)
    for key, value in (("in_shape", (13, 1, 1)), ("weight", np.zeros((layer.n_out, 13)))):
        object.__setattr__(layer, key, value)
    object.__setattr__(layer.fixed, "table", table)
    before = set(_descendants(os.getpid()))
    t0 = time.monotonic()
    with pytest.raises(Exception) as info:  # noqa: PT011 - see the report: not yet typed
        runner.run(bad, fixed=True, spikes=x, timeout_s=30)
    assert time.monotonic() - t0 < 30
    assert "13" in str(info.value)
    assert sorted(set(_descendants(os.getpid())) - before) == []
    _next_run_works(fixed_model, x)


@pytest.mark.lava
@pytest.mark.timeout(90)
def test_runtime_that_fails_while_starting_leaves_nothing(fixed_model, monkeypatch):
    """Lava's runtime starts its actor processes and shared memory, then fails (injected
    after Runtime.initialize): SimulationError, actors killed, shared memory unlinked, and
    the next run works."""
    from lava.magma.runtime.runtime import Runtime

    x = H.random_spikes(np.random.default_rng(2), 3, fixed_model.num_steps, 16, 0.4)
    real = Runtime.initialize

    def initialize_then_fail(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise RuntimeError("injected failure after the actors started")

    monkeypatch.setattr(Runtime, "initialize", initialize_then_fail)
    before = set(_descendants(os.getpid()))
    with _in_process_sampler() as sampler, pytest.raises(SimulationError, match="injected"):
        runner.run(fixed_model, fixed=True, spikes=x, timeout_s=30)
    _assert_clean(sampler, before)
    monkeypatch.setattr(Runtime, "initialize", real)
    _next_run_works(fixed_model, x)


# ---------------------------------------------------------------------------------------------
# Ctrl-C during `imsnn simulate`


@pytest.fixture(scope="module")
def long_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sigint") / "model.h5"
    fmt.write(H.mnist_model(num_steps=20), path)
    return path


@pytest.mark.lava
@pytest.mark.timeout(120)
@pytest.mark.parametrize("target", ["process group", "main process"])
def test_ctrl_c_during_simulate_stops_everything(long_model, mnist_test, target, ctrl_c):
    """`imsnn simulate` on 2000 samples (about a minute) gets SIGINT once Lava is
    simulating: it exits 130 within seconds saying 'interrupted', and leaves no process of
    its group and no shared memory behind."""
    _signal_during_simulate(long_model, target, signal.SIGINT, 130,
                            "imsnn simulate: interrupted")


@pytest.mark.lava
@pytest.mark.timeout(120)
@pytest.mark.parametrize("target", ["process group", "main process"])
def test_sigterm_during_simulate_stops_everything(long_model, mnist_test, target):
    """The same with SIGTERM (as `kill`, systemd or a job scheduler stop a program): exit
    143 saying 'terminated', nothing left; to the whole group, Lava's forked processes let
    the main process stop them (no tracebacks, no shared memory left to the tracker)."""
    _signal_during_simulate(long_model, target, signal.SIGTERM, 143,
                            "imsnn simulate: terminated (SIGTERM)")


def _signal_during_simulate(long_model: Path, target: str, sig: int, code: int,
                            last_line: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "imsnn_train.cli", "simulate", str(long_model), "-n", "2000",
         "--replicas", "1", "--no-progress", "--timeout", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    pgid = proc.pid
    try:
        with ShmSampler(lambda: _group(pgid)) as sampler:
            deadline = time.monotonic() + 60
            while len(_group(pgid)) < 5 or not sampler.names:  # Lava's actors are up
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "Lava did not start within 60 s"
                time.sleep(0.05)
            time.sleep(1.0)  # well inside the run
            assert proc.poll() is None
            if target == "process group":
                os.killpg(pgid, sig)
            else:
                os.kill(proc.pid, sig)
            t0 = time.monotonic()
            _, err = proc.communicate(timeout=60)
            stop_s = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(pgid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == code, err[-3000:]
    assert stop_s < 20
    lines = err.strip().splitlines()
    assert lines[-1] == last_line
    if target == "main process" or sig == signal.SIGTERM:
        assert lines == [last_line]
    deadline = time.monotonic() + 10
    while _group(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _group(pgid) == []
    assert sampler.leaked() == []
