"""The `imsnn` pipeline end to end through the console script, on real MNIST:
train -> export (fixed point) -> evaluate --fixed-point -> verify -> simulate, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = ['model.layers=[{"kind":"dense","out":32},{"kind":"dense","out":10}]',
        "train.train_subset=600", "train.eval_subset=100", "train.epochs=1",
        "encoding.num_steps=12"]


def imsnn(*args, cwd=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "imsnn_train.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"imsnn {' '.join(map(str, args))} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_test):
    out = tmp_path_factory.mktemp("run")
    imsnn("train", "--config", REPO / "deploy/configs/demo_imsnn.toml", "--out", out / "run",
          "--no-progress", *TINY)
    return out


@pytest.mark.lava
@pytest.mark.timeout(300)
def test_train_export_evaluate_verify_simulate(trained):
    run = trained / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["num_samples"] == 100
    assert [row["name"] for row in metrics["test"]["layers"]] == ["input", "layer1", "layer2"]
    model = trained / "model.h5"
    out = imsnn("export", run / "checkpoint.pt", "-o", model, "--fixed-point",
                "--reference-samples", "4")
    assert "fixed point" in out.stdout and model.is_file()
    ev = trained / "torch-fixed.json"
    imsnn("evaluate", run / "checkpoint.pt", "--fixed-point", "-n", "20", "--json", ev,
          "--no-progress")
    verify = imsnn("verify", model)
    assert "4/4 reference samples reproduced exactly" in verify.stdout
    sim = trained / "lava.json"
    imsnn("simulate", model, "--fixed-point", "-n", "20", "--replicas", "4", "--json", sim,
          "--no-progress")
    lava, torch_fixed = json.loads(sim.read_text()), json.loads(ev.read_text())
    assert lava["agreement_predictions"] == 1.0 and lava["agreement_counts"] == 1.0
    # the quantized PyTorch evaluation predicts exactly what Lava predicts
    assert lava["predictions"] == torch_fixed["predictions"]
    assert lava["accuracy"] == torch_fixed["accuracy"]
    for row_lava, row_torch in zip(lava["layers"], torch_fixed["layers"][1:]):
        assert row_lava["spikes_per_sample"] == pytest.approx(row_torch["spikes_per_sample"])
        # synaptic events counted inside Lava equal those counted from the PyTorch side
        assert row_lava["synops_per_sample"] == pytest.approx(row_torch["synops_per_sample"])
    # the event counts, name, synapse, input and the first sample's raster reach the JSON
    assert lava["name"] == "demo_imsnn" and lava["synapse"] == "isi"
    assert lava["agreement_events"] == 1.0
    assert lava["input"]["neurons"] == 784
    assert lava["input"]["spikes_per_sample"] == pytest.approx(
        torch_fixed["layers"][0]["spikes_per_sample"])
    assert [r["name"] for r in lava["raster"]["layers"]] == ["input", "layer1", "layer2"]
    for row in lava["layers"]:
        assert row["fan_in"] > 0 and len(row["isi_histogram"]) == 16
        assert row["neuron_updates_per_sample"] == 12 * row["neurons"]
        assert row["active_updates_per_sample"] + row["idle_updates_per_sample"] == \
            pytest.approx(row["neuron_updates_per_sample"])
    # what the run is, as the report pairs runs: the same fields from evaluate and simulate
    for result in (lava, torch_fixed):
        assert result["name"] == "demo_imsnn" and result["synapse"] == "isi"
        assert result["activity_l1"] == 0.0 and result["gate"] == "selective"
        assert result["encoding"] == {"num_steps": 12, "max_rate": 0.5, "seed": 0}
        assert [x["neurons"] for x in result["network"]["layers"]] == [row["neurons"]
                                                                      for row in lava["layers"]]
    assert torch_fixed["precision"] == "fixed" and torch_fixed["num_steps"] == 12
    assert lava["raster"]["label"] == lava["labels"][0]
    assert lava["raster"]["prediction"] == lava["predictions"][0]
    # and `imsnn report` costs it with energy and draws its figures
    report = trained / "report"
    imsnn("report", sim, "-o", report)
    summary = json.loads((report / "summary.json").read_text())
    assert summary["runs"][0]["energy_per_inference_nj"] > 0
    assert summary["runs"][0]["energy_per_inference_uj"] == pytest.approx(
        summary["runs"][0]["energy_per_inference_nj"] / 1e3)
    for png in ("energy.png", "isi_histograms.png", "raster_00_demo_imsnn.png"):
        assert (report / png).stat().st_size > 1000, png


def test_cli_errors_are_one_clear_line(tmp_path, trained):
    proc = imsnn("export", tmp_path / "nope.pt", "-o", tmp_path / "m.h5", check=False)
    assert proc.returncode == 2 and "nope.pt" in proc.stderr and "Traceback" not in proc.stderr
    proc = imsnn("train", "--config", REPO / "deploy/configs/demo_imsnn.toml", "--out",
                 tmp_path / "r", "model.isi.gate=sideways", check=False)
    assert proc.returncode == 2 and "model.isi.gate" in proc.stderr
    assert not (tmp_path / "r").exists()
    float_model = tmp_path / "float.h5"
    imsnn("export", trained / "run" / "checkpoint.pt", "-o", float_model,
          "--reference-samples", "0")
    proc = imsnn("simulate", float_model, "--fixed-point", "-n", "2", check=False)
    assert proc.returncode == 2 and "--fixed-point" in proc.stderr
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    proc = imsnn("verify", bad, check=False)
    assert proc.returncode == 2 and "bad.h5" in proc.stderr and "Traceback" not in proc.stderr
