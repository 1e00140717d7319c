"""The report's figures: matplotlib's object-oriented API on the Agg canvas (no pyplot, no
global backend switch), imported inside the functions."""

from __future__ import annotations

import io

from imsnn_lava.analysis import energy as en
from imsnn_lava.analysis.report.runs import Run

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


