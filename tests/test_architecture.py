"""The arrows of docs/architecture.md: which stage may import what, checked on the source, and
the deployment commands run where importing torch fails."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
LAVA_SIDE = REPO / "imsnn_lava"

# stage -> top-level imports it must never make (anywhere in its files, functions included)
FORBIDDEN = {
    "": ("torch", "imsnn_train"),  # the whole deployment side
    "ir": ("lava", "imsnn_lava.backends", "imsnn_lava.runtime", "imsnn_lava.analysis",
           "imsnn_lava.interop", "imsnn_lava.commands"),
    "numerics": ("lava", "imsnn_lava.backends", "imsnn_lava.runtime", "imsnn_lava.analysis",
                 "imsnn_lava.interop", "imsnn_lava.commands"),
    "data": ("lava", "imsnn_lava.backends", "imsnn_lava.runtime", "imsnn_lava.analysis"),
    "analysis": ("lava", "imsnn_lava.backends", "imsnn_lava.commands"),
    "interop": ("lava", "imsnn_lava.backends", "imsnn_lava.runtime"),
    "runtime": ("imsnn_lava.commands", "imsnn_lava.analysis"),
    "backends": ("imsnn_lava.commands", "imsnn_lava.analysis"),
}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def _violations(stage: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in sorted((LAVA_SIDE / stage).rglob("*.py")):
        for name in _imports(path):
            for bad in forbidden:
                if name == bad or name.startswith(bad + "."):
                    out.append(f"{path.relative_to(REPO)} imports {name}")
    return out


@pytest.mark.parametrize("stage", sorted(FORBIDDEN))
def test_import_directions(stage):
    assert _violations(stage, FORBIDDEN[stage]) == []


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    """The scan itself works: a module importing torch under the IR is found."""
    fake = tmp_path / "imsnn_lava" / "ir"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("def f():\n    import torch\n")
    monkeypatch.setattr(sys.modules[__name__], "LAVA_SIDE", tmp_path / "imsnn_lava")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert _violations("ir", FORBIDDEN[""]) == ["imsnn_lava/ir/bad.py imports torch"]


def test_each_fused_process_folder_holds_only_its_process():
    """Lava executes every .py file of a process's folder: nothing else may live there."""
    for folder in (LAVA_SIDE / "backends").glob("*/proc/*"):
        if folder.is_dir() and folder.name != "__pycache__":
            names = sorted(p.name for p in folder.glob("*.py"))
            assert names == ["__init__.py", "models.py", "process.py"], folder


BLOCK_TORCH = """
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch.") or name.startswith("imsnn_train.train"):
            raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, _NoTorch())
from imsnn_train.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _no_torch(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH, *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


def test_blocking_torch_really_blocks():
    proc = _no_torch("evaluate", "nothing.pt")
    assert proc.returncode != 0 and "blocked in this test" in proc.stderr


@pytest.mark.lava
def test_deployment_commands_run_without_torch(tmp_path):
    """verify, simulate, merge and report on a model file, with importing torch failing."""
    import lava_helpers as H  # tests/lava_helpers.py

    from imsnn_lava import ir
    from imsnn_lava.numerics import reference

    model = H.quantize(H.mnist_model(seed=2, num_steps=8))
    spikes = H.random_spikes(np.random.default_rng(0), 2, 8, 784, 0.2)
    res = reference.simulate(model, spikes.transpose(1, 0, 2), fixed=True)
    model = model.replace(reference=ir.ReferenceData(
        sample_ids=np.arange(2), labels=np.arange(2),
        spikes=spikes, layer_counts=res.layer_counts(), output_counts=res.output_counts()))
    path = tmp_path / "m.h5"
    ir.write(model, path)
    proc = _no_torch("verify", path)
    assert proc.returncode == 0, proc.stderr
    assert "2/2 reference samples reproduced exactly" in proc.stdout
    shards = []
    for k in (1, 2):
        shards.append(tmp_path / f"s{k}.json")
        proc = _no_torch("simulate", path, "--fixed-point", "-n", "4", "--shard", f"{k}/2",
                         "--no-progress", "--json", shards[-1])
        assert proc.returncode == 0, proc.stderr
    proc = _no_torch("merge", *shards, "-o", tmp_path / "all.json")
    assert proc.returncode == 0, proc.stderr
    proc = _no_torch("report", tmp_path / "all.json", "-o", tmp_path / "report")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "report" / "index.html").is_file()


def test_bench_and_deploy_scripts_import_what_exists():
    """Scripts outside the packages are not run by the suite: their imsnn imports must still
    name modules and attributes that exist (a moved module breaks them silently)."""
    import importlib

    repo = Path(__file__).resolve().parents[1]
    missing = []
    for path in sorted([*repo.glob("bench/*.py"), *repo.glob("deploy/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.module
                    and node.module.split(".")[0] in ("imsnn_lava", "imsnn_train")):
                continue
            try:
                module = importlib.import_module(node.module)
            except ImportError as exc:
                missing.append(f"{path.name}:{node.lineno} {node.module} ({exc})")
                continue
            for alias in node.names:
                if not hasattr(module, alias.name):
                    try:
                        importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        missing.append(f"{path.name}:{node.lineno} {node.module}.{alias.name}")
    assert missing == []
