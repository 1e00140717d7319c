"""Wrong file for a command: recognised by content (never the name), refused with one line that
says what the file is and which command takes it; torch's own advice never reaches the user."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from imsnn_lava import filekinds
from imsnn_train import cli

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "deploy" / "configs" / "demo_imsnn.toml"
TINY = ["train.train_subset=20", "train.val_size=10", "train.epochs=1", "train.batch_size=10",
        "model.layers=[{kind='dense', out=10}]"]
RESULT = REPO / "tests" / "fixtures" / "results" / "imsnn_mnist.json"
NIR = REPO / "tests" / "fixtures" / "nir" / "snntorch_784_64_10.nir"
TORCH_HINT = "weights_only"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """One file of every kind, each under a misleading name (content decides, not the name)."""
    import importlib.util

    import torch

    from imsnn_lava import ir
    from imsnn_train import checkpoint, config
    from imsnn_train.network import Network

    d = tmp_path_factory.mktemp("kinds")
    cfg = config.load(CONFIG, [t for t in TINY if not t.startswith("model.layers")])
    out = {"checkpoint": d / "weights.json", "model": d / "model.pt", "nir": d / "graph.h5",
           "result": d / "result.h5", "metrics": d / "metrics.toml", "config": d / "run.json",
           "pickle": d / "evil.pt"}
    checkpoint.save(out["checkpoint"], cfg, 1, Network(cfg.model).state_dict(), None, [])
    spec = importlib.util.spec_from_file_location("fk_helpers", REPO / "tests" / "lava_helpers.py")
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    ir.write(helpers.tiny_model(), out["model"])
    shutil.copy(NIR, out["nir"])
    shutil.copy(RESULT, out["result"])
    out["metrics"].write_text(json.dumps({"name": "x", "config": config.to_dict(cfg),
                                          "history": [], "test": {"accuracy": 0.5}}))
    out["config"].write_text(json.dumps(config.to_dict(cfg)))
    torch.save({"format": "imsnn-checkpoint", "obj": _Obj()}, out["pickle"])
    return out


class _Obj:  # a pickled Python object: weights_only refuses it
    pass


@pytest.mark.parametrize("kind", ["checkpoint", "model", "nir", "result", "metrics", "config"])
def test_sniff_by_content(files, kind):
    assert filekinds.sniff(files[kind]) == kind


def test_sniff_unknown_and_missing(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x00\x01 nothing known")
    assert filekinds.sniff(junk) is None
    assert filekinds.sniff(tmp_path / "absent") is None
    assert filekinds.sniff(tmp_path) is None


def _one_line(capsys, command: str, *needles) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"imsnn {command}: error: "), err[0]
    for needle in needles:
        assert needle in err[0], err[0]
    assert TORCH_HINT not in captured.err and "Traceback" not in captured.err
    return err[0]


# (command line with {file}, the kind of file given, what the line must say)
CASES = [
    (["evaluate", "{file}"], "model", "is an imsnn model file; use imsnn simulate or imsnn verify"),
    (["export", "{file}", "-o", "{tmp}/m.h5"], "model", "use imsnn simulate or imsnn verify"),
    (["evaluate", "{file}"], "result", "is an imsnn results JSON"),
    (["evaluate", "{file}"], "nir", "is a NIR graph; use imsnn import"),
    (["simulate", "{file}"], "checkpoint",
     "is an imsnn training checkpoint (imsnn train); use imsnn evaluate or imsnn export"),
    (["simulate", "{file}"], "nir", "use imsnn import"),
    (["simulate", "{file}"], "result", "use imsnn report"),
    (["verify", "{file}"], "checkpoint", "use imsnn evaluate or imsnn export"),
    (["verify", "{file}"], "config", "is an imsnn training config; use imsnn train --config"),
    (["report", "{file}", "-o", "{tmp}/r"], "model", "use imsnn simulate or imsnn verify"),
    (["report", "{file}", "-o", "{tmp}/r"], "checkpoint", "use imsnn evaluate or imsnn export"),
    (["report", "{file}", "-o", "{tmp}/r"], "metrics", "training metrics of an imsnn train run"),
    (["report", "{file}", "-o", "{tmp}/r"], "config", "use imsnn train --config"),
    (["merge", "{file}", "-o", "{tmp}/m.json"], "metrics", "is the training metrics"),
    (["merge", "{file}", "-o", "{tmp}/m.json"], "model", "is an imsnn model file"),
    (["import", "{file}", "-o", "{tmp}/m.h5"], "model", "use imsnn simulate or imsnn verify"),
    (["import", "{file}", "-o", "{tmp}/m.h5"], "checkpoint", "use imsnn evaluate or imsnn export"),
    (["train", "--config", "{file}", "-o", "{tmp}/run"], "model", "is an imsnn model file"),
    (["train", "--config", "{file}", "-o", "{tmp}/run"], "checkpoint", "training checkpoint"),
    (["train", "--config", "{file}", "-o", "{tmp}/run"], "metrics", "training metrics"),
]


@pytest.mark.parametrize("argv, kind, says", CASES,
                         ids=[f"{c[0][0]}-{c[1]}" for c in CASES])
def test_wrong_file_is_one_line_naming_kind_and_command(files, tmp_path, capsys, argv, kind,
                                                        says):
    path = files[kind]
    args = [a.format(file=path, tmp=tmp_path) for a in argv]
    assert cli.main(args) == 2
    line = _one_line(capsys, argv[0], str(path), says)
    assert line.count(str(path)) == 1
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing written


def test_pickled_object_refused_without_torch_advice(files, capsys):
    assert cli.main(["evaluate", str(files["pickle"])]) == 2
    line = _one_line(capsys, "evaluate", str(files["pickle"]), "never unpickles")
    assert "False" not in line


def test_damaged_checkpoint_has_no_torch_text(tmp_path, capsys, files):
    bad = tmp_path / "cut.pt"
    bad.write_bytes(files["checkpoint"].read_bytes()[:300])
    assert cli.main(["evaluate", str(bad)]) == 2
    _one_line(capsys, "evaluate", str(bad), "not a readable checkpoint")


def test_right_files_still_pass_the_check(files):
    for kind in ("checkpoint", "model", "nir", "result", "config"):
        filekinds.expect(files[kind], kind)  # no error
