"""Rebuild per-run results JSONs of a committed reproduction from what git holds, so its report
regenerates without the runs.

    python bench/rebuild_results.py bench/results/reproduce [more folders ...]

The per-run `imsnn simulate -o` files (CONFIG-lava.json) of the committed reproductions were
never committed. What is: report/summary.json (the Lava fixed-point run's accuracy, spikes and
its per-layer energy split by event kind under the loihi profile), metrics/CONFIG.json (the
training config: dataset, layers, T, encoding, synapse, gate, activity_l1; the layer shapes
of the test evaluation) and results.json (agreement, wall time, spikes per layer). From them:

- per layer, Lava's counts per sample are recovered exactly from the energy split (each a mean
  of integers over num_samples, so rounded to a multiple of 1 / num_samples):
  synops = synop_pj / E_synop, spikes = spike_pj / E_spike, and with neuron updates
  N = T x neurons, active = (neuron_pj - E_idle N) / (E_active - E_idle), idle = N - active;
  the script checks the recovered spikes against results.json and summary.json;
- what the run is (dataset, network, T, encoding, synapse, gate, activity_l1) from the config.

Lost, and so absent from the rebuilt files (the regenerated report says so): per-sample arrays,
distributions and standard deviations, ISI histograms and lookup counts, spike rasters. Each
file says it was rebuilt ("rebuilt_from"). Writes FOLDER/runs/CONFIG-lava.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULT_FORMAT, RESULT_VERSION = "imsnn-result", 2
PJ_PER_UJ = 1e6
SPIKE_TOLERANCE = 1e-3  # results.json rounds spikes per layer to 4 decimals
REBUILT = ("rebuilt by bench/rebuild_results.py from report/summary.json (Lava fixed-point "
           "counts recovered from the per-layer energy split of the loihi profile), "
           "metrics/{name}.json (config, layer shapes) and results.json")


def _energy_layers_pj(row: dict) -> list[dict]:
    """The per-layer energy split in pJ: as the committed summaries hold it (energy_layers_pj),
    or as reports since write it (energy_layers_uj), so a rebuilt report rebuilds again."""
    if "energy_layers_pj" in row:
        return row["energy_layers_pj"]
    return [{"name": x["name"], **{k.replace("_uj", "_pj"): v * PJ_PER_UJ for k, v in x.items()
                                   if k.endswith("_uj")}} for x in row["energy_layers_uj"]]


def _mean(value: float, n: int) -> float:
    """A mean over n samples of integer counts is a multiple of 1/n: the recovered value, freed
    of the float error of the energy products (so a rebuild of a rebuilt report is identical)."""
    return round(value * n) / n


def _layers(row: dict, metrics: dict, energies: dict, steps: int) -> list[dict]:
    synapse = metrics["config"]["model"]["synapse"]
    shapes = {x["name"]: x for x in metrics["test"]["layers"]}
    e_syn, e_spk = energies["synop"], energies["spike"]
    e_act, e_idle = energies["neuron_update_active"], energies["neuron_update_idle"]
    out = []
    for e in _energy_layers_pj(row):
        shape = shapes[e["name"]]
        updates = steps * shape["neurons"]
        n = row["num_samples"]
        active = _mean((e["neuron_pj"] - e_idle * updates) / (e_act - e_idle), n)
        spikes = _mean(e["spike_pj"] / e_spk, n)
        out.append({"name": e["name"], "kind": shape["kind"], "synapse": synapse,
                    "neurons": shape["neurons"], "fan_in": shape["fan_in"],
                    "spikes_per_sample": spikes,
                    "spikes_per_neuron": spikes / shape["neurons"],
                    "synops_per_sample": _mean(e["synop_pj"] / e_syn, n),
                    "neuron_updates_per_sample": updates,
                    "active_updates_per_sample": active,
                    "idle_updates_per_sample": updates - active})
    return out


def rebuild(folder: Path) -> list[Path]:
    summary = json.loads((folder / "report" / "summary.json").read_text())
    table = {r["name"]: r for r in json.loads((folder / "results.json").read_text())["runs"]}
    energies = summary["profile"]["energies_pj"]
    (folder / "runs").mkdir(exist_ok=True)
    written = []
    for row in summary["runs"]:
        name = row["name"]
        metrics = json.loads((folder / "metrics" / f"{name}.json").read_text())
        cfg = metrics["config"]
        enc = cfg["encoding"]
        layers = _layers(row, metrics, energies, row["num_steps"])
        spikes = [x["spikes_per_sample"] for x in layers]
        tab = table.get(name, {})
        for got, want in zip(spikes, (tab.get("spikes_per_layer") or {}).values()):
            if abs(got - want) > SPIKE_TOLERANCE:
                raise SystemExit(f"{name}: recovered spikes {got} != results.json {want}")
        if abs(sum(spikes[:-1]) - row["hidden_spikes_per_sample"]) > SPIKE_TOLERANCE:
            raise SystemExit(f"{name}: recovered hidden spikes differ from summary.json")
        result = {
            "format": RESULT_FORMAT, "version": RESULT_VERSION,
            "rebuilt_from": REBUILT.format(name=name),
            "name": name, "model": row.get("model"), "dataset": row["dataset"],
            "split": "test", "synapse": row["synapse"], "precision": row["precision"],
            "fixed_point": row["precision"] == "fixed", "model_precision": row["precision"],
            "backend": "fused",
            "gate": cfg["model"]["isi"]["gate"] if row["synapse"] != "plain" else None,
            "activity_l1": float(cfg["train"]["activity_l1"]),
            "num_samples": row["num_samples"], "num_steps": row["num_steps"],
            "encoding": {"num_steps": enc["num_steps"], "max_rate": enc["max_rate"],
                         "seed": enc["seed"]},
            "network": {"input_neurons": metrics["test"]["layers"][0]["neurons"],
                        "layers": [{k: x[k] for k in ("name", "kind", "synapse", "neurons",
                                                      "fan_in")} for x in layers]},
            "accuracy": row["accuracy"], "reference_accuracy": row["reference_accuracy"],
            "agreement_counts": tab.get("lava_agreement"),
            "agreement_events": tab.get("lava_agreement"),
            "wall_s": tab.get("lava_wall_s"),
            "input": {"neurons": metrics["test"]["layers"][0]["neurons"],
                      "spikes_per_sample": row["input_spikes_per_sample"]},
            "layers": layers,
        }
        result = {k: v for k, v in result.items() if v is not None}
        path = folder / "runs" / f"{name}-lava.json"
        path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    for folder in argv:
        for path in rebuild(Path(folder)):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
