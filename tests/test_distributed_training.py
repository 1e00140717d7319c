"""Data-parallel training under torchrun (2 CPU processes, gloo): the same model as one process
with the same global batch, and a killed distributed run resumes.

- equivalence: `torchrun --nproc-per-node 2 imsnn train` and an in-process `train()` of one
  config (global batch 40, a last batch of 15 split 8 / 7) give the same per-epoch training
  loss (float tolerance: the gradient is summed in another order), the same accuracies and
  spike counts, and weights equal to float tolerance. Only rank 0 logs and writes.
- resume: the same distributed run, SIGKILLed once its epoch-1 checkpoint is on disk and
  resumed with --resume under torchrun, ends bit-identical to the uninterrupted distributed run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lava_helpers as H  # tests/lava_helpers.py; conftest.py puts tests/ on sys.path
import pytest
import torch
from lava_helpers import proc_table

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "deploy" / "configs" / "demo_imsnn.toml"
EPOCHS = 3
OVERRIDES = ['model.layers=[{"kind":"dense","out":24},{"kind":"dense","out":10}]',
             f"train.epochs={EPOCHS}", "train.batch_size=40", "train.train_subset=415",
             "train.eval_subset=100", "train.threads=1", "train.device=cpu",
             "encoding.num_steps=10", "name=ddp_tiny"]
LOSS_RTOL = 1e-4  # per-epoch mean loss: rounding of a gradient summed in another order
WEIGHT_ATOL = 1e-4

pytestmark = pytest.mark.timeout(180)


def _torchrun(out: Path, *extra) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", "2", "-m", "imsnn_train.cli", "train", "--config", str(CONFIG),
            "--out", str(out), *extra, *OVERRIDES]


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def _kill_tree(root: int) -> None:
    """SIGKILL root and every process under it (torchrun starts its workers in sessions of
    their own, so killing its process group leaves them running)."""
    children: dict[int, list[int]] = {}
    for pid, ppid, *_ in proc_table():
        children.setdefault(ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    for pid in reversed(tree):  # workers first: an orphaned worker would keep training
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _comparable(metrics: dict) -> dict:
    out = json.loads(json.dumps(metrics))
    out.pop("checkpoint", None)
    for row in out["history"]:
        row.pop("seconds", None)
    return out


@pytest.fixture(scope="module")
def single(tmp_path_factory, mnist_test):
    return H.train_here(CONFIG, OVERRIDES, tmp_path_factory.mktemp("single"))


@pytest.fixture(scope="module")
def distributed_run(tmp_path_factory, mnist_test):
    out = tmp_path_factory.mktemp("ddp") / "run"
    proc = subprocess.run(_torchrun(out, "--no-progress"), capture_output=True, text=True,
                          timeout=150, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_two_processes_train_the_single_process_model(single, distributed_run):
    from imsnn_train import checkpoint

    (ref_out, ref), (out, proc) = single, distributed_run
    assert proc.stdout.count("run folder:") == 1  # rank 0 alone reports
    assert proc.stdout.count(f"epoch 1/{EPOCHS}:") == 1
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.json"]
    got = json.loads((out / "metrics.json").read_text())
    assert len(got["history"]) == len(ref["history"]) == EPOCHS
    for a, b in zip(got["history"], ref["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=LOSS_RTOL)
        assert a["train_accuracy"] == pytest.approx(b["train_accuracy"], abs=1e-9)
        assert a["val"]["accuracy"] == b["val"]["accuracy"]
    assert got["history"][-1]["train_loss"] < got["history"][0]["train_loss"]  # it learned
    assert got["test"]["accuracy"] == ref["test"]["accuracy"]
    assert got["test"]["num_samples"] == ref["test"]["num_samples"] == 100
    a = checkpoint.load(out / "checkpoint.pt")["model"]
    b = checkpoint.load(ref_out / "checkpoint.pt")["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=0, atol=WEIGHT_ATOL), key
    moved = checkpoint.load(out / "checkpoint.pt")["history"]
    assert moved == got["history"]


def test_killed_distributed_run_resumes(distributed_run, tmp_path):
    from imsnn_train import checkpoint

    ref_out, _ = distributed_run
    out = tmp_path / "run"
    proc = subprocess.Popen(_torchrun(out, "--no-progress"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=_env())
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.pt").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "no epoch-1 checkpoint"
            time.sleep(0.02)
        _kill_tree(proc.pid)  # torchrun and both workers
    finally:
        if proc.poll() is None:
            _kill_tree(proc.pid)
        proc.wait(30)
    killed = checkpoint.load(out / "checkpoint.pt")
    assert killed["epoch"] < EPOCHS and not (out / "metrics.json").exists()

    done = subprocess.run(_torchrun(out, "--no-progress", "--resume"), capture_output=True,
                          text=True, timeout=150, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(f"resuming ddp_tiny after epoch {killed['epoch']}") == 1
    a = checkpoint.load(ref_out / "checkpoint.pt")
    b = checkpoint.load(out / "checkpoint.pt")
    assert a["epoch"] == b["epoch"] == EPOCHS
    for key, value in a["model"].items():
        assert torch.equal(b["model"][key], value), key
    for pid, state in a["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(b["optimizer"]["state"][pid][key], value), (pid, key)
    assert _comparable(json.loads((out / "metrics.json").read_text())) == \
        _comparable(json.loads((ref_out / "metrics.json").read_text()))
