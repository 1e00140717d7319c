"""The runs of a report: loading their results, pairing each with its baseline by what the run
is (never by its name), costing them.

Pairing. Two runs are comparable when the results say they have the same setup: the same
dataset, the same layers (neurons per layer, required; kind and fan-in where both record them),
the same T (num_steps, required), and the same input (input neurons, encoding max_rate and
seed, where both record them). A run's baseline is the comparable run with synapse "plain" and
no activity regulariser (activity_l1 = 0): results written by this imsnn record activity_l1
(from the model's config); for older results without the field the regulariser is unknown and
such a run is taken as a baseline only if no comparable run records activity_l1 = 0 (a note
says so). `--baseline RUN` overrides the choice for RUN's group. No comparable baseline: n/a.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from imsnn_lava.analysis import energy as en
from imsnn_lava.errors import ImsnnError

NA = "n/a"
PJ_PER_UJ = 1e6
PLAIN = "plain"
FAMILY_NAMES = {"plain": "plain synapse (baseline, L1 strengths)",
                "isi": "ISI synapse (IMSNN and its gates)"}


@dataclass
class Run:
    path: str
    name: str
    data: dict
    input: dict | None
    layers: list[dict]
    index: int = 0
    energy: dict | None = None
    energy_error: str | None = None
    cmos_snn: dict | None = None
    ann: dict | None = None
    ann_error: str | None = None
    lowered: dict | None = None  # the profile's energy of the stock-lowered network
    lowered_units_share: float | None = None  # its ISI units' share
    reference: Run | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def dataset(self) -> str | None:
        return self.data.get("dataset")

    @property
    def synapse(self) -> str | None:
        return self.data.get("synapse")

    @property
    def activity_l1(self) -> float | None:
        """The L1 activity regulariser's strength, None where the result does not record it."""
        value = self.data.get("activity_l1")
        return None if value is None else float(value)

    @property
    def is_baseline(self) -> bool:
        """A plain-synapse run without (known) activity regulariser."""
        return self.synapse == PLAIN and not self.activity_l1

    @property
    def family(self) -> str:
        return FAMILY_NAMES.get(self.synapse or "", self.synapse or NA)

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
    def num_steps(self) -> int | None:
        steps = self.data.get("num_steps") or (self.data.get("encoding") or {}).get("num_steps")
        return None if steps is None else int(steps)

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
    def energy_uj(self) -> float | None:
        return None if self.energy is None else self.energy["total_pj"] / PJ_PER_UJ

    @property
    def lowered_energy_uj(self) -> float | None:
        """Energy per inference of the stock-lowered network (None where not counted)."""
        return None if self.lowered is None else self.lowered["total_pj"] / PJ_PER_UJ

    @property
    def input_energy_share(self) -> float | None:
        """Share of the energy per inference spent on the synaptic events of the input spikes
        (the first layer's synops: the encoder's spikes x fan-out, equal for every run with the
        same data, encoding and first-layer shape)."""
        if self.energy is None or not self.energy["total_pj"]:
            return None
        return self.energy["layers"][0]["synop_pj"] / self.energy["total_pj"]

    def roles(self) -> list[str]:
        """Each synapse layer's role: hidden 1, hidden 2, ..., output (layers are compared by
        role across runs, not by name or index)."""
        return role_names(len(self.layers))

    def setup(self) -> dict:
        """What the run is, as the pairing compares it (None: not recorded)."""
        network = self.data.get("network") or {}
        infos = network.get("layers") or self.layers
        enc = self.data.get("encoding") or {}
        return {"dataset": self.dataset,
                "neurons": tuple(x.get("neurons") for x in infos),
                "kinds": tuple(x.get("kind") for x in infos),
                "fan_in": tuple(x.get("fan_in") for x in infos),
                "num_steps": self.num_steps,
                "input_neurons": network.get("input_neurons")
                or (self.input or {}).get("neurons"),
                "max_rate": enc.get("max_rate"), "seed": enc.get("seed")}

    def architecture(self) -> str:
        """The setup in words, e.g. "784-500-10 dense, T=25"."""
        s = self.setup()
        sizes = [s["input_neurons"], *s["neurons"]]
        kinds = sorted({k for k in s["kinds"] if k})
        text = "-".join(NA if n is None else str(n) for n in sizes)
        if kinds:
            text += " " + "/".join(kinds)
        return text + (f", T={s['num_steps']}" if s["num_steps"] else "")

    def slug(self) -> str:
        s = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name).strip("._-")[:40]
        return f"{self.index:02d}_{s or 'run'}"


def role_names(n_layers: int) -> list[str]:
    return [f"hidden {k + 1}" for k in range(n_layers - 1)] + ["output"]


REQUIRED_SETUP = ("dataset", "neurons", "num_steps")


def same_setup(a: Run, b: Run) -> bool:
    """Comparable runs: required fields recorded and equal in both; the others equal where both
    record them."""
    sa, sb = a.setup(), b.setup()
    for key in REQUIRED_SETUP:
        if sa[key] is None or sb[key] is None or sa[key] != sb[key] or None in sa["neurons"]:
            return False
    for key in ("kinds", "fan_in"):
        if any(x is not None and y is not None and x != y for x, y in zip(sa[key], sb[key])):
            return False
    for key in ("input_neurons", "max_rate", "seed"):
        if sa[key] is not None and sb[key] is not None and sa[key] != sb[key]:
            return False
    return True


def _run_name(data: dict, path: str) -> str:
    if data.get("name"):
        return data["name"]
    if data.get("model"):
        stem = Path(data["model"]).stem
        if stem:
            return stem
    return Path(path).stem


def _make_runs(paths: list[str], datas: list[dict],
               baselines: list[str] | tuple[str, ...] = ()) -> list[Run]:
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
        runs.append(Run(path=path, name=name, data=data, input=inp, layers=layers, index=k))
    pair_baselines(runs, [_find(runs, b) for b in baselines])
    return runs


def _find(runs: list[Run], wanted: str) -> Run:
    for run in runs:
        if wanted in (run.name, run.path) or Path(wanted).name == Path(run.path).name:
            return run
    names = [r.name for r in runs]
    close = difflib.get_close_matches(wanted, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ImsnnError(f"--baseline {wanted}: no such run among the results{hint} (runs: "
                     f"{', '.join(names)})")


def pair_baselines(runs: list[Run], chosen: list[Run]) -> None:
    """Set each run's reference: a chosen baseline of its setup, else the first comparable
    plain run that records activity_l1 = 0, else one that does not record it; else None."""
    for run in runs:
        forced = [b for b in chosen if same_setup(b, run)]
        if forced:
            run.reference = forced[0]
            if forced[0] is not run:
                run.notes.append(f"compared with {forced[0].name} (chosen with --baseline)")
            continue
        pool = [r for r in runs if r.is_baseline and same_setup(r, run)]
        known = [r for r in pool if r.activity_l1 == 0]
        pool = known or pool
        run.reference = pool[0] if pool else None
        if not pool:
            continue
        if pool[0].activity_l1 is None:
            run.notes.append(f"baseline {pool[0].name}: its result does not record "
                             "activity_l1 (written before imsnn recorded it); taken as no "
                             "activity regulariser")
        others = [r.name for r in pool[1:]]
        if others and run in pool[:1]:
            run.notes.append(f"other candidate baselines of this setup: {', '.join(others)} "
                             "(choose with --baseline)")


def cost_runs(runs: list[Run], profile: en.Profile, ann_profile: en.Profile) -> None:
    """Every cost of every run, in one place: the profile's SNN energy, the same SNN on CMOS,
    the equivalent ANN. A further cost (another backend, another profile) is one more block."""
    for run in runs:
        steps = run.num_steps
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
        low = run.data.get("lowered")
        if low:  # the stock-lowered network (imsnn simulate --backend stock | --lowered-counts)
            run.lowered = en.energy_per_inference(low["layers"], profile)
            units = sum(c["total_pj"] for r, c in zip(low["layers"], run.lowered["layers"])
                        if r.get("role") == "isi-unit")
            run.lowered_units_share = units / run.lowered["total_pj"] \
                if run.lowered["total_pj"] else 0.0


_cost = cost_runs  # the name build_report used before


def _vs_reference(run: Run, value) -> float | None:
    if run.reference is None or run.reference is run:
        return None
    return en.ratio(value(run), value(run.reference))


def _uj(pj: float | None) -> float | None:
    return None if pj is None else pj / PJ_PER_UJ


def _energy_layers_uj(run: Run) -> list[dict] | None:
    if run.energy is None:
        return None
    return [{"name": x["name"], "role": role,
             **{k.replace("_pj", "_uj"): _uj(v) for k, v in x.items() if k.endswith("_pj")}}
            for x, role in zip(run.energy["layers"], run.roles())]


def _summary_row(run: Run, profile: en.Profile) -> dict:
    """One run's row of summary.json: energies in uJ per inference (energy_per_inference_nj is
    kept for readers of earlier summaries)."""
    ref = run.reference
    return {
        "name": run.name, "file": run.path, "model": run.data.get("model"),
        "dataset": run.dataset, "synapse": run.synapse, "precision": run.precision,
        "activity_l1": run.activity_l1, "gate": run.data.get("gate"),
        "architecture": run.architecture(), "family": run.family,
        "baseline": ref is run,
        "reference_baseline": None if ref is None else ref.name,
        "num_samples": run.data.get("num_samples"), "num_steps": run.num_steps,
        "accuracy": run.accuracy, "reference_accuracy": run.data.get("reference_accuracy"),
        "input_spikes_per_sample": run.input_spikes,
        "hidden_spikes_per_sample": run.hidden_spikes,
        "total_spikes_per_sample": run.total_spikes,
        "synops_per_sample": run.synops,
        "energy_profile": profile.name,
        "energy_per_inference_uj": run.energy_uj,
        "energy_per_inference_nj": None if run.energy is None else run.energy["total_pj"] / 1e3,
        "energy_layers_uj": _energy_layers_uj(run),
        "input_synops_energy_share": run.input_energy_share,
        "snn_on_cmos45_uj": None if run.cmos_snn is None else _uj(run.cmos_snn["total_pj"]),
        "ann_macs": None if run.ann is None else run.ann["macs"],
        "ann_on_cmos45_uj": None if run.ann is None else _uj(run.ann["total_pj"]),
        "accuracy_minus_baseline": None if ref is None or ref is run
        else run.accuracy - ref.accuracy,
        "hidden_spikes_vs_baseline": _vs_reference(run, lambda r: r.hidden_spikes),
        "total_spikes_vs_baseline": _vs_reference(run, lambda r: r.total_spikes),
        "synops_vs_baseline": _vs_reference(run, lambda r: r.synops),
        "energy_vs_baseline": _vs_reference(run, lambda r: r.energy_uj),
        "lowered_energy_per_inference_uj": None if run.lowered is None
        else _uj(run.lowered["total_pj"]),
        "lowered_isi_units_share": run.lowered_units_share,
        "lowered_neurons": (run.data.get("lowered") or {}).get("neurons"),
        "notes": list(dict.fromkeys(run.notes)),
    }
