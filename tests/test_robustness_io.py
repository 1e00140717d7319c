"""Output files: unwritable folders fail up front, a full disk fails clearly, writes are atomic.

- Every command that writes (train --out, export -o, evaluate --json, simulate --json,
  report -o) checks its output before the long work starts: an unwritable path gives exit
  code 2 and one line naming it, and the work (loading data, the checkpoint, running Lava,
  loading the energy profile) never starts. Tests run as root, where permission bits do not
  bind, so the unwritable paths are a folder below a regular file and one below /proc.
- Disk full (OSError ENOSPC injected into the write path): one clear line, exit code 2, and
  no partial file: the previous file, if there was one, is unchanged, and no temp file stays.
- Every writer of the package writes a temp file in the target folder and os.replaces it
  (checked on the source), and an exception in the middle of each writer leaves the old file.
"""

from __future__ import annotations

import ast
import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from imsnn_train import cli

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "deploy" / "configs" / "demo_imsnn.toml"
RESULT = REPO / "tests" / "fixtures" / "results" / "minimal_evaluate.json"
TINY = ['model.layers=[{"kind":"dense","out":8},{"kind":"dense","out":10}]',
        "encoding.num_steps=5", "train.epochs=1", "train.train_subset=40",
        "train.eval_subset=20", "train.batch_size=20", "train.threads=1"]
ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _unwritable(tmp_path: Path, kind: str) -> Path:
    """A folder nobody can create, even root: below a regular file, or below /proc."""
    if kind == "below-a-file":
        blocker = tmp_path / "file.txt"
        blocker.write_text("x")
        return blocker / "out"
    return Path("/proc") / f"imsnn-robustness-{os.getpid()}" / "out"


def _fail(*_args, **_kwargs):
    raise AssertionError("the long work started before the output was checked")


def _one_line_error(capsys, command: str, *needles) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"imsnn {command}: error: "), err[0]
    for needle in needles:
        assert str(needle) in err[0], err[0]
    return err[0]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    from imsnn_train import checkpoint, config
    from imsnn_train.network import Network

    cfg = config.load(CONFIG, TINY)
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    checkpoint.save(path, cfg, 1, Network(cfg.model).state_dict(), None, [])
    return path


@pytest.fixture(scope="module")
def mnist_model_file(tmp_path_factory) -> Path:
    import importlib.util

    from imsnn_lava import ir as fmt

    spec = importlib.util.spec_from_file_location("io_lava_helpers",
                                                  REPO / "tests" / "lava_helpers.py")
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    path = tmp_path_factory.mktemp("model") / "model.h5"
    fmt.write(helpers.mnist_model(), path)
    return path


# ---------------------------------------------------------------------------------------------
# unwritable output: refused before the work starts

KINDS = ["below-a-file", "proc"]


@pytest.mark.parametrize("kind", KINDS)
def test_train_refuses_an_unwritable_run_folder_before_loading_data(tmp_path, kind, capsys,
                                                                     monkeypatch):
    import imsnn_train.train as train_mod

    monkeypatch.setattr(train_mod, "load_split_with_ids", _fail)
    out = _unwritable(tmp_path, kind)
    assert cli.main(["train", "--config", str(CONFIG), "--out", str(out), *TINY]) == 2
    _one_line_error(capsys, "train", out, "cannot write the run folder")
    assert not out.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_export_refuses_an_unwritable_output_before_loading(tmp_path, kind, capsys,
                                                            monkeypatch, tiny_checkpoint):
    import imsnn_train.checkpoint as ckpt_mod

    monkeypatch.setattr(ckpt_mod, "load_network", _fail)
    out = _unwritable(tmp_path, kind) / "model.h5"
    assert cli.main(["export", str(tiny_checkpoint), "-o", str(out)]) == 2
    _one_line_error(capsys, "export", out, "cannot write the model file")


@pytest.mark.parametrize("kind", KINDS)
def test_evaluate_refuses_an_unwritable_json_before_loading(tmp_path, kind, capsys,
                                                            monkeypatch, tiny_checkpoint):
    import imsnn_train.checkpoint as ckpt_mod

    monkeypatch.setattr(ckpt_mod, "load_network", _fail)
    out = _unwritable(tmp_path, kind) / "metrics.json"
    assert cli.main(["evaluate", str(tiny_checkpoint), "--json", str(out)]) == 2
    _one_line_error(capsys, "evaluate", out, "cannot write")


@pytest.mark.parametrize("kind", KINDS)
def test_simulate_refuses_an_unwritable_json_before_running_lava(tmp_path, kind, capsys,
                                                                 monkeypatch, mnist_model_file,
                                                                 mnist_test):
    from imsnn_lava import runtime as runner

    monkeypatch.setattr(runner, "run", _fail)
    out = _unwritable(tmp_path, kind) / "lava.json"
    rc = cli.main(["simulate", str(mnist_model_file), "-n", "2", "--json", str(out),
                   "--no-progress"])
    assert rc == 2
    _one_line_error(capsys, "simulate", out, "cannot write")


@pytest.mark.parametrize("kind", KINDS)
def test_report_refuses_an_unwritable_folder_before_any_work(tmp_path, kind, capsys,
                                                             monkeypatch):
    from imsnn_lava.analysis import energy

    monkeypatch.setattr(energy, "load_profile", _fail)
    out = _unwritable(tmp_path, kind)
    assert cli.main(["report", str(RESULT), "-o", str(out)]) == 2
    _one_line_error(capsys, "report", out, "cannot write the report")


def test_output_path_that_is_a_folder_is_refused(tmp_path, capsys, tiny_checkpoint):
    assert cli.main(["export", str(tiny_checkpoint), "-o", str(tmp_path)]) == 2
    _one_line_error(capsys, "export", tmp_path, "is a folder")


# ---------------------------------------------------------------------------------------------
# disk full while writing: a clear line, no partial file


class _HalfThenFull:
    """A file wrapper whose writes store half of the data, then raise ENOSPC."""

    def __init__(self, inner):
        self.inner = inner

    def write(self, data):
        self.inner.write(data[: len(data) // 2])
        self.inner.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fileno(self):
        return self.inner.fileno()

    def close(self):
        self.inner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.inner.close()

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _fdopen_disk_full(monkeypatch):
    real = os.fdopen

    def fdopen(fd, mode="r", *args, **kwargs):
        f = real(fd, mode, *args, **kwargs)
        return _HalfThenFull(f) if "w" in mode else f

    monkeypatch.setattr(os, "fdopen", fdopen)


def _torch_save_disk_full(monkeypatch):
    from imsnn_train import checkpoint

    real = torch.save

    def save(obj, f, *args, **kwargs):
        real(obj, f, *args, **kwargs)
        with open(f, "r+b") as fh:
            fh.truncate(os.path.getsize(f) // 2)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(f))

    monkeypatch.setattr(checkpoint.torch, "save", save)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_train_disk_full_writing_the_checkpoint(tmp_path, capsys, monkeypatch, mnist_test):
    out = tmp_path / "run"
    _torch_save_disk_full(monkeypatch)
    assert cli.main(["train", "--config", str(CONFIG), "--out", str(out), "--no-progress",
                     *TINY]) == 2
    _one_line_error(capsys, "train", out / "checkpoint.pt", "No space left on device")
    assert _names(out) == []  # neither a checkpoint nor its temp file


def test_export_disk_full_keeps_the_previous_model_file(tmp_path, capsys, monkeypatch,
                                                        tiny_checkpoint):
    from imsnn_lava.ir import writer as fmt

    out = tmp_path / "model.h5"
    out.write_bytes(b"previous model file")
    real = fmt._write

    def write_then_full(f, model):
        real(f, model)
        f.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fmt, "_write", write_then_full)
    argv = ["export", str(tiny_checkpoint), "-o", str(out), "--reference-samples", "0"]
    assert cli.main(argv) == 2
    _one_line_error(capsys, "export", out, "No space left on device")
    assert out.read_bytes() == b"previous model file"
    assert _names(tmp_path) == ["model.h5"]


def test_evaluate_disk_full_keeps_the_previous_json(tmp_path, capsys, monkeypatch,
                                                    tiny_checkpoint, mnist_test):
    out = tmp_path / "metrics.json"
    out.write_text('{"previous": true}\n')
    _fdopen_disk_full(monkeypatch)
    argv = ["evaluate", str(tiny_checkpoint), "-n", "5", "--json", str(out), "--no-progress"]
    assert cli.main(argv) == 2
    _one_line_error(capsys, "evaluate", out, "No space left on device")
    assert json.loads(out.read_text()) == {"previous": True}
    assert _names(tmp_path) == ["metrics.json"]


def test_report_disk_full_keeps_the_previous_report(tmp_path, capsys, monkeypatch):
    out = tmp_path / "report"
    assert cli.main(["report", str(RESULT), "-o", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    _fdopen_disk_full(monkeypatch)
    assert cli.main(["report", str(RESULT), "-o", str(out)]) == 2
    _one_line_error(capsys, "report", out, "No space left on device")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# ---------------------------------------------------------------------------------------------
# every writer is atomic: on the source, and under an exception mid-write


def _write_call(node: ast.Call) -> str | None:
    """What a call writes to a file with, or None."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    base = func.value.id if isinstance(func, ast.Attribute) and isinstance(
        func.value, ast.Name) else ""
    kw = {k.arg: k.value for k in node.keywords}

    def mode(i: int) -> str:
        m = node.args[i] if len(node.args) > i else kw.get("mode")
        return m.value if isinstance(m, ast.Constant) and isinstance(m.value, str) else ""

    if name in ("write_text", "write_bytes", "atomic_file"):
        return name
    if name in ("open", "fdopen", "File") and set(mode(1)) & set("wax+"):
        return f"{base + '.' if base else ''}{name}(mode={mode(1)!r})"
    if (base, name) in {("torch", "save"), ("np", "save"), ("np", "savez"),
                        ("np", "savetxt"), ("shutil", "copyfile"), ("shutil", "copy"),
                        ("shutil", "copy2"), ("shutil", "move")} or name == "savefig":
        return f"{base}.{name}"
    return None


# functions that write without os.replace, and why that is fine
NOT_ATOMIC_BY_DESIGN = {
    ("imsnn_lava/analysis/report/plots.py", "_png"): "savefig into an in-memory buffer",
    ("imsnn_lava/data/sources.py", "_copy_uncompressed"):
        "writes into a staging folder; fetch() os.replaces verified files into the cache",
    ("imsnn_lava/data/sources.py", "provide"):
        "sources write into a staging folder; fetch() os.replaces verified files",
    ("imsnn_train/sweep/runner.py", "run"):
        "a sweep step's log, appended while the step runs (a stopped step's log is kept to "
        "read; no result is ever read from it)",
}


def test_every_writer_uses_a_temp_file_and_os_replace():
    found, offenders = [], []
    files = sorted((REPO / "imsnn_train").rglob("*.py")) + sorted(
        (REPO / "imsnn_lava").rglob("*.py"))
    for path in files:
        source = path.read_text()
        rel = str(path.relative_to(REPO))
        for fn in ast.walk(ast.parse(source)):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            writes = [w for n in ast.walk(fn) if isinstance(n, ast.Call)
                      and (w := _write_call(n))]
            if not writes:
                continue
            found.append((rel, fn.name))
            body = ast.get_source_segment(source, fn)
            # atomic: the function renames a temp file into place itself, or writes only into
            # the temp path of imsnn_lava.outputs.atomic_path (which does)
            atomic = ("os.replace(" in body and ("mkstemp(" in body or ".tmp" in body)) or (
                "with atomic_path(" in body or "with atomic_file(" in body)
            if not atomic and (rel, fn.name) not in NOT_ATOMIC_BY_DESIGN:
                offenders.append(f"{rel}:{fn.lineno} {fn.name}: {writes}")
    # the writers this test knows about are still found (the scan itself works)
    for writer in [("imsnn_train/checkpoint.py", "save"), ("imsnn_lava/ir/writer.py", "write"),
                   ("imsnn_lava/outputs.py", "atomic_file"),
                   ("imsnn_lava/data/idx.py", "write_idx")]:
        assert writer in found, writer
    assert offenders == []


def _checkpoint_writer(path: Path, version: int) -> None:
    from imsnn_train import checkpoint, config

    cfg = config.load(CONFIG, TINY)
    checkpoint.save(path, cfg, version, {"w": torch.full((4,), float(version))}, None, [])


def _checkpoint_reader(path: Path):
    from imsnn_train import checkpoint

    return checkpoint.load(path)["epoch"]


def _json_writer(path: Path, version: int) -> None:
    from imsnn_lava.outputs import write_json_atomic

    write_json_atomic(path, {"version": version, "data": list(range(1000))})


def _idx_writer(path: Path, version: int) -> None:
    from imsnn_lava.data.idx import write_idx

    write_idx(path, np.full((5, 28, 28), version, np.uint8))


def _idx_reader(path: Path):
    from imsnn_lava.data.idx import read_idx

    return int(read_idx(path)[0, 0, 0])


def _report_writer(path: Path, version: int) -> None:
    from imsnn_lava.outputs import write_bytes_atomic  # what the report writes every file with

    write_bytes_atomic(path, f"<html>{version}</html>".encode() * 100)


WRITERS = {
    "checkpoint": ("checkpoint.pt", _checkpoint_writer, _checkpoint_reader,
                   _torch_save_disk_full),
    "results JSON": ("metrics.json", _json_writer,
                     lambda p: json.loads(p.read_text())["version"], _fdopen_disk_full),
    "IDX dataset": ("t10k-images-idx3-ubyte", _idx_writer, _idx_reader, _fdopen_disk_full),
    "IDX dataset gz": ("t10k-images-idx3-ubyte.gz", _idx_writer, _idx_reader,
                       _fdopen_disk_full),
    "report file": ("index.html", _report_writer,
                    lambda p: int(p.read_text()[6:].split("<")[0]), _fdopen_disk_full),
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_failure_mid_write_leaves_the_old_file_or_nothing(tmp_path, writer, monkeypatch):
    name, write, read, inject = WRITERS[writer]
    fresh, existing = tmp_path / "fresh", tmp_path / "existing"
    fresh.mkdir()
    existing.mkdir()
    write(existing / name, 1)
    assert read(existing / name) == 1
    with monkeypatch.context() as m:
        inject(m)
        for folder in (fresh, existing):
            with pytest.raises(Exception) as info:  # noqa: PT011 - the writer's own type
                write(folder / name, 2)
            assert "No space left on device" in str(info.value)
    assert _names(fresh) == []  # nothing: no partial file, no temp file
    assert _names(existing) == [name] and read(existing / name) == 1  # the old file
