"""Concurrent runs: four `imsnn simulate` processes started at once on the same model file
give the same results as one run alone (timing fields aside), and leave no process and no
shared memory behind (the shared memory each run mapped is sampled from /proc while they
run, as bench/endurance.py does; other programs may use /dev/shm at the same time)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import lava_helpers as H  # tests/lava_helpers.py; conftest.py puts tests/ on sys.path
import pytest

from imsnn_lava import ir
from imsnn_lava.analysis.result import RUN_FIELDS

REPO = Path(__file__).resolve().parents[1]
CONCURRENT = 4
SAMPLES = 8
RUN_TIMEOUT_S = 240


def _load_endurance():
    spec = importlib.util.spec_from_file_location("imsnn_bench_endurance",
                                                  REPO / "bench" / "endurance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _simulate(model: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "imsnn_train.cli", "simulate", str(model), "--fixed-point",
         "-n", str(SAMPLES), "--json", str(out), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _result(path: Path) -> dict:
    data = json.loads(path.read_text())
    for key in RUN_FIELDS:
        data.pop(key, None)
    return data


@pytest.mark.lava
@pytest.mark.timeout(300)
def test_four_concurrent_simulates_equal_one_alone_and_leave_nothing(tmp_path, mnist_test):
    bench = _load_endurance()
    model = tmp_path / "model.h5"
    ir.write(H.quantize(H.mnist_model(num_steps=12)), model)
    alone = _simulate(model, tmp_path / "alone.json")
    out, err = alone.communicate(timeout=RUN_TIMEOUT_S)
    assert alone.returncode == 0, err[-3000:]
    reference = _result(tmp_path / "alone.json")
    assert reference["num_samples"] == SAMPLES
    assert sum(row["spikes_per_sample"] for row in reference["layers"]) > 0

    sampler = bench.ShmSampler()
    sampler.start()
    procs = []
    try:
        procs = [_simulate(model, tmp_path / f"run{i}.json") for i in range(CONCURRENT)]
        outputs = [p.communicate(timeout=RUN_TIMEOUT_S) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
        sampler.stop()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    for i in range(CONCURRENT):
        assert _result(tmp_path / f"run{i}.json") == reference, f"run {i}"
    # nothing left: no process of any run (children, or orphans still in a run's process
    # group), no shared memory object any of them mapped
    groups = {p.pid for p in procs}

    def left() -> list[int]:
        in_groups = [pid for pid, _, pgid, state, _ in H.proc_table()
                     if pgid in groups and state != "Z"]
        return sorted(set(in_groups) | set(bench.children()))

    deadline = time.monotonic() + 10
    while left() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left() == []
    assert len(sampler.names) >= CONCURRENT, "the sampler saw no shared memory"
    assert sampler.leaked() == []
    print(f"{CONCURRENT} concurrent runs: results equal, {len(sampler.names)} shared memory "
          "objects mapped, none left, no process left")
