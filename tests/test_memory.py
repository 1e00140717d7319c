"""train.keep_freed_memory: glibc malloc keeps freed memory, so repeated large tensors stop
faulting in fresh pages (imsnn_train/memory.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from imsnn_train.config import ConfigError, from_dict, identity_json

# In a fresh process (the setting is process-wide): eight rounds of what a conv net's training
# step does to memory, tensors of tens of MB filled and then freed (here 8 x 20 MB); print the
# minor page faults of the last four rounds.
_ROUNDS = """
import json, resource, sys, torch
from imsnn_train import memory
applied = memory.keep_freed_memory() if sys.argv[1] == "keep" else None
faults = []
for _ in range(8):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    tensors = [torch.empty(5 << 20).fill_(1.0) for _ in range(8)]
    del tensors
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
print(json.dumps({"applied": applied, "faults": faults[4:]}))
"""
PAGES_PER_MB = (1 << 20) // 4096


def _rounds(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _ROUNDS, mode], check=True,
                         capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc (Linux) only")
def test_kept_memory_is_reused_without_page_faults():
    default, kept = _rounds("default"), _rounds("keep")
    assert kept["applied"] is True
    # glibc's default: the freed blocks go back to the system, so every round faults most of
    # its 160 MB in anew
    assert min(default["faults"]) > 100 * PAGES_PER_MB
    assert max(kept["faults"]) < PAGES_PER_MB


def test_keep_freed_memory_is_a_bool_outside_the_runs_identity():
    on = from_dict({"train": {"keep_freed_memory": True}})
    off = from_dict({"train": {"keep_freed_memory": False}})
    assert on.train.keep_freed_memory and not off.train.keep_freed_memory
    assert identity_json(on) == identity_json(off)
    with pytest.raises(ConfigError, match="keep_freed_memory"):
        from_dict({"train": {"keep_freed_memory": "yes"}})


@pytest.mark.parametrize("keep", [True, False])
def test_cpu_training_applies_the_setting_it_is_given(mnist_cached, tmp_path, monkeypatch, keep):
    from imsnn_train import train as train_mod

    calls = []
    monkeypatch.setattr(train_mod.memory, "keep_freed_memory", lambda: calls.append(1) or True)
    cfg = from_dict({"model": {"layers": [{"kind": "dense", "out": 10}]},
                     "encoding": {"num_steps": 5},
                     "train": {"epochs": 1, "train_subset": 100, "eval_subset": 20,
                               "val_size": 100, "threads": 1, "device": "cpu",
                               "keep_freed_memory": keep}})
    train_mod.train(cfg, tmp_path / "run", progress=False, log=lambda *a, **k: None)
    assert len(calls) == (1 if keep else 0)
