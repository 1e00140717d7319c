"""Endurance: consecutive Lava runs in one process leak nothing (bench/endurance.py, whose
short form this is: 20 runs of a tiny fixed-point model; the long form runs 200)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUNS = 20
WARMUP = 5


def _load_endurance():
    spec = importlib.util.spec_from_file_location("imsnn_bench_endurance",
                                                  REPO / "bench" / "endurance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.lava
@pytest.mark.timeout(120)
def test_consecutive_runs_leak_no_memory_fds_threads_processes_or_shared_memory():
    bench = _load_endurance()
    result = bench.endurance(RUNS, WARMUP, "fused", log=lambda *_: None)
    assert len(result["samples"]) == RUNS
    assert result["passed"], (result["failed"], result["growth"])
    growth = result["growth"]
    for key, bound in bench.BOUNDS.items():
        assert growth[key] <= bound, key
    # no run left a process or a shared memory object behind, and the sampler did see the
    # shared memory Lava used (else the check would be empty)
    assert all(s["children"] == 0 and s["shm_leaked"] == 0 for s in result["samples"])
    assert result["last"]["shm_mapped"] >= RUNS


def test_a_missing_backend_is_skipped_with_a_message(capsys, monkeypatch):
    bench = _load_endurance()
    monkeypatch.setattr(bench, "backend_available", lambda name: name == "fused")
    assert bench.main(["--backend", "stock", "--out", "/nonexistent/never-written.json"]) == 0
    assert "skipped: backend 'stock' is not in this tree" in capsys.readouterr().out
