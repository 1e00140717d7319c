"""`imsnn report`: compare runs from their results JSON files in one HTML page with PNG figures.

Input: result files written by `imsnn simulate --json` or `imsnn evaluate --json`. Output, in
one folder: index.html (self-contained, inline CSS, images as relative PNG files), the PNGs,
summary.md and summary.json. Every file is written atomically (imsnn_lava.outputs).

    runs.py    loading, baseline pairing, costing
    tables.py  the summary table (text, Markdown)
    plots.py   the figures
    page.py    the HTML page (frame in page.html, style in style.css)
Definitions used throughout:
- hidden spikes/sample: sum over all layers but the last (the output) of spikes per sample;
- total spikes/sample: hidden + output (the input spikes are listed apart: they are the encoder's,
  identical for runs with the same data and encoding);
- synops/sample: synaptic events summed over the layers (input spikes x fan-out included);
- energy: uJ per inference, everywhere;
- layers are compared across runs by role (input, hidden 1..k, output), not by name;
- each run is compared with the baseline of the same dataset and architecture: the
  plain-synapse run without activity regulariser, from the results' own fields (runs.py
  explains the rule; `baselines` overrides it); none: n/a.

numpy-free; matplotlib is imported inside the plotting functions and used through its
object-oriented API on the Agg canvas (no pyplot, no global backend switch).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from imsnn_lava.analysis import energy as en
from imsnn_lava.analysis.report.page import render
from imsnn_lava.analysis.report.plots import (
    _grouped_bars,
    _run_colors,
    plot_accuracy,
    plot_energy,
    plot_front,
    plot_isi,
    plot_raster,
)
from imsnn_lava.analysis.report.runs import _make_runs, _summary_row, cost_runs
from imsnn_lava.analysis.report.tables import markdown, text_table
from imsnn_lava.analysis.runresult import load_result
from imsnn_lava.errors import ImsnnError
from imsnn_lava.outputs import ensure_writable_dir, write_bytes_atomic

ANN_PROFILE = "cmos45_ann"


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create the folder and prove it is writable, before any work."""
    return ensure_writable_dir(out_dir, "report")



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
                 profile: str | Path = "loihi",
                 baselines: list[str] | tuple[str, ...] = ()) -> ReportOutput:
    """Write index.html, the PNGs, summary.md and summary.json into `out_dir`. `baselines`:
    run names (or result files) to compare the runs of their setup with, instead of the
    automatic choice."""
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
    runs = _make_runs(paths, datas, baselines)
    cost_runs(runs, prof, ann_prof)
    rows = [_summary_row(r, prof) for r in runs]
    colors = _run_colors(runs)

    pngs: list[tuple[str, bytes, str, str]] = []
    skipped: list[str] = []

    def add(fname, data, title, caption, missing):
        if data is None:
            skipped.append(missing)
        else:
            pngs.append((fname, data, title, caption))

    add("accuracy_vs_energy.png",
        plot_front(runs, lambda r: r.energy_uj, f"energy per inference (uJ, {prof.name})",
                   "Accuracy against energy per inference (up and to the left is better)"),
        "Accuracy against energy",
        "One panel per dataset and architecture; a line joins the runs of one model family "
        "(synapse kind), in order of energy; rings mark the non-dominated runs (no other run "
        "is as accurate for less energy).",
        "No run has the counts the energy model needs: no accuracy-energy figure.")
    add("accuracy_vs_lowered_energy.png",
        plot_front(runs, lambda r: r.lowered_energy_uj,
                   f"energy per inference of the stock-lowered network (uJ, {prof.name})",
                   "Accuracy against stock-lowered energy (up and to the left is better)"),
        "Accuracy against energy on stock processes",
        "As above, with each run costed as the network of Lava's stock processes it is "
        "lowered to for a neuromorphic chip (imsnn simulate --lowered-counts or --backend "
        "stock): an ISI layer's detector units included.",
        "No run has the stock-lowered network's counts (imsnn simulate --lowered-counts): no "
        "accuracy figure for the lowered energy.")
    add("accuracy_vs_spikes.png",
        plot_front(runs, lambda r: r.hidden_spikes, "hidden spikes per sample",
                   "Accuracy against hidden spikes (up and to the left is better)"),
        "Accuracy against hidden spikes",
        "As above, against the hidden layers' spikes per sample.", "")
    add("accuracy_vs_synops.png",
        plot_front(runs, lambda r: r.synops, "synaptic events per sample",
                   "Accuracy against synaptic events (up and to the left is better)"),
        "Accuracy against synaptic events",
        "As above, against the synaptic events per sample (incoming spikes x fan-out, every "
        "layer).", "No run records synaptic events: no accuracy-synaptic-event figure.")
    add("energy.png", plot_energy(runs, prof), "Where the energy goes",
        f"Energy per inference (uJ) under profile '{prof.name}', stacked by layer role (left) "
        "and by event kind (right); the synaptic events of the input spikes are shown apart, "
        "with their share. Dynamic energy only: see what the model leaves out below.",
        "No run has the counts the energy model needs: no energy figure.")
    add("accuracy.png", plot_accuracy(runs, colors), "Accuracy per run",
        "Accuracy of each run; black ticks: the reference model's accuracy where recorded.", "")
    add("spikes_per_layer.png",
        _grouped_bars(runs, colors, "spikes_per_sample", "spikes per sample",
                      "Spikes per sample per layer" + (
                          " (error bars: std over samples)" if any(
                              x.get("spikes_per_sample_std") for r in runs for x in r.layers)
                          else ""),
                      std_key="spikes_per_sample_std"),
        "Spikes per sample per layer",
        "Mean spikes per sample emitted by each layer, layers matched by role.", "")
    add("synops_per_layer.png",
        _grouped_bars(runs, colors, "synops_per_sample", "synaptic events per sample",
                      "Synaptic events per sample per layer (incoming spikes x fan-out)"),
        "Synaptic events per layer",
        "Synaptic events per sample arriving at each layer (hidden 1's come from the input "
        "spikes), layers matched by role.",
        "No run records synaptic events (synops_per_sample): no synaptic-event figure.")
    add("isi_histograms.png", plot_isi(runs, colors), "ISI histograms",
        "Distribution of the presynaptic interspike intervals of the spikes arriving at each "
        "layer (fraction of spikes per ISI bin); the last bin holds every interval of phi_max "
        "or longer.",
        "No run records ISI histograms: no ISI figure.")
    rastered = False
    for run in runs:
        data = plot_raster(run, colors)
        if data is not None:
            rastered = True
            add(f"raster_{run.slug()}.png", data, f"Spike raster of {run.name}",
                f"Spikes of one sample, {run.name}, every layer; the title gives its true "
                "and predicted class.", "")
    if not rastered:
        skipped.append("No run records a spike raster: no raster figure.")
    skipped = [s for s in skipped if s]

    previous_images = _previous_images(out / "summary.json")
    table = text_table(rows, prof)
    summary = {"profile": prof.to_dict(), "ann_profile": ann_prof.to_dict(), "runs": rows,
               "images": [p[0] for p in pngs]}
    page = render(runs, rows, [(f, t, c) for f, _, t, c in pngs], prof, ann_prof, skipped)
    files = []
    for fname, data, _, _ in pngs:
        files.append(out / fname)
        write_bytes_atomic(out / fname, data)
    for fname, text in (("summary.json", json.dumps(summary, indent=2) + "\n"),
                        ("summary.md", markdown(rows, prof, ann_prof)),
                        ("index.html", page)):
        files.append(out / fname)
        write_bytes_atomic(out / fname, text.encode("utf-8"))
    # a report rebuilt into the same folder: drop the images the previous report wrote that
    # this one does not (they are listed in its summary.json; nothing else is touched)
    for name in previous_images:
        stale = out / name
        if stale not in files and stale.parent == out and stale.suffix == ".png":
            stale.unlink(missing_ok=True)
    footer = "\n".join([f"energy: profile '{prof.name}', {prof.citation}",
                        "the energy estimate leaves out: " + "; ".join(prof.omits)])
    return ReportOutput(out_dir=out, files=files, table=table, summary=summary, footer=footer)
