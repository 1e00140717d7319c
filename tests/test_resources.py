"""`imsnn resources`: the per-part table of a model file on a target chip, its totals equal
the lowered graph's, and a hard limit exceeded is one line naming the part and the limit."""

from __future__ import annotations

import json

import lava_helpers as H  # tests/lava_helpers.py; conftest.py puts tests/ on sys.path
import pytest

from imsnn_lava import ir
from imsnn_lava.analysis import resources as res
from imsnn_lava.backends.stock.lower import lower
from imsnn_lava.backends.stock.summary import resource_rows
from imsnn_train import cli


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "m.h5"
    ir.write(H.quantize(H.mnist_model(seed=1, num_steps=10)), path)
    return path


def _target(tmp_path, **changes):
    data = json.loads((res.pkg.files(res.BUILTIN_PACKAGE) / "loihi2.json").read_text())
    for key, value in changes.items():
        data["limits"][key]["value"] = value
    path = tmp_path / "target.json"
    path.write_text(json.dumps(data))
    return path


def test_stock_rows_add_up_to_the_lowered_graph(model_file):
    model = ir.read(model_file)
    graph = lower(model, replicas=1)
    rows = resource_rows(graph)
    assert sum(r["neurons"] for r in rows) == graph.num_neurons  # the host input excluded
    assert sum(r["synapses"] for r in rows) == graph.num_synapses
    assert {r["role"] for r in rows} == {"layer", "isi-unit"}
    fused = res.fused_rows(model)
    assert [r["neurons"] for r in fused] == [layer.n_out for layer in model.layers]


def test_cli_prints_the_table_and_writes_json(model_file, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert cli.main(["resources", str(model_file), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "total" in text and "stock Lava processes used" in text
    data = json.loads(out.read_text())
    assert data["backend"] == "stock" and data["cores"] >= len(data["rows"])


@pytest.mark.parametrize("limit, value, message", [
    ("weight_bits", 4, "weight bits 8 exceed loihi2's 4"),
    ("cores_per_chip", 1, "cores, more than loihi2's 1 per chip"),
])
def test_a_hard_limit_exceeded_is_one_line_and_nothing_is_written(model_file, tmp_path,
                                                                   capsys, limit, value,
                                                                   message):
    out = tmp_path / "r.json"
    rc = cli.main(["resources", str(model_file), "--target", str(_target(tmp_path, **{
        limit: value})), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and str(model_file) in err
    assert not out.exists()


def test_bad_target_and_float_file_are_clear_errors(model_file, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"limits": {"neurons_per_core": {"value": 5}}}))
    assert cli.main(["resources", str(model_file), "--target", str(bad)]) == 2
    assert "field 'limits.neurons_per_core'" in capsys.readouterr().err
    assert cli.main(["resources", str(model_file), "--target", "nochip"]) == 2
    assert "no such built-in target" in capsys.readouterr().err
    flt = tmp_path / "f.h5"
    ir.write(H.mnist_model(seed=1, num_steps=10), flt)
    assert cli.main(["resources", str(flt)]) == 2
    assert "float model file" in capsys.readouterr().err
