"""The report's summary tables (text for the terminal, Markdown for files)."""

from __future__ import annotations

from imsnn_lava.analysis import energy as en
from imsnn_lava.analysis.report.runs import NA


def _f(v, spec: str = ".1f", suffix: str = "") -> str:
    return NA if v is None else f"{format(v, spec)}{suffix}"


def _ratio_text(row: dict, key: str) -> str:
    if row["reference_baseline"] == row["name"]:
        return "baseline"
    v = row[key]
    if v is None:
        return NA
    return f"{v:.3f}x ({(v - 1) * 100:+.0f}%)"


ENERGY_UNIT = "uJ"  # the one energy unit of the report: microjoules per inference
ENERGY_HEADER = f"energy/inference ({ENERGY_UNIT})"

TABLE_COLUMNS = (
    ("run", lambda r: r["name"]),
    ("dataset", lambda r: r["dataset"] or NA),
    ("precision", lambda r: r["precision"]),
    ("accuracy", lambda r: _f(r["accuracy"] * 100, ".2f", "%")),
    ("hidden spikes/sample", lambda r: _f(r["hidden_spikes_per_sample"])),
    ("total spikes/sample", lambda r: _f(r["total_spikes_per_sample"])),
    ("synops/sample", lambda r: _f(r["synops_per_sample"], ",.0f")),
    (ENERGY_HEADER, lambda r: _f(r["energy_per_inference_uj"], ",.3f")),
    ("hidden spikes vs baseline", lambda r: _ratio_text(r, "hidden_spikes_vs_baseline")),
    ("energy vs baseline", lambda r: _ratio_text(r, "energy_vs_baseline")),
    ("stock-lowered energy (uJ)", lambda r: _f(r.get("lowered_energy_per_inference_uj"),
                                                 ",.3f")),
    ("ISI units' share", lambda r: _f(None if r.get("lowered_isi_units_share") is None
                                      else 100 * r["lowered_isi_units_share"], ".1f", "%")),
    ("compared with", lambda r: r["reference_baseline"] or NA),
)


def _header(profile: en.Profile) -> list[str]:
    return [h if h != ENERGY_HEADER else f"{profile.name} {ENERGY_HEADER}"
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
            "excluded). Energy in uJ per inference. A run is compared with the plain-synapse "
            "run without activity regulariser of the same dataset and architecture (layer "
            "shapes, T, encoding), read from the results' fields; n/a: no such run.", "",
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


