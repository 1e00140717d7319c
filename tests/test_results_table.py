"""deploy/results_table.py: how a reproduce run folder becomes the README's table.

The inputs are written in the shapes `imsnn train`, `imsnn evaluate --json`, `imsnn simulate
--json` and `imsnn report` write (the fields the table reads)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("results_table",
                                                  REPO / "deploy" / "results_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(out: Path, name: str, synapse: str, hidden: list[float], agree, same_events,
         energy_nj: float, epoch_seconds=(60.0, 60.0)):
    (out / name).mkdir()
    cfg = {"train": {"dataset": "mnist", "epochs": len(epoch_seconds), "activity_l1": 0.0},
           "model": {"synapse": synapse, "isi": {"gate": "selective"}}}
    (out / name / "metrics.json").write_text(json.dumps({
        "config": cfg, "test": {"accuracy": 0.97},
        "history": [{"epoch": i + 1, "seconds": s} for i, s in enumerate(epoch_seconds)]}))
    (out / f"{name}-torch-fixed.json").write_text(json.dumps({"accuracy": 0.96}))
    layers = [{"name": f"layer{i + 1}", "spikes_per_sample": h, "synops_per_sample": 100.0}
              for i, h in enumerate(hidden)]
    layers.append({"name": "out", "spikes_per_sample": 10.0, "synops_per_sample": 5.0})
    (out / f"{name}-lava.json").write_text(json.dumps({
        "accuracy": 0.96, "num_samples": len(agree), "wall_s": 12.4, "layers": layers,
        "per_sample": {"agree": agree, "same_events": same_events}}))
    return {"file": str(out / f"{name}-lava.json"), "energy_per_inference_nj": energy_nj}


def test_collect_compares_with_the_baseline_of_the_same_dataset_and_architecture(tmp_path,
                                                                                   table):
    runs = [
        _run(tmp_path, "mnist_dense_baseline", "plain", [800.0, 200.0], [True] * 4, [True] * 4,
             2000.0),
        # one sample differs in counts, another only in events: 2 of 4 are exact
        _run(tmp_path, "mnist_dense_imsnn", "isi", [100.0, 50.0], [True, False, True, True],
             [True, True, False, True], 1500.0),
    ]
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "summary.json").write_text(json.dumps({"runs": runs}))
    (tmp_path / "mnist_dense_imsnn.train_seconds").write_text("600\n")
    rows = {r["name"]: r for r in table.collect(tmp_path, ["mnist_dense_baseline",
                                                           "mnist_dense_imsnn",
                                                           "mnist_conv_imsnn"])}
    base, isi, missing = (rows["mnist_dense_baseline"], rows["mnist_dense_imsnn"],
                          rows["mnist_conv_imsnn"])
    assert base["complete"] and isi["complete"] and not missing["complete"]
    assert isi["baseline"] == "mnist_dense_baseline" and "baseline" not in base
    assert isi["hidden_spike_reduction"] == pytest.approx(1 - 150.0 / 1000.0)
    assert isi["energy_ratio"] == pytest.approx(0.75)
    assert base["lava_agreement"] == 1.0 and isi["lava_agreement"] == 0.5
    assert isi["synops"] == pytest.approx(205.0)
    assert isi["train_seconds"] == 600 and base["train_seconds"] == 120  # file, else epochs
    md = table.markdown(list(rows.values())).splitlines()
    assert len(md) == 5 and all(line.count("|") == len(table.COLUMNS) + 1 for line in md)
    assert "| mnist_dense_imsnn | 2 | 97.00% | 96.00% | 96.00% | 50.00% of samples | " \
           "100.0 / 50.0 / 10.0 | -85.0% | 205 | 1.50 uJ | 10 min | 12 s |" in md
    assert "| baseline |" in md[2] and md[4].endswith("| n/a | n/a |")


COMMITTED = sorted((REPO / "bench" / "results").glob("reproduce*/runs"))


@pytest.mark.parametrize("runs", COMMITTED, ids=[p.parent.name for p in COMMITTED])
def test_rebuilt_committed_results_reproduce_the_committed_table(runs):
    """bench/rebuild_results.py recovered each run's Lava counts from the committed summary:
    costed again, they give the committed results.json's energy and spikes (which were
    computed from the original, uncommitted simulate results); the report pairs each run with
    the baseline its config makes it (plain, no L1, same dataset and architecture)."""
    from imsnn_lava.analysis import energy as en
    from imsnn_lava.analysis.report.runs import _make_runs
    from imsnn_lava.analysis.runresult import load_result

    table = {r["name"]: r for r in json.loads((runs.parent / "results.json").read_text())["runs"]}
    paths = sorted(runs.glob("*-lava.json"))
    assert {p.name.removesuffix("-lava.json") for p in paths} == set(table)
    prof = en.load_profile("loihi")
    datas = [load_result(p) for p in paths]
    for data in datas:
        want = table[data["name"]]
        got = en.energy_per_inference(data["layers"], prof)["total_pj"] / 1e3
        assert got == pytest.approx(want["loihi_energy_nj"], rel=1e-9)
        spikes = [x["spikes_per_sample"] for x in data["layers"]]
        assert spikes == pytest.approx(list(want["spikes_per_layer"].values()), abs=1e-3)
        assert data["activity_l1"] == want["activity_l1"] and data["accuracy"] == \
            want["lava_fixed_accuracy"]
    for run in _make_runs([str(p) for p in paths], datas):
        ref = run.reference
        assert ref is not None and ref.synapse == "plain" and ref.activity_l1 == 0.0
        assert ref.dataset == run.dataset and ref.setup() == run.setup()
        if run.synapse == "plain" and run.activity_l1 == 0.0:
            assert ref is run
