"""Collect a reproduce run folder into one results table (Markdown + JSON).

    python deploy/results_table.py OUT CONFIG [CONFIG ...]

Reads, per config: OUT/CONFIG/metrics.json (training, PyTorch float test accuracy),
OUT/CONFIG-torch-fixed.json (quantized PyTorch), OUT/CONFIG-lava.json (Lava fixed point, full
test set), OUT/CONFIG.train_seconds (else the epochs' timings in metrics.json), and
OUT/report/summary.json (Loihi energy). Writes
OUT/results.md and OUT/results.json. "Lava = PyTorch fixed" is the share of samples whose
per-layer spike counts and every event count equal the integer reference's (the quantized
PyTorch model). Each run is compared with the baseline its training config makes it: the run
with synapse "plain" and activity_l1 = 0 whose config has the same dataset, layers and encoding
(never the config's name).
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def collect(out: Path, configs: list[str]) -> list[dict]:
    summary = _load(out / "report" / "summary.json") or {"runs": []}
    energy = {Path(r["file"]).name: r for r in summary["runs"]}
    rows = []
    for name in configs:
        metrics = _load(out / name / "metrics.json")
        fixed = _load(out / f"{name}-torch-fixed.json")
        lava = _load(out / f"{name}-lava.json")
        seconds = out / f"{name}.train_seconds"
        row = {"name": name, "complete": bool(metrics and fixed and lava)}
        if metrics:
            cfg = metrics["config"]
            row.update(dataset=cfg["train"]["dataset"], synapse=cfg["model"]["synapse"],
                       gate=cfg["model"]["isi"]["gate"], epochs=cfg["train"]["epochs"],
                       activity_l1=cfg["train"]["activity_l1"],
                       torch_float_accuracy=metrics["test"]["accuracy"])
        if fixed:
            row["torch_fixed_accuracy"] = fixed["accuracy"]
        if lava:
            ps = lava["per_sample"]
            exact = [a and e for a, e in zip(ps["agree"], ps["same_events"])]
            row.update(lava_fixed_accuracy=lava["accuracy"], num_samples=lava["num_samples"],
                       lava_agreement=sum(exact) / max(len(exact), 1),
                       lava_wall_s=lava["wall_s"],
                       spikes_per_layer={r["name"]: r["spikes_per_sample"]
                                         for r in lava["layers"]},
                       hidden_spikes=sum(r["spikes_per_sample"] for r in lava["layers"][:-1]),
                       synops=sum(r.get("synops_per_sample", 0.0) for r in lava["layers"]))
            e = energy.get(f"{name}-lava.json")
            if e:
                row["loihi_energy_nj"] = e["energy_per_inference_nj"]
        if metrics:
            cfg = metrics["config"]
            row["_setup"] = json.dumps([cfg["train"]["dataset"], cfg["model"].get("layers"),
                                        cfg.get("encoding")], sort_keys=True)
            row["_is_baseline"] = (cfg["model"]["synapse"] == "plain"
                                   and not cfg["train"]["activity_l1"])
        if seconds.is_file():
            row["train_seconds"] = int(seconds.read_text().strip())
        elif metrics:  # trained outside this script: the epochs' own timings
            row["train_seconds"] = int(sum(h.get("seconds", 0) for h in metrics["history"]))
        rows.append(row)
    for r in rows:
        base = next((b for b in rows if b.get("_is_baseline") and "_setup" in r
                     and b.get("_setup") == r["_setup"]), None)
        if base and base is not r and "hidden_spikes" in r and "hidden_spikes" in base:
            r["baseline"] = base["name"]
            r["hidden_spike_reduction"] = 1 - r["hidden_spikes"] / base["hidden_spikes"]
            if "loihi_energy_nj" in r and "loihi_energy_nj" in base:
                r["energy_ratio"] = r["loihi_energy_nj"] / base["loihi_energy_nj"]
    for r in rows:
        r.pop("_setup", None)
        r.pop("_is_baseline", None)
    return rows


COLUMNS = ("run", "epochs", "PyTorch float", "PyTorch fixed", "Lava fixed",
           "Lava = PyTorch fixed", "spikes/sample per layer (Lava)", "hidden spikes vs baseline",
           "synops/sample", "Loihi energy/inference", "train time", "Lava, test set")


def _cells(r: dict) -> list[str]:
    layers = r.get("spikes_per_layer")
    red = r.get("hidden_spike_reduction")
    if r.get("synapse") == "plain" and "baseline" not in r:
        red_txt = "baseline"
    else:
        red_txt = "n/a" if red is None else f"{-100 * red:+.1f}%"
    agree, synops = r.get("lava_agreement"), r.get("synops")
    energy, secs, lava_s = r.get("loihi_energy_nj"), r.get("train_seconds"), r.get("lava_wall_s")
    return [
        r["name"], str(r.get("epochs", "n/a")), _pct(r.get("torch_float_accuracy")),
        _pct(r.get("torch_fixed_accuracy")), _pct(r.get("lava_fixed_accuracy")),
        "n/a" if agree is None else f"{100 * agree:.2f}% of samples",
        " / ".join(f"{v:.1f}" for v in layers.values()) if layers else "n/a",
        red_txt,
        "n/a" if synops is None else f"{synops:,.0f}",
        "n/a" if energy is None else f"{energy / 1000:.2f} uJ",
        "n/a" if secs is None else f"{secs / 60:.0f} min",
        "n/a" if lava_s is None else f"{lava_s:.0f} s",
    ]


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    rows = collect(out, argv[1:])
    md = markdown(rows)
    (out / "results.md").write_text(md)
    (out / "results.json").write_text(json.dumps(
        {"machine": {"platform": platform.platform(), "python": platform.python_version()},
         "runs": rows}, indent=2) + "\n")
    print(md)
    print(f"wrote {out / 'results.md'} and {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
