"""`imsnn report`: compare runs from their results JSON files in one HTML page with PNG figures.

Input: result files written by `imsnn simulate --json` or `imsnn evaluate --json`. Output, in
one folder: index.html (self-contained, inline CSS, images as relative PNG files), the PNGs,
summary.md and summary.json. Every file is written atomically (temp file + os.replace).

Definitions used throughout:
- hidden spikes/sample: sum over all layers but the last (the output) of spikes per sample;
- total spikes/sample: hidden + output (the input spikes are listed apart: they are the encoder's,
  identical for runs with the same data and encoding);
- synops/sample: synaptic events summed over the layers (input spikes x fan-out included);
- a run is a baseline if "synapse" is "plain" or its name contains "baseline"; every run is
  compared with the first baseline of the same dataset (none: n/a).

numpy-free; matplotlib is imported inside the plotting functions and used through its
object-oriented API on the Agg canvas (no pyplot, no global backend switch).
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from imsnn_lava import energy as en
from imsnn_lava.errors import ImsnnError

NA = "n/a"
ANN_PROFILE = "cmos45_ann"


# ----------------------------------------------------------------------------- input


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class _Checker:
    """Field checks whose errors name the file and the field."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, fld: str, msg: str):
        raise ImsnnError(f"{self.path}: field '{fld}' {msg}")

    def _value(self, obj: dict, key: str, where: str, required: bool, ok, kind: str,
               lo=None, hi=None):
        fld = f"{where}{key}"
        if key not in obj or obj[key] is None:
            if required:
                self.fail(fld, "is missing")
            return None
        v = obj[key]
        if not ok(v):
            self.fail(fld, f"must be {kind}, got {v!r}")
        if lo is not None and v < lo:
            self.fail(fld, f"must be >= {lo}, got {v!r}")
        if hi is not None and v > hi:
            self.fail(fld, f"must be <= {hi}, got {v!r}")
        return v

    def number(self, obj: dict, key: str, where: str, *, required=False, lo=None, hi=None):
        v = self._value(obj, key, where, required, _is_number, "a number", lo, hi)
        return None if v is None else float(v)

    def integer(self, obj: dict, key: str, where: str, *, required=False, lo=None):
        return self._value(obj, key, where, required, _is_int, "an integer", lo)

    def string(self, obj: dict, key: str, where: str = "", *, required=False):
        if key not in obj or obj[key] is None:
            if required:
                self.fail(f"{where}{key}", "is missing")
            return None
        if not isinstance(obj[key], str):
            self.fail(f"{where}{key}", f"must be a string, got {obj[key]!r}")
        return obj[key]

    def int_list(self, obj: dict, key: str, where: str, *, lo=0):
        v = obj.get(key)
        if v is None:
            return None
        if not isinstance(v, list) or not all(_is_int(x) and x >= lo for x in v):
            self.fail(f"{where}{key}", f"must be a list of integers >= {lo}")
        return v


_LAYER_NUMBERS = ("spikes_per_sample_std", "spikes_per_neuron", "synops_per_sample",
                  "lookups_per_sample", "neuron_updates_per_sample", "active_updates_per_sample",
                  "idle_updates_per_sample")


def load_result(path: str | Path) -> dict:
    """Read and check one results JSON; errors (ImsnnError) name the file and the field."""
    path = str(path)
    try:
        with open(path, encoding="utf-8") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise ImsnnError(f"{path}: no such result file") from None
    except IsADirectoryError:
        raise ImsnnError(f"{path}: a folder, not a result file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImsnnError(f"{path}: cannot read the result file ({exc})") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImsnnError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    c = _Checker(path)
    if not isinstance(data, dict):
        raise ImsnnError(f"{path}: a result file must hold a JSON object")
    c.number(data, "accuracy", "", required=True, lo=0.0, hi=1.0)
    for key in ("reference_accuracy", "agreement_counts", "agreement_predictions"):
        c.number(data, key, "", lo=0.0, hi=1.0)
    for key in ("wall_s", "ms_per_step"):
        c.number(data, key, "", lo=0.0)
    for key in ("num_samples", "num_steps"):
        c.integer(data, key, "", lo=0)
    for key in ("model", "name", "synapse", "dataset", "split", "precision"):
        c.string(data, key)
    if "fixed_point" in data and not isinstance(data["fixed_point"], bool):
        c.fail("fixed_point", "must be true or false")
    if "layers" not in data:
        c.fail("layers", "is missing")
    layers = data["layers"]
    if not isinstance(layers, list) or not layers:
        c.fail("layers", "must be a non-empty list of layer objects")
    for k, layer in enumerate(layers):
        where = f"layers[{k}]."
        if not isinstance(layer, dict):
            c.fail(f"layers[{k}]", "must be an object")
        if not c.string(layer, "name", where, required=True):
            c.fail(f"{where}name", "must not be empty")
        c.number(layer, "spikes_per_sample", where, required=True, lo=0.0)
        c.integer(layer, "neurons", where, lo=1)
        c.integer(layer, "fan_in", where, lo=1)
        for key in _LAYER_NUMBERS:
            c.number(layer, key, where, lo=0.0)
        c.int_list(layer, "isi_histogram", where)
        dist = layer.get("synops_per_sample_distribution")
        if dist is not None:
            if not isinstance(dist, dict):
                c.fail(f"{where}synops_per_sample_distribution", "must be an object")
            for key in dist:
                c.number(dist, key, f"{where}synops_per_sample_distribution.")
    inp = data.get("input")
    if inp is not None:
        if not isinstance(inp, dict):
            c.fail("input", "must be an object")
        c.integer(inp, "neurons", "input.", lo=1)
        c.number(inp, "spikes_per_sample", "input.", lo=0.0)
    raster = data.get("raster")
    if raster is not None:
        if not isinstance(raster, dict) or not isinstance(raster.get("layers"), list):
            c.fail("raster", "must be an object with a 'layers' list")
        for k, rl in enumerate(raster["layers"]):
            where = f"raster.layers[{k}]."
            if not isinstance(rl, dict):
                c.fail(f"raster.layers[{k}]", "must be an object")
            c.string(rl, "name", where, required=True)
            t = c.int_list(rl, "t", where)
            i = c.int_list(rl, "i", where)
            if t is None or i is None:
                c.fail(f"{where}{'t' if t is None else 'i'}", "is missing")
            if len(t) != len(i):
                c.fail(f"{where}i", f"must be as long as 't' ({len(i)} != {len(t)})")
            c.integer(rl, "neurons", where, lo=1)
    return data


# ----------------------------------------------------------------------------- runs


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


# ----------------------------------------------------------------------------- formatting


def _f(v, spec: str = ".1f", suffix: str = "") -> str:
    return NA if v is None else f"{format(v, spec)}{suffix}"


def _ratio_text(row: dict, key: str) -> str:
    if row["reference_baseline"] == row["name"]:
        return "baseline"
    v = row[key]
    if v is None:
        return NA
    return f"{v:.3f}x ({(v - 1) * 100:+.0f}%)"


TABLE_COLUMNS = (
    ("run", lambda r: r["name"]),
    ("dataset", lambda r: r["dataset"] or NA),
    ("precision", lambda r: r["precision"]),
    ("accuracy", lambda r: _f(r["accuracy"] * 100, ".2f", "%")),
    ("hidden spikes/sample", lambda r: _f(r["hidden_spikes_per_sample"])),
    ("total spikes/sample", lambda r: _f(r["total_spikes_per_sample"])),
    ("synops/sample", lambda r: _f(r["synops_per_sample"], ",.0f")),
    ("energy/inference (nJ)", lambda r: _f(r["energy_per_inference_nj"], ",.1f")),
    ("hidden spikes vs baseline", lambda r: _ratio_text(r, "hidden_spikes_vs_baseline")),
    ("energy vs baseline", lambda r: _ratio_text(r, "energy_vs_baseline")),
)


def _header(profile: en.Profile) -> list[str]:
    return [h if h != "energy/inference (nJ)" else f"{profile.name} energy/inference (nJ)"
            for h, _ in TABLE_COLUMNS]


def text_table(rows: list[dict], profile: en.Profile) -> str:
    header = _header(profile)
    cells = [[fn(r) for _, fn in TABLE_COLUMNS] for r in rows]
    widths = [max(len(h), *(len(c[k]) for c in cells)) for k, h in enumerate(header)]
    fmt_row = lambda cs: "  ".join(  # noqa: E731
        c.ljust(w) if k < 3 else c.rjust(w) for k, (c, w) in enumerate(zip(cs, widths)))
    lines = [fmt_row(header), "  ".join("-" * w for w in widths)]
    lines += [fmt_row(c) for c in cells]
    return "\n".join(lines)


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def markdown(rows: list[dict], profile: en.Profile, ann_profile: en.Profile) -> str:
    header = _header(profile)
    out = ["# imsnn report", "",
           "| " + " | ".join(header) + " |",
           "|" + "|".join("---" if k < 3 else "---:" for k in range(len(header))) + "|"]
    for r in rows:
        out.append("| " + " | ".join(_md_escape(fn(r)) for _, fn in TABLE_COLUMNS) + " |")
    out += ["", "Hidden spikes: all layers but the output; total: hidden + output (input "
            "excluded). A run is compared with the first baseline of its dataset.", "",
            f"## Energy model: {_md_escape(profile.name)}", "", f"Source: {profile.citation}", "",
            "Energies per event (pJ): " + ", ".join(
                f"{k} {v:g}" for k, v in profile.energies_pj.items()), "",
            "Left out of the estimate:", ""]
    out += [f"- {_md_escape(s)}" for s in profile.omits]
    out += ["", f"Equivalent ANN and SNN on CMOS: {ann_profile.citation}", ""]
    out += [f"- {_md_escape(s)}" for s in ann_profile.omits]
    notes = [(r["name"], n) for r in rows for n in r["notes"]]
    if notes:
        out += ["", "## Notes", ""] + [f"- {_md_escape(a)}: {_md_escape(b)}" for a, b in notes]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- plots

_BASE_COLOR = "#7f7f7f"


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _run_colors(runs: list[Run]) -> dict[str, str]:
    """One colour per run: tab10 without its grey, then tab20's lighter shades."""
    from matplotlib import colormaps

    tab10, tab20 = colormaps["tab10"], colormaps["tab20"]
    palette = [tab10(i) for i in range(10) if i != 7]
    palette += [tab20(i) for i in range(1, 20, 2) if i != 15]
    return {run.name: palette[k % len(palette)] for k, run in enumerate(runs)}


def _label(run: Run) -> str:
    return f"{run.name} (baseline)" if run.is_baseline else run.name


def plot_accuracy(runs: list[Run], colors) -> bytes:
    fig = _new_figure(7.5, 1.5 + 0.5 * len(runs))
    ax = fig.add_subplot()
    names = [_label(r) for r in runs][::-1]
    accs = [r.accuracy * 100 for r in runs][::-1]
    bars = ax.barh(names, accs, color=[colors[r.name] for r in runs][::-1],
                   hatch=None, edgecolor="black", linewidth=0.5)
    for bar, run in zip(bars, runs[::-1]):
        if run.is_baseline:
            bar.set_hatch("//")
    ax.bar_label(bars, labels=[f"{a:.2f}%" for a in accs], padding=3, fontsize=9)
    refs = [(r.data.get("reference_accuracy"), k) for k, r in enumerate(runs[::-1])]
    ref_pts = [(a * 100, k) for a, k in refs if a is not None]
    if ref_pts:
        ax.plot([p[0] for p in ref_pts], [p[1] for p in ref_pts], "k|", markersize=16,
                markeredgewidth=2, label="reference accuracy (numpy/PyTorch semantics)")
        fig.legend(loc="outside lower center", fontsize=8, frameon=False)
    ax.set_xlim(0, 112)
    ax.set_xlabel("accuracy (%)")
    ax.set_title("Accuracy per run")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _layer_order(runs: list[Run], has=lambda layer: True) -> list[str]:
    order: list[str] = []
    for run in runs:
        for layer in run.layers:
            if has(layer) and layer["name"] not in order:
                order.append(layer["name"])
    return order


def _grouped_bars(runs: list[Run], colors, key: str, ylabel: str, title: str,
                  std_key: str | None = None, log: bool = False) -> bytes | None:
    layer_names = _layer_order(runs, lambda layer: layer.get(key) is not None)
    shown = [r for r in runs if any(layer.get(key) is not None for layer in r.layers)]
    if not layer_names or not shown:
        return None
    fig = _new_figure(max(6.5, 1.6 + 1.3 * len(layer_names) * max(1, len(shown)) ** 0.5), 4.6)
    ax = fig.add_subplot()
    width = 0.8 / len(shown)
    for k, run in enumerate(shown):
        by_name = {layer["name"]: layer for layer in run.layers}
        xs, ys, errs = [], [], []
        for j, lname in enumerate(layer_names):
            layer = by_name.get(lname)
            if layer is None or layer.get(key) is None:
                continue
            xs.append(j - 0.4 + width * (k + 0.5))
            ys.append(layer[key])
            errs.append((layer.get(std_key) or 0.0) if std_key else 0.0)
        bars = ax.bar(xs, ys, width, color=colors[run.name], edgecolor="black", linewidth=0.5,
                      label=_label(run), hatch="//" if run.is_baseline else None,
                      yerr=errs if std_key and any(errs) else None, capsize=3)
        ax.bar_label(bars, labels=[_short(y) for y in ys], padding=2, fontsize=7)
    ax.set_xticks(range(len(layer_names)), layer_names)
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
        ax.set_ylabel(f"{ylabel} (log scale)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.margins(y=0.15)
    fig.legend(loc="outside lower center", fontsize=8, frameon=False,
               ncols=min(len(shown), 3))
    return _png(fig)


def _short(v: float) -> str:
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.2f}M"
    if a >= 1e4:
        return f"{v / 1e3:.0f}k"
    if a >= 100:
        return f"{v:.0f}"
    return f"{v:.1f}"


def plot_energy(runs: list[Run], profile: en.Profile) -> bytes | None:
    costed = [r for r in runs if r.energy is not None]
    if not costed:
        return None
    from matplotlib import colormaps

    fig = _new_figure(11, 2.2 + 0.55 * len(costed))
    ax_l, ax_k = fig.subplots(1, 2, sharey=True)
    names = [_label(r) for r in costed][::-1]
    rev = costed[::-1]
    layer_names = _layer_order(costed)
    cmap = colormaps["Set2"]
    left = [0.0] * len(rev)
    for j, lname in enumerate(layer_names):
        vals = []
        for r in rev:
            row = next((x for x in r.energy["layers"] if x["name"] == lname), None)
            vals.append(0.0 if row is None else row["total_pj"] / 1e3)
        ax_l.barh(names, vals, left=left, color=cmap(j % 8), edgecolor="black", linewidth=0.5,
                  label=lname)
        left = [a + b for a, b in zip(left, vals)]
    for y, total in enumerate(left):
        ax_l.text(total, y, f" {total:,.0f}", va="center", fontsize=8)
    ax_l.set_title("by layer")
    kinds = (("synop_pj", "synaptic events"), ("neuron_pj", "neuron updates"),
             ("spike_pj", "spikes"), ("lookup_pj", "ISI lookups"))
    kcolors = ("#4c72b0", "#dd8452", "#55a868", "#c44e52")
    left = [0.0] * len(rev)
    for (key, label), color in zip(kinds, kcolors):
        vals = [sum(x[key] for x in r.energy["layers"]) / 1e3 for r in rev]
        if not any(vals):
            continue
        ax_k.barh(names, vals, left=left, color=color, edgecolor="black", linewidth=0.5,
                  label=label)
        left = [a + b for a, b in zip(left, vals)]
    ax_k.set_title("by event")
    for ax in (ax_l, ax_k):
        ax.set_xlabel("energy per inference (nJ)")
        ax.grid(axis="x", alpha=0.3)
        ax.margins(x=0.18)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=4,
                  frameon=False)
    fig.suptitle(f"Energy per inference, profile '{profile.name}' (dynamic energy only)")
    return _png(fig)


def plot_isi(runs: list[Run], colors) -> bytes | None:
    layer_names = _layer_order(runs, lambda layer: layer.get("isi_histogram"))
    if not layer_names:
        return None
    n = len(layer_names)
    fig = _new_figure(6.5, 0.6 + 3.0 * n)
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, lname in zip(axes, layer_names):
        for run in runs:
            layer = next((x for x in run.layers if x["name"] == lname), None)
            hist = None if layer is None else layer.get("isi_histogram")
            if not hist:
                continue
            total = sum(hist) or 1
            xs = list(range(1, len(hist) + 1))
            ax.step(xs, [h / total for h in hist], where="mid", color=colors[run.name],
                    linestyle="--" if run.is_baseline else "-", marker="o", markersize=3,
                    label=f"{_label(run)} ({sum(hist):,} spikes)")
        ax.set_title(f"{lname}: interspike intervals of the arriving (presynaptic) spikes",
                     fontsize=10)
        ax.set_xlabel("ISI (steps)")
        ax.set_ylabel("fraction of spikes")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


def plot_raster(run: Run, colors) -> bytes | None:
    raster = run.data.get("raster")
    if not raster or not raster.get("layers"):
        return None
    rls = raster["layers"]
    steps = run.data.get("num_steps")
    fig = _new_figure(7.5, 0.8 + 1.9 * len(rls))
    axes = fig.subplots(len(rls), 1, sharex=True, squeeze=False)[:, 0]
    for ax, rl in zip(axes, rls):
        n = rl.get("neurons")
        rows = n or (max(rl["i"]) + 1 if rl["i"] else 1)
        size = 18 if rows <= 50 else 6 if rows <= 300 else 2.5  # a dot about one row tall
        ax.scatter(rl["t"], rl["i"], s=size, marker="s", color=colors[run.name],
                   linewidths=0)
        if n:
            ax.set_ylim(-0.5, n - 0.5)
        ax.set_ylabel(f"{rl['name']}\nneuron", fontsize=9)
        ax.text(1.0, 1.0, f"{len(rl['t'])} spikes", transform=ax.transAxes, ha="right",
                va="bottom", fontsize=8)
        ax.grid(alpha=0.2)
    if steps:
        axes[-1].set_xlim(-0.5, steps - 0.5)
    axes[-1].set_xlabel("time step")
    sid = raster.get("sample_id")
    fig.suptitle(f"{_label(run)}: spikes of sample {sid if sid is not None else '?'}",
                 fontsize=11)
    return _png(fig)


LOG_SPIKE_RANGE = 20.0  # spike counts spanning more than this factor get a log axis
ANNOTATED_RUNS = 4  # up to this many points carry their name; more would overlap


def plot_acc_vs_spikes(runs: list[Run], colors) -> bytes:
    fig = _new_figure(8.5, 4.6)
    ax = fig.add_subplot()
    for run in runs:
        ax.scatter([run.hidden_spikes], [run.accuracy * 100], s=70, color=colors[run.name],
                   marker="s" if run.is_baseline else "o", edgecolors="black",
                   label=_label(run), zorder=3)
        if len(runs) <= ANNOTATED_RUNS:
            ax.annotate(run.name, (run.hidden_spikes, run.accuracy * 100),
                        textcoords="offset points", xytext=(6, 5), fontsize=8)
    spikes = [run.hidden_spikes for run in runs]
    log_x = min(spikes) > 0 and max(spikes) / min(spikes) > LOG_SPIKE_RANGE
    ax.set_xlabel("hidden spikes per sample" + (" (log scale)" if log_x else ""))
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy against hidden spikes (up and to the left is better)")
    ax.grid(alpha=0.3, which="both" if log_x else "major")
    ax.margins(x=0.25, y=0.25)
    if log_x:
        ax.set_xscale("log")
    else:
        ax.set_xlim(left=0)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return _png(fig)


# ----------------------------------------------------------------------------- output


def _file_mode() -> int:
    umask = os.umask(0o022)  # read the umask (no other way), then put it back
    os.umask(umask)
    return 0o666 & ~umask


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            os.fchmod(fh.fileno(), _file_mode())  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create the folder and prove it is writable, before any work."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ImsnnError(f"{out}: exists and is not a folder; cannot write the report there")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".imsnn-report-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ImsnnError(f"{out}: cannot write the report there "
                         f"({exc.strerror or exc})") from None
    return out


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;
max-width:1150px;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em} th{background:#f3f3f3;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.baseline td{background:#fafafa;font-style:italic}
figure{margin:1em 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
.muted{color:#666;font-size:.9em} code{background:#f5f5f5;padding:0 .2em}
""".strip()


def _e(v) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _html(runs: list[Run], rows: list[dict], images: list[tuple[str, str, str]],
          profile: en.Profile, ann_profile: en.Profile, skipped: list[str]) -> str:
    h = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
         '<meta name="viewport" content="width=device-width, initial-scale=1">',
         '<title>imsnn report</title>', f"<style>{_CSS}</style></head><body>",
         "<h1>imsnn report</h1>",
         f'<p class="muted">{len(runs)} run(s): '
         + ", ".join(f"<b>{_e(r.name)}</b>" for r in runs) + "</p>",
         "<h2>Summary</h2>", "<table><tr>"]
    h += [f"<th>{_e(c)}</th>" for c in _header(profile)] + ["</tr>"]
    for row in rows:
        cls = ' class="baseline"' if row["baseline"] else ""
        cells = [fn(row) for _, fn in TABLE_COLUMNS]
        h.append(f"<tr{cls}>" + "".join(
            f'<td{" class=num" if k >= 3 else ""}>{_e(c)}</td>' for k, c in enumerate(cells))
            + "</tr>")
    h += ["</table>",
          '<p class="muted">Hidden spikes/sample: all layers but the output. Total: hidden + '
          "output (the encoder's input spikes are excluded; see the run details). "
          "Synops: synaptic events (presynaptic spikes x fan-out), input layer included. "
          "Each run is compared with the first baseline (synapse &quot;plain&quot; or "
          "&quot;baseline&quot; in the name) of the same dataset; italics mark baselines.</p>"]

    h += ["<h2>Figures</h2>"]
    for fname, title, caption in images:
        h.append(f'<figure><img src="{_e(fname)}" alt="{_e(title)}">'
                 f"<figcaption>{_e(caption)}</figcaption></figure>")
    for s in skipped:
        h.append(f'<p class="muted">{_e(s)}</p>')

    h += ["<h2>Energy model</h2>",
          f"<p><b>{_e(profile.name)}</b>{': ' + _e(profile.title) if profile.title else ''}"
          f"<br>Source: {_e(profile.citation)}<br>Profile: {_e(profile.source)}</p>",
          "<table><tr><th>event</th><th>energy (pJ)</th><th>meaning</th></tr>"]
    for k, v in profile.energies_pj.items():
        h.append(f"<tr><td>{_e(k)}</td><td class=num>{v:g}</td>"
                 f"<td>{_e(en.ENERGY_KEYS.get(k, ''))}</td></tr>")
    h.append("</table><p>Per inference: synaptic events x E(synop) + active neuron updates x "
             "E(active) + idle neuron updates x E(idle) + spikes x E(spike), per layer.</p>")
    if profile.source_notes:
        h += ["<p>About the numbers:</p><ul>"]
        h += [f"<li>{_e(s)}</li>" for s in profile.source_notes] + ["</ul>"]
    h += ["<p><b>Left out of this estimate</b> (the real energy is higher):</p><ul>"]
    h += [f"<li>{_e(s)}</li>" for s in profile.omits] + ["</ul>"]

    h += ["<h3>Against an equivalent ANN on 45 nm CMOS</h3>",
          f"<p>Source: {_e(ann_profile.citation)}. ANN: one MAC "
          f"({ann_profile.energies_pj.get('mac', 0):g} pJ) per synapse per inference "
          "(sum of fan_in x neurons); SNN on the same CMOS: one accumulate "
          f"({ann_profile.energies_pj.get('synop', 0):g} pJ) per synaptic event.</p>",
          "<table><tr><th>run</th><th>ANN MACs</th><th>ANN (nJ)</th>"
          "<th>SNN accumulates on CMOS (nJ)</th><th>SNN / ANN on CMOS</th>"
          f"<th>{_e(profile.name)} (nJ)</th><th>{_e(profile.name)} / ANN</th></tr>"]
    for run, row in zip(runs, rows):
        ann_nj, cmos_nj = row["ann_on_cmos45_nj"], row["snn_on_cmos45_nj"]
        cells = [_f(row["ann_macs"], ",.0f"), _f(ann_nj, ",.1f"), _f(cmos_nj, ",.1f"),
                 _f(en.ratio(cmos_nj, ann_nj), ".3f"),
                 _f(row["energy_per_inference_nj"], ",.1f"),
                 _f(en.ratio(row["energy_per_inference_nj"], ann_nj), ".3f")]
        h.append(f"<tr><td>{_e(run.name)}</td>"
                 + "".join(f"<td class=num>{_e(c)}</td>" for c in cells) + "</tr>")
    h += ["</table><p>Left out of the CMOS figures:</p><ul>"]
    h += [f"<li>{_e(s)}</li>" for s in ann_profile.omits] + ["</ul>"]

    h += ["<h2>Runs</h2>"]
    for run, row in zip(runs, rows):
        d = run.data
        h.append(f"<h3>{_e(run.name)}{' (baseline)' if run.is_baseline else ''}</h3>")
        facts = [("result file", run.path), ("model", d.get("model")),
                 ("synapse", d.get("synapse")), ("dataset", d.get("dataset")),
                 ("split", d.get("split")), ("precision", run.precision),
                 ("samples", d.get("num_samples")), ("steps", d.get("num_steps")),
                 ("accuracy", _f(run.accuracy * 100, ".2f", "%")),
                 ("reference accuracy", _f(_pct(d.get("reference_accuracy")), ".2f", "%")),
                 ("agreement (predictions / counts)",
                  f"{_f(_pct(d.get('agreement_predictions')), '.2f', '%')} / "
                  f"{_f(_pct(d.get('agreement_counts')), '.2f', '%')}"),
                 ("wall time", _f(d.get("wall_s"), ".1f", " s")),
                 ("ms per step", _f(d.get("ms_per_step"), ".2f")),
                 ("input", NA if run.input is None else
                  f"{_f(run.input.get('neurons'), 'd')} neurons, "
                  f"{_f(run.input.get('spikes_per_sample'))} spikes/sample"),
                 ("compared with", row["reference_baseline"] or NA)]
        h.append('<table class="facts">' + "".join(
            f"<tr><th>{_e(k)}</th><td>{_e(NA if v is None else v)}</td></tr>"
            for k, v in facts) + "</table>")
        energy_by = {x["name"]: x for x in (run.energy or {"layers": []})["layers"]}
        h.append("<table><tr><th>layer</th><th>neurons</th><th>fan-in</th>"
                 "<th>spikes/sample</th><th>std</th><th>spikes/neuron</th><th>synops/sample</th>"
                 "<th>ISI lookups/sample</th><th>neuron updates (active/idle)</th>"
                 f"<th>{_e(profile.name)} energy (nJ)</th></tr>")
        for layer in run.layers:
            n = layer.get("neurons")
            spn = layer.get("spikes_per_neuron")
            if spn is None and n:
                spn = layer["spikes_per_sample"] / n
            act, idle = layer.get("active_updates_per_sample"), layer.get(
                "idle_updates_per_sample")
            upd = (f"{_f(act, ',.0f')} / {_f(idle, ',.0f')}" if act is not None
                   or idle is not None else _f(layer.get("neuron_updates_per_sample"), ",.0f"))
            erow = energy_by.get(layer["name"])
            cells = [_f(n, "d"), _f(layer.get("fan_in"), "d"),
                     _f(layer["spikes_per_sample"], ".2f"),
                     _f(layer.get("spikes_per_sample_std"), ".2f"), _f(spn, ".4f"),
                     _f(layer.get("synops_per_sample"), ",.0f"),
                     _f(layer.get("lookups_per_sample"), ",.1f"), upd,
                     _f(None if erow is None else erow["total_pj"] / 1e3, ",.2f")]
            h.append(f"<tr><td>{_e(layer['name'])}</td>"
                     + "".join(f"<td class=num>{_e(c)}</td>" for c in cells) + "</tr>")
        h.append("</table>")
        if row["notes"]:
            h.append("<ul class=muted>" + "".join(f"<li>{_e(s)}</li>" for s in row["notes"])
                     + "</ul>")
    h += ['<p class="muted">Generated by <code>imsnn report</code>. The figures are PNG files '
          "next to this page.</p>", "</body></html>"]
    return "\n".join(h) + "\n"


def _pct(v):
    return None if v is None else v * 100


@dataclass
class ReportOutput:
    out_dir: Path
    files: list[Path]
    table: str
    summary: dict
    footer: str = ""


def _previous_images(summary_path: Path) -> list[str]:
    """Image names a report previously written into this folder lists in its summary.json."""
    try:
        images = json.loads(summary_path.read_text()).get("images", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [Path(name).name for name in images if isinstance(name, str)]


def build_report(result_paths: list[str | Path], out_dir: str | Path,
                 profile: str | Path = "loihi") -> ReportOutput:
    """Write index.html, the PNGs, summary.md and summary.json into `out_dir`."""
    if not result_paths:
        raise ImsnnError("no result files given")
    out = prepare_out_dir(out_dir)
    prof = en.load_profile(profile)
    if not prof.can_cost_snn:
        missing = [k for k in en.SNN_KEYS if k not in prof.energies_pj][0]
        raise ImsnnError(f"{prof.source}: field 'energies_pj.{missing}' is missing: the "
                         "profile cannot cost a spiking network")
    ann_prof = en.load_profile(ANN_PROFILE)
    paths = [str(p) for p in result_paths]
    datas = [load_result(p) for p in paths]
    runs = _make_runs(paths, datas)
    _cost(runs, prof, ann_prof)
    rows = [_summary_row(r, prof) for r in runs]
    colors = _run_colors(runs)

    pngs: list[tuple[str, bytes, str, str]] = []
    skipped: list[str] = []

    def add(fname, data, title, caption, missing):
        if data is None:
            skipped.append(missing)
        else:
            pngs.append((fname, data, title, caption))

    add("accuracy.png", plot_accuracy(runs, colors), "Accuracy per run",
        "Accuracy of each run; black ticks: the reference model's accuracy where recorded.", "")
    add("spikes_per_layer.png",
        _grouped_bars(runs, colors, "spikes_per_sample", "spikes per sample",
                      "Spikes per sample per layer (error bars: std over samples)",
                      std_key="spikes_per_sample_std"),
        "Spikes per sample per layer", "Mean spikes per sample emitted by each layer.", "")
    add("synops_per_layer.png",
        _grouped_bars(runs, colors, "synops_per_sample", "synaptic events per sample",
                      "Synaptic events per sample per layer (incoming spikes x fan-out)",
                      log=True),
        "Synaptic events per layer", "Synaptic events per sample arriving at each layer.",
        "No run records synaptic events (synops_per_sample): no synaptic-event figure.")
    add("energy.png", plot_energy(runs, prof), "Energy per inference",
        f"Energy per inference under profile '{prof.name}', stacked by layer (left) and by "
        "event kind (right). Dynamic energy only: see what the model leaves out below.",
        "No run has the counts the energy model needs: no energy figure.")
    add("isi_histograms.png", plot_isi(runs, colors), "ISI histograms",
        "Distribution of the presynaptic interspike intervals of the spikes arriving at each "
        "layer (fraction of spikes per ISI bin).",
        "No run records ISI histograms: no ISI figure.")
    rastered = False
    for run in runs:
        data = plot_raster(run, colors)
        if data is not None:
            rastered = True
            add(f"raster_{run.slug()}.png", data, f"Spike raster of {run.name}",
                f"Spikes of one sample, {run.name}, every layer.", "")
    if not rastered:
        skipped.append("No run records a spike raster: no raster figure.")
    add("accuracy_vs_spikes.png", plot_acc_vs_spikes(runs, colors),
        "Accuracy against hidden spikes",
        "Accuracy against hidden spikes per sample; squares are baselines.", "")
    skipped = [s for s in skipped if s]

    previous_images = _previous_images(out / "summary.json")
    table = text_table(rows, prof)
    summary = {"profile": prof.to_dict(), "ann_profile": ann_prof.to_dict(), "runs": rows,
               "images": [p[0] for p in pngs]}
    page = _html(runs, rows, [(f, t, c) for f, _, t, c in pngs], prof, ann_prof, skipped)
    files = []
    for fname, data, _, _ in pngs:
        files.append(out / fname)
        _write_atomic(out / fname, data)
    for fname, text in (("summary.json", json.dumps(summary, indent=2) + "\n"),
                        ("summary.md", markdown(rows, prof, ann_prof)),
                        ("index.html", page)):
        files.append(out / fname)
        _write_atomic(out / fname, text.encode("utf-8"))
    # a report rebuilt into the same folder: drop the images the previous report wrote that
    # this one does not (they are listed in its summary.json; nothing else is touched)
    for name in previous_images:
        stale = out / name
        if stale not in files and stale.parent == out and stale.suffix == ".png":
            stale.unlink(missing_ok=True)
    footer = "\n".join([f"energy: profile '{prof.name}', {prof.citation}",
                        "the energy estimate leaves out: " + "; ".join(prof.omits)])
    return ReportOutput(out_dir=out, files=files, table=table, summary=summary, footer=footer)
