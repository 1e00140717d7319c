"""A sweep folder's results: the HTML report of every point and one table with the fronts.

A point is on a front when no other point of the same dataset and architecture is as accurate
at no more cost and strictly better in one of the two (imsnn report's rings); the costs are
hidden spikes, synaptic events, energy of the layers' own events and energy of the network
lowered onto stock processes.
"""

from __future__ import annotations

import json
from pathlib import Path

from imsnn_lava.analysis.report import build_report
from imsnn_lava.analysis.report.plots import non_dominated
from imsnn_lava.outputs import write_json_atomic, write_text_atomic
from imsnn_train.sweep.runner import POINT_FORMAT, points_dir

TABLE_FORMAT = "imsnn-sweep-results"
TABLE_VERSION = 1
REPORT_DIR = "report"
FRONTS = (  # (column, summary field)
    ("spikes", "hidden_spikes_per_sample"),
    ("synops", "synops_per_sample"),
    ("energy", "energy_per_inference_uj"),
    ("lowered", "lowered_energy_per_inference_uj"),
)


def finished_points(out_dir: Path) -> list[tuple[dict, Path]]:
    """(point record, results file) of every point in the folder with a simulation, by name."""
    found = []
    for record_path in sorted(points_dir(out_dir).glob("*.point.json")):
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if record.get("format") != POINT_FORMAT:
            continue
        result = points_dir(out_dir) / f"{record['name']}-lava.json"
        if result.exists():
            found.append((record, result))
    return found


def _fronts(rows: list[dict]) -> None:
    """rows[i]["fronts"]: the costs on whose front the point lies."""
    for row in rows:
        row["fronts"] = []
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row.get("dataset"), row.get("architecture")), []).append(row)
    for group in groups.values():
        for column, key in FRONTS:
            members = [r for r in group if r.get(key) is not None]
            flags = non_dominated([(r[key], r["accuracy"]) for r in members])
            for row, on in zip(members, flags):
                if on:
                    row["fronts"].append(column)


def build(out_dir: Path) -> tuple[list[dict], Path | None]:
    """Report + results.json + results.md for every finished point; (rows, report folder)."""
    found = finished_points(out_dir)
    if not found:
        return [], None
    report_dir = out_dir / REPORT_DIR
    report = build_report([str(p) for _, p in found], report_dir)
    by_name = {r["name"]: r for r in report.summary["runs"]}
    rows = []
    for record, path in found:
        summary = by_name.get(record["name"], {})
        rows.append({
            "point": record["name"], "values": dict(record["values"]),
            "base_config": record["base_config"], "overrides": record["overrides"],
            "result": str(path), **{k: summary.get(k) for k in (
                "dataset", "architecture", "synapse", "activity_l1", "num_samples",
                "accuracy", "hidden_spikes_per_sample", "synops_per_sample",
                "energy_per_inference_uj", "lowered_energy_per_inference_uj",
                "lowered_isi_units_share", "baseline", "reference_baseline",
                "accuracy_minus_baseline", "hidden_spikes_vs_baseline")}})
    _fronts(rows)
    write_json_atomic(out_dir / "results.json", {"format": TABLE_FORMAT,
                                                 "version": TABLE_VERSION, "points": rows})
    write_text_atomic(out_dir / "results.md", markdown(rows))
    return rows, report_dir


def _num(v, fmt: str, unit: str = "") -> str:
    return "n/a" if v is None else f"{format(v, fmt)}{unit}"


def markdown(rows: list[dict]) -> str:
    head = ("| point | values | accuracy | vs baseline | hidden spikes/sample | synops/sample "
            "| energy (uJ) | stock-lowered energy (uJ) | on the front of |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        values = ", ".join(f"{k}={v}" for k, v in r["values"].items()) or "(base)"
        vs = ("baseline" if r.get("baseline") else
              _num(None if r.get("accuracy_minus_baseline") is None
                   else 100 * r["accuracy_minus_baseline"], "+.2f", " pt"))
        lines.append(
            f"| {r['point']} | {values} | {_num(100 * r['accuracy'], '.2f', '%')} | {vs} | "
            f"{_num(r['hidden_spikes_per_sample'], ',.1f')} | "
            f"{_num(r['synops_per_sample'], ',.0f')} | "
            f"{_num(r['energy_per_inference_uj'], '.2f')} | "
            f"{_num(r['lowered_energy_per_inference_uj'], '.2f')} | "
            f"{', '.join(r['fronts']) or '-'} |")
    return ("\n".join(lines) + "\n\nOn the front of: no other point of the same dataset and "
            "architecture is as accurate for no more of that cost (hidden spikes, synaptic "
            "events, energy of the layers' own events, energy of the stock-lowered network; "
            "Loihi profile).\n")
