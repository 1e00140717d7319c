"""`imsnn report` pairs each run with its baseline by what the run is (dataset, layer shapes, T,
encoding; plain synapse, no activity regulariser), from the results' fields, never names. The
fixtures' names are misleading on purpose: mnist_dense_baseline_strong is an L1 run,
reference_run the plain baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imsnn_lava.analysis.report import build_report
from imsnn_lava.errors import ImsnnError
from imsnn_train import cli

PAIRING = Path(__file__).parent / "fixtures" / "results" / "pairing"
FILES = sorted(PAIRING.glob("*.json"))


def _rows(out) -> dict[str, dict]:
    return {r["name"]: r for r in out.summary["runs"]}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return build_report(FILES, tmp_path_factory.mktemp("pairing"))


def test_baseline_is_the_plain_run_without_l1_of_the_same_setup(report):
    rows = _rows(report)
    assert rows["mnist_dense_imsnn"]["reference_baseline"] == "reference_run"
    # the L1 run says "baseline" in its name but is regularised: compared, not a baseline
    strong = rows["mnist_dense_baseline_strong"]
    assert strong["reference_baseline"] == "reference_run" and not strong["baseline"]
    assert strong["activity_l1"] == 1e-3
    assert rows["reference_run"]["baseline"] and rows["reference_run"]["reference_baseline"] \
        == "reference_run"
    # conv runs pair with the conv baseline, never the dense one, and vice versa
    assert rows["conv_imsnn"]["reference_baseline"] == "conv_plain"
    assert rows["conv_imsnn"]["hidden_spikes_vs_baseline"] == pytest.approx(570 / 5300)
    assert rows["mnist_dense_imsnn"]["hidden_spikes_vs_baseline"] == pytest.approx(60 / 400)


def test_other_t_or_encoding_has_no_baseline(report):
    rows = _rows(report)
    for name in ("conv_imsnn_t20", "fashion_imsnn_rate"):
        row = rows[name]
        assert row["reference_baseline"] is None and row["energy_vs_baseline"] is None
    assert "n/a" in report.table.splitlines()[2 + sorted(rows).index("conv_imsnn_t20")]


def test_baseline_without_recorded_l1_is_used_with_a_note(report):
    row = _rows(report)["fashion_imsnn"]
    assert row["reference_baseline"] == "fashion_old_plain"
    assert any("does not record activity_l1" in n for n in row["notes"])


def test_chosen_baseline_overrides_for_its_setup_only(tmp_path):
    out = build_report(FILES, tmp_path, baselines=["mnist_dense_baseline_strong"])
    rows = _rows(out)
    assert rows["mnist_dense_imsnn"]["reference_baseline"] == "mnist_dense_baseline_strong"
    assert rows["reference_run"]["reference_baseline"] == "mnist_dense_baseline_strong"
    assert rows["conv_imsnn"]["reference_baseline"] == "conv_plain"  # other setup: automatic
    with pytest.raises(ImsnnError, match="did you mean 'reference_run'"):
        build_report(FILES, tmp_path / "x", baselines=["reference_rn"])


def test_cli_baseline_option_and_one_energy_unit(tmp_path, capsys):
    rc = cli.main(["report", *map(str, FILES), "-o", str(tmp_path / "r"),
                   "--baseline", str(PAIRING / "conv_imsnn.json")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "energy/inference (uJ)" in out and "nJ" not in out
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    rows = {r["name"]: r for r in summary["runs"]}
    assert rows["conv_plain"]["reference_baseline"] == "conv_imsnn"
    page = (tmp_path / "r" / "index.html").read_text()
    assert "(nJ)" not in page and "(uJ)" in page
    assert "Where the energy goes" in page and "of the energy per inference" in page


def test_fronts_one_panel_per_dataset_and_architecture(report):
    from imsnn_lava.analysis.report.plots import non_dominated, setup_groups
    from imsnn_lava.analysis.report.runs import _make_runs
    from imsnn_lava.analysis.runresult import load_result

    runs = _make_runs([str(p) for p in FILES], [load_result(p) for p in FILES])
    groups = [sorted(r.name for r in g) for g in setup_groups(runs)]
    assert sorted(groups) == sorted([
        ["conv_imsnn", "conv_plain"], ["conv_imsnn_t20"],
        ["fashion_imsnn", "fashion_old_plain"], ["fashion_imsnn_rate"],
        ["mnist_dense_baseline_strong", "mnist_dense_imsnn", "reference_run"]])
    # (cost, accuracy): the middle point is beaten on both by the first
    assert non_dominated([(1.0, 0.9), (2.0, 0.8), (3.0, 0.95)]) == [True, False, True]
    assert {"accuracy_vs_energy.png", "accuracy_vs_spikes.png", "energy.png"} <= set(
        report.summary["images"])


def test_layers_are_matched_by_role(report):
    rows = _rows(report)
    roles = [x["role"] for x in rows["conv_imsnn"]["energy_layers_uj"]]
    assert roles == ["hidden 1", "hidden 2", "output"]
    assert [x["role"] for x in rows["reference_run"]["energy_layers_uj"]] == [
        "hidden 1", "output"]
    share = rows["reference_run"]["input_synops_energy_share"]
    layer1 = rows["reference_run"]["energy_layers_uj"][0]
    assert share == pytest.approx(layer1["synop_uj"] / rows["reference_run"][
        "energy_per_inference_uj"])
