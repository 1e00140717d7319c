"""The runs of a report: loading their results, pairing each with its baseline, costing them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from imsnn_lava.analysis import energy as en
from imsnn_lava.errors import ImsnnError

NA = "n/a"


@dataclass
class Run:
    path: str
    name: str
    data: dict
    input: dict | None
    layers: list[dict]
    is_baseline: bool
    index: int = 0
    energy: dict | None = None
    energy_error: str | None = None
    cmos_snn: dict | None = None
    ann: dict | None = None
    ann_error: str | None = None
    reference: Run | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def dataset(self) -> str | None:
        return self.data.get("dataset")

    @property
    def accuracy(self) -> float:
        return float(self.data["accuracy"])

    @property
    def precision(self) -> str:
        if self.data.get("precision"):
            return self.data["precision"]
        if "fixed_point" in self.data:
            return "fixed" if self.data["fixed_point"] else "float"
        return NA

    @property
    def hidden_spikes(self) -> float:
        return float(sum(layer["spikes_per_sample"] for layer in self.layers[:-1]))

    @property
    def total_spikes(self) -> float:
        return float(sum(layer["spikes_per_sample"] for layer in self.layers))

    @property
    def input_spikes(self) -> float | None:
        return None if self.input is None else self.input.get("spikes_per_sample")

    @property
    def synops(self) -> float | None:
        values = [layer.get("synops_per_sample") for layer in self.layers]
        return None if any(v is None for v in values) else float(sum(values))

    @property
    def energy_nj(self) -> float | None:
        return None if self.energy is None else self.energy["total_pj"] / 1000.0

    def slug(self) -> str:
        s = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name).strip("._-")[:40]
        return f"{self.index:02d}_{s or 'run'}"


def _run_name(data: dict, path: str) -> str:
    if data.get("name"):
        return data["name"]
    if data.get("model"):
        stem = Path(data["model"]).stem
        if stem:
            return stem
    return Path(path).stem


def _make_runs(paths: list[str], datas: list[dict]) -> list[Run]:
    runs, seen = [], {}
    for k, (path, data) in enumerate(zip(paths, datas)):
        name = _run_name(data, path)
        if name in seen:  # same stem, e.g. runs/a/imsnn.h5 and runs/b/imsnn.h5
            parent = Path(data.get("model") or path).parent.name
            candidate = f"{parent}/{name}" if parent else name
            name = candidate if candidate not in seen else f"{name} ({k + 1})"
        seen[name] = True
        inp, layers = en.split_input(data["layers"])
        if data.get("input") is not None:
            inp = data["input"]
        if not layers:
            raise ImsnnError(f"{path}: field 'layers' holds only the input layer")
        baseline = data.get("synapse") == "plain" or "baseline" in name.lower()
        runs.append(Run(path=path, name=name, data=data, input=inp, layers=layers,
                        is_baseline=baseline, index=k))
    for run in runs:  # the first baseline of the same dataset
        run.reference = next((r for r in runs if r.is_baseline and r.dataset == run.dataset),
                             None)
    return runs


def _cost(runs: list[Run], profile: en.Profile, ann_profile: en.Profile) -> None:
    for run in runs:
        steps = run.data.get("num_steps")
        try:
            run.energy = en.energy_per_inference(run.layers, profile, num_steps=steps)
        except ImsnnError as exc:
            run.energy_error = str(exc)
            run.notes.append(f"{profile.name} energy n/a: {exc}")
        else:
            run.notes += [f"{profile.name}: {n}" for n in run.energy["notes"]]
        try:
            run.cmos_snn = en.energy_per_inference(run.layers, ann_profile, num_steps=steps)
        except ImsnnError:
            run.cmos_snn = None
        inputs = None if run.input is None else run.input.get("neurons")
        try:
            run.ann = en.ann_energy(run.layers, ann_profile, input_neurons=inputs)
        except ImsnnError as exc:
            run.ann_error = str(exc)
            run.notes.append(f"equivalent ANN n/a: {exc}")
        else:
            run.notes += [f"equivalent ANN: {n}" for n in run.ann["notes"]]


def _vs_reference(run: Run, value) -> float | None:
    if run.reference is None or run.reference is run:
        return None
    return en.ratio(value(run), value(run.reference))


def _summary_row(run: Run, profile: en.Profile) -> dict:
    ref = run.reference
    return {
        "name": run.name, "file": run.path, "model": run.data.get("model"),
        "dataset": run.dataset, "synapse": run.data.get("synapse"), "precision": run.precision,
        "baseline": run.is_baseline,
        "reference_baseline": None if ref is None else ref.name,
        "num_samples": run.data.get("num_samples"), "num_steps": run.data.get("num_steps"),
        "accuracy": run.accuracy, "reference_accuracy": run.data.get("reference_accuracy"),
        "input_spikes_per_sample": run.input_spikes,
        "hidden_spikes_per_sample": run.hidden_spikes,
        "total_spikes_per_sample": run.total_spikes,
        "synops_per_sample": run.synops,
        "energy_profile": profile.name,
        "energy_per_inference_nj": run.energy_nj,
        "energy_layers_pj": None if run.energy is None else run.energy["layers"],
        "snn_on_cmos45_nj": None if run.cmos_snn is None else run.cmos_snn["total_pj"] / 1e3,
        "ann_macs": None if run.ann is None else run.ann["macs"],
        "ann_on_cmos45_nj": None if run.ann is None else run.ann["total_pj"] / 1e3,
        "accuracy_minus_baseline": None if ref is None or ref is run
        else run.accuracy - ref.accuracy,
        "hidden_spikes_vs_baseline": _vs_reference(run, lambda r: r.hidden_spikes),
        "total_spikes_vs_baseline": _vs_reference(run, lambda r: r.total_spikes),
        "synops_vs_baseline": _vs_reference(run, lambda r: r.synops),
        "energy_vs_baseline": _vs_reference(run, lambda r: r.energy_nj),
        "notes": list(dict.fromkeys(run.notes)),
    }


