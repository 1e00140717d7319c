"""Interrupted training: a real `imsnn train` killed with SIGKILL (or stopped with SIGTERM)
in the middle of epoch 2 resumes with --resume from its last checkpoint and ends exactly
where an uninterrupted run ends (same config and seed, CPU, one thread): weights, Adam
state, history, test metrics.
A SIGKILL in the middle of writing a checkpoint leaves the previous checkpoint.

(tests/test_training.py covers an in-process exception mid-epoch; these use real processes
and real signals.)
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import lava_helpers as H  # tests/lava_helpers.py; conftest.py puts tests/ on sys.path
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "deploy" / "configs" / "demo_imsnn.toml"
# three short epochs; each batch takes long enough that a kill lands between batches
OVERRIDES = ['model.layers=[{"kind":"dense","out":24},{"kind":"dense","out":10}]',
             "train.epochs=3", "train.batch_size=40", "train.train_subset=800",
             "train.eval_subset=60", "train.threads=1", "encoding.num_steps=10",
             "name=robust_tiny"]
EPOCH2_BATCH = re.compile(r"epoch 2/3:[^|\r\n]*\|[^|\r\n]*\| *([1-9]\d*)/(\d+)")


def _imsnn(*args) -> list[str]:
    return [sys.executable, "-m", "imsnn_train.cli", *map(str, args)]


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("COLUMNS", None)
    return env


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, mnist_test):
    """The same config trained in this process without interruption."""
    return H.train_here(CONFIG, OVERRIDES, tmp_path_factory.mktemp("uninterrupted"))


def _kill_during_epoch_2(out: Path, sig: int = signal.SIGKILL,
                         returncode: int = -signal.SIGKILL) -> str:
    """Start `imsnn train`, send `sig` (SIGKILL) to its process group once its progress bar
    shows a batch of epoch 2 done (the epoch-1 checkpoint is then on disk); check its exit
    status and return its stderr."""
    # --progress: stdout is not a terminal, and the progress bar is how the test sees epoch 2
    proc = subprocess.Popen(_imsnn("train", "--config", CONFIG, "--out", out, "--progress",
                                   *OVERRIDES),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True, env=_env())
    seen = bytearray()
    hit = threading.Event()

    def reader():
        while chunk := proc.stderr.read1(4096):
            seen.extend(chunk)
            if EPOCH2_BATCH.search(seen[-4096:].decode("utf-8", "replace")):
                hit.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        assert hit.wait(120), f"epoch 2 never started:\n{seen.decode(errors='replace')[-2000:]}"
        os.killpg(proc.pid, sig)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        thread.join(10)
    assert proc.returncode == returncode, seen.decode("utf-8", "replace")[-2000:]
    return seen.decode("utf-8", "replace")


def _comparable(metrics: dict) -> dict:
    out = json.loads(json.dumps(metrics))
    out.pop("checkpoint", None)
    for row in out["history"]:
        row.pop("seconds", None)
    return out


@pytest.mark.timeout(240)
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(uninterrupted, tmp_path):
    out = tmp_path / "run"
    stderr = _kill_during_epoch_2(out)
    match = EPOCH2_BATCH.findall(stderr)[-1]
    assert int(match[0]) < int(match[1])  # killed with batches of epoch 2 still to run
    _resume_equals_uninterrupted(out, uninterrupted)


@pytest.mark.timeout(240)
def test_sigterm_mid_epoch_stops_cleanly_then_resume_equals_uninterrupted(uninterrupted,
                                                                          tmp_path):
    """SIGTERM (to the process group, as a service manager sends it) stops training like
    Ctrl-C: exit 143 with one line saying so, the epoch-1 checkpoint kept, nothing else
    written, and --resume ends exactly where the uninterrupted run ends."""
    out = tmp_path / "run"
    stderr = _kill_during_epoch_2(out, signal.SIGTERM, 143)
    match = EPOCH2_BATCH.findall(stderr)[-1]
    assert int(match[0]) < int(match[1])  # stopped with batches of epoch 2 still to run
    # the last line (after the progress bar's carriage returns) says what happened
    assert re.split(r"[\r\n]", stderr.rstrip())[-1] == "imsnn train: terminated (SIGTERM)"
    assert "Traceback" not in stderr
    _resume_equals_uninterrupted(out, uninterrupted)


def _resume_equals_uninterrupted(out: Path, uninterrupted) -> None:
    from imsnn_train import checkpoint

    ref_out, ref_metrics = uninterrupted
    # what the stop left: the epoch-1 checkpoint, complete and loadable; nothing else
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt"]
    killed = checkpoint.load(out / "checkpoint.pt")
    ref_ckpt = checkpoint.load(ref_out / "checkpoint.pt")
    assert killed["epoch"] == 1
    assert _comparable({"history": killed["history"]}) == \
        _comparable({"history": ref_ckpt["history"][:1]})

    proc = subprocess.run(_imsnn("train", "--config", CONFIG, "--out", out, "--resume",
                                 "--no-progress", *OVERRIDES),
                          capture_output=True, text=True, timeout=200, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming robust_tiny after epoch 1" in proc.stdout

    resumed = checkpoint.load(out / "checkpoint.pt")
    assert resumed["epoch"] == ref_ckpt["epoch"] == 3
    assert resumed["model"].keys() == ref_ckpt["model"].keys()
    for key, value in ref_ckpt["model"].items():
        assert torch.equal(resumed["model"][key], value), key
    opt_a, opt_b = ref_ckpt["optimizer"], resumed["optimizer"]
    assert opt_a["param_groups"] == opt_b["param_groups"]
    for pid, state in opt_a["state"].items():
        for key, value in state.items():
            assert torch.equal(opt_b["state"][pid][key], value), (pid, key)
    metrics = json.loads((out / "metrics.json").read_text())
    assert _comparable(metrics) == _comparable(ref_metrics)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.json"]


_WRITER = r"""
import os, sys, time, torch
from imsnn_train import checkpoint
from imsnn_train.config import from_dict

cfg = from_dict({"name": "w"})
path = sys.argv[1]
checkpoint.save(path, cfg, 1, {"w": torch.ones(3)}, None, [{"epoch": 1}])
real_save = torch.save

def half_then_hang(obj, f, *a, **k):
    real_save(obj, f, *a, **k)
    with open(f, "r+b") as fh:          # the temp file now holds half of the new checkpoint
        fh.truncate(os.path.getsize(f) // 2)
    print("writing", flush=True)
    time.sleep(600)

checkpoint.torch.save = half_then_hang
checkpoint.save(path, cfg, 2, {"w": torch.zeros(3)}, None, [{"epoch": 1}, {"epoch": 2}])
"""


@pytest.mark.timeout(60)
def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path):
    from imsnn_train import checkpoint

    path = tmp_path / "checkpoint.pt"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    try:
        line = proc.stdout.readline()
        assert line.strip() == "writing", proc.stderr.read()
        time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
    payload = checkpoint.load(path)  # the old checkpoint, whole
    assert payload["epoch"] == 1 and torch.equal(payload["model"]["w"], torch.ones(3))
    # the kill left the half-written temp file beside it, never in its place
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "checkpoint.pt"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".checkpoint.pt.")
    assert leftovers[0].endswith(".tmp")
