"""The report's HTML page: the page's frame and style come from page.html and style.css beside
this module; this fills in the tables and figures."""

from __future__ import annotations

import html
from importlib import resources
from string import Template

from imsnn_lava.analysis import energy as en
from imsnn_lava.analysis.report.plots import setup_groups
from imsnn_lava.analysis.report.runs import NA, PJ_PER_UJ, Run
from imsnn_lava.analysis.report.tables import TABLE_COLUMNS, _f, _header


def _template(name: str) -> str:
    return resources.files("imsnn_lava.analysis.report").joinpath(name).read_text("utf-8")


def _e(v) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def render(runs: list[Run], rows: list[dict], images: list[tuple[str, str, str]],
           profile: en.Profile, ann_profile: en.Profile, skipped: list[str]) -> str:
    """The whole page: page.html with the body filled in."""
    h = [f'<p class="muted">{len(runs)} run(s): '
         + ", ".join(f"<b>{_e(r.name)}</b>" for r in runs) + "</p>",
         "<h2>Summary</h2>", '<div class="wide"><table><tr>']
    h += [f"<th>{_e(c)}</th>" for c in _header(profile)] + ["</tr>"]
    for row in rows:
        cls = ' class="baseline"' if row["baseline"] else ""
        cells = [fn(row) for _, fn in TABLE_COLUMNS]
        h.append(f"<tr{cls}>" + "".join(
            f'<td{" class=num" if k >= 3 else ""}>{_e(c)}</td>' for k, c in enumerate(cells))
            + "</tr>")
    h += ["</table></div>",
          '<p class="muted">Hidden spikes/sample: all layers but the output. Total: hidden + '
          "output (the encoder's input spikes are excluded; see the run details). "
          "Synops: synaptic events (presynaptic spikes x fan-out), input layer included. "
          "Energy: uJ per inference. Each run is compared with the baseline of its dataset "
          "and architecture (layer shapes, T, encoding): the plain-synapse run without "
          "activity regulariser, as the result files record them (never the run names); "
          "&quot;n/a&quot; where no such run is among the inputs. Italics mark baselines. "
          "Stock-lowered energy: the same run lowered onto Lava's stock processes (what a "
          "Loihi neurocore can run; imsnn simulate --backend stock or --lowered-counts), "
          "its ISI units' share beside it; the energy column before it counts the layers' own "
          "events only and leaves the ISI bookkeeping out.</p>"]
    h += energy_words(runs)

    h += ["<h2>Figures</h2>"]
    for fname, title, caption in images:
        h.append(f'<figure><img src="{_e(fname)}" alt="{_e(title)}">'
                 f"<figcaption>{_e(caption)}</figcaption></figure>")
    rebuilt = [r.name for r in runs if r.data.get("rebuilt_from")]
    if rebuilt:
        skipped = [*skipped, f"{len(rebuilt)} result(s) were rebuilt from committed summaries "
                   "(bench/rebuild_results.py; see each run's details): their ISI histograms, "
                   "spike rasters, standard deviations and per-sample distributions were never "
                   "committed and are absent here."]
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
          "<table><tr><th>run</th><th>ANN MACs</th><th>ANN (uJ)</th>"
          "<th>SNN accumulates on CMOS (uJ)</th><th>SNN / ANN on CMOS</th>"
          f"<th>{_e(profile.name)} (uJ)</th><th>{_e(profile.name)} / ANN</th></tr>"]
    for run, row in zip(runs, rows):
        ann_uj, cmos_uj = row["ann_on_cmos45_uj"], row["snn_on_cmos45_uj"]
        cells = [_f(row["ann_macs"], ",.0f"), _f(ann_uj, ",.3f"), _f(cmos_uj, ",.3f"),
                 _f(en.ratio(cmos_uj, ann_uj), ".3f"),
                 _f(row["energy_per_inference_uj"], ",.3f"),
                 _f(en.ratio(row["energy_per_inference_uj"], ann_uj), ".3f")]
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
                 ("setup", run.architecture()),
                 ("rebuilt", d.get("rebuilt_from")),
                 ("activity_l1", NA if run.activity_l1 is None else f"{run.activity_l1:g}"),
                 ("compared with", row["reference_baseline"] or NA)]
        facts = [(k, v) for k, v in facts if k != "rebuilt" or v]
        h.append('<table class="facts">' + "".join(
            f"<tr><th>{_e(k)}</th><td>{_e(NA if v is None else v)}</td></tr>"
            for k, v in facts) + "</table>")
        energy_by = {x["name"]: x for x in (run.energy or {"layers": []})["layers"]}
        h.append("<table><tr><th>layer</th><th>role</th><th>neurons</th><th>fan-in</th>"
                 "<th>spikes/sample</th><th>std</th><th>spikes/neuron</th><th>synops/sample</th>"
                 "<th>ISI lookups/sample</th><th>neuron updates (active/idle)</th>"
                 f"<th>{_e(profile.name)} energy (uJ)</th></tr>")
        for layer, role in zip(run.layers, run.roles()):
            n = layer.get("neurons")
            spn = layer.get("spikes_per_neuron")
            if spn is None and n:
                spn = layer["spikes_per_sample"] / n
            act, idle = layer.get("active_updates_per_sample"), layer.get(
                "idle_updates_per_sample")
            upd = (f"{_f(act, ',.0f')} / {_f(idle, ',.0f')}" if act is not None
                   or idle is not None else _f(layer.get("neuron_updates_per_sample"), ",.0f"))
            erow = energy_by.get(layer["name"])
            cells = [role, _f(n, "d"), _f(layer.get("fan_in"), "d"),
                     _f(layer["spikes_per_sample"], ".2f"),
                     _f(layer.get("spikes_per_sample_std"), ".2f"), _f(spn, ".4f"),
                     _f(layer.get("synops_per_sample"), ",.0f"),
                     _f(layer.get("lookups_per_sample"), ",.1f"), upd,
                     _f(None if erow is None else erow["total_pj"] / PJ_PER_UJ, ",.3f")]
            h.append(f"<tr><td>{_e(layer['name'])}</td>"
                     + "".join(f"<td class=num>{_e(c)}</td>" for c in cells) + "</tr>")
        h.append("</table>")
        if row["notes"]:
            h.append("<ul class=muted>" + "".join(f"<li>{_e(s)}</li>" for s in row["notes"])
                     + "</ul>")
    return Template(_template("page.html")).substitute(
        title="imsnn report", style=_template("style.css"), body="\n".join(h))


def _pct(v):
    return None if v is None else v * 100




def _pct_range(values: list[float]) -> str:
    lo, hi = min(values) * 100, max(values) * 100
    return f"{lo:.1f}%" if round(lo, 1) == round(hi, 1) else f"{lo:.1f}-{hi:.1f}%"


def energy_words(runs: list[Run]) -> list[str]:
    """"Where the energy goes" in words, per dataset and architecture: the input layer's share
    (the synaptic events of the encoder's spikes, equal for every model of the group)."""
    out = ["<h2>Where the energy goes</h2>"]
    said = False
    for group in setup_groups(runs):
        costed = [r for r in group if r.input_energy_share is not None]
        if not costed:
            continue
        said = True
        shares = [r.input_energy_share for r in costed]
        hidden = [sum(x["synop_pj"] for x in r.energy["layers"][1:]) / r.energy["total_pj"]
                  for r in costed]
        first = costed[0]
        out.append(
            f"<p><b>{_e(first.dataset or NA)}, {_e(first.architecture())}</b> "
            f"({len(costed)} run(s)): the synaptic events of the input spikes (the encoder's "
            f"spikes times the first layer's fan-out, the same for every model with this data "
            f"and encoding) are <b>{_pct_range(shares)}</b> of the energy per inference; the "
            f"synaptic events of the hidden layers' spikes are {_pct_range(hidden)}; the rest "
            "is neuron updates and spikes. A model's hidden spikes change only the part "
            "that is not the input's.</p>")
    if not said:
        out.append('<p class="muted">No run has the counts the energy model needs.</p>')
    return out
