"""The report's figures: matplotlib's object-oriented API on the Agg canvas (no pyplot, no
global backend switch), imported inside the functions. Energy is in uJ per inference
everywhere; layers are compared by role (input, hidden k, output), never by name or index;
an axis whose values span more than LOG_RANGE is logarithmic."""

from __future__ import annotations

import io
import math
import os

from imsnn_lava.analysis import energy as en
from imsnn_lava.analysis.report.runs import PJ_PER_UJ, Run, role_names, same_setup

LOG_RANGE = 10.0  # values spanning more than this factor (a decade) get a log axis
ANNOTATED_RUNS = 8  # up to this many points per panel carry their name
CHANCE_FACTOR = 1.5  # a run below this x chance accuracy (1 / classes) is not drawn in a front
PANEL_W, PANEL_H = 6.2, 4.4  # inches per front panel
FAMILY_STYLE = {"plain": ("s", "#4c72b0"), "isi": ("o", "#dd8452")}
OTHER_STYLE = ("^", "#55a868")
KIND_COLORS = {"input synops": "#1f4e79", "hidden synops": "#6fa8dc",
               "neuron updates": "#dd8452", "spikes": "#55a868", "ISI lookups": "#c44e52"}


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


LABEL_CLOSE = 0.04  # labels closer than this fraction of the accuracy span alternate sides
LABEL_CHARS = 44  # longer run names are shortened in the middle on the plots (not in tables)


def _point_label(name: str) -> str:
    if len(name) <= LABEL_CHARS:
        return name
    tail = LABEL_CHARS // 3
    return name[:LABEL_CHARS - tail - 1] + "\u2026" + name[-tail:]


def _annotate(ax, names, points, log_x: bool) -> None:
    """Name every point (without the prefix all names share: the panel's title says the
    dataset and architecture). Labels do not resize the panel (a long name would squeeze it), point
    away from the nearer edge (on the axis's own scale), are clipped to the panel, and
    labels at about the same accuracy alternate above and below their points."""
    prefix = os.path.commonprefix(names)
    prefix = prefix[:prefix.rfind("_") + 1] if len(names) > 1 else ""  # e.g. "mnist_conv_"
    names = [name[len(prefix):] for name in names]
    xs = [math.log10(x) if log_x and x > 0 else x for x, _ in points]
    mid = (min(xs) + max(xs)) / 2
    ys = [y for _, y in points]
    close = LABEL_CLOSE * max(max(ys) - min(ys), 1e-9)
    below, last_y, flip = set(), None, False
    for i in sorted(range(len(points)), key=lambda i: ys[i]):
        flip = (not flip) if last_y is not None and ys[i] - last_y < close else False
        if flip:
            below.add(i)
        last_y = ys[i]
    for i, (name, (x, y)) in enumerate(zip(names, points)):
        right = xs[i] > mid
        ax.annotate(_point_label(name), (x, y), textcoords="offset points",
                    xytext=(-7 if right else 7, -13 if i in below else 6),
                    ha="right" if right else "left", fontsize=7, in_layout=False,
                    clip_on=True)


def _spans_decades(values) -> bool:
    values = [v for v in values if v is not None]
    return bool(values) and min(values) > 0 and max(values) / min(values) > LOG_RANGE


def plot_accuracy(runs: list[Run], colors) -> bytes:
    fig = _new_figure(7.5, 1.5 + 0.5 * len(runs))
    ax = fig.add_subplot()
    names = [_label(r) for r in runs][::-1]
    accs = [r.accuracy * 100 for r in runs][::-1]
    bars = ax.barh(names, accs, color=[colors[r.name] for r in runs][::-1],
                   edgecolor="black", linewidth=0.5)
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


def _role_order(runs: list[Run], has=lambda layer: True) -> list[str]:
    """The layer roles some run has, hidden layers first, the output last."""
    roles: list[str] = []
    for run in runs:
        roles += [r for r, layer in zip(run.roles(), run.layers) if has(layer) and r not in roles]
    return sorted(roles, key=lambda r: (r == "output", r))


def _by_role(run: Run) -> dict[str, dict]:
    return dict(zip(run.roles(), run.layers))


def _grouped_bars(runs: list[Run], colors, key: str, ylabel: str, title: str,
                  std_key: str | None = None, log: bool | None = None) -> bytes | None:
    roles = _role_order(runs, lambda layer: layer.get(key) is not None)
    shown = [r for r in runs if any(layer.get(key) is not None for layer in r.layers)]
    if not roles or not shown:
        return None
    fig = _new_figure(max(6.5, 1.6 + 1.3 * len(roles) * max(1, len(shown)) ** 0.5), 4.6)
    ax = fig.add_subplot()
    width = 0.8 / len(shown)
    values = []
    for k, run in enumerate(shown):
        by_role = _by_role(run)
        xs, ys, errs = [], [], []
        for j, role in enumerate(roles):
            layer = by_role.get(role)
            if layer is None or layer.get(key) is None:
                continue
            xs.append(j - 0.4 + width * (k + 0.5))
            ys.append(layer[key])
            errs.append((layer.get(std_key) or 0.0) if std_key else 0.0)
        values += ys
        bars = ax.bar(xs, ys, width, color=colors[run.name], edgecolor="black", linewidth=0.5,
                      label=_label(run), hatch="//" if run.is_baseline else None,
                      yerr=errs if std_key and any(errs) else None, capsize=3)
        ax.bar_label(bars, labels=[_short(y) for y in ys], padding=2, fontsize=7)
    ax.set_xticks(range(len(roles)), roles)
    ax.set_xlabel("layer (by role)")
    if log if log is not None else _spans_decades(values):
        ax.set_yscale("log")
        ylabel += " (log scale)"
    ax.set_ylabel(ylabel)
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


def energy_by_kind(run: Run) -> dict[str, float]:
    """uJ per inference per event kind; the input spikes' synaptic events apart."""
    rows = run.energy["layers"]
    return {"input synops": rows[0]["synop_pj"] / PJ_PER_UJ,
            "hidden synops": sum(x["synop_pj"] for x in rows[1:]) / PJ_PER_UJ,
            "neuron updates": sum(x["neuron_pj"] for x in rows) / PJ_PER_UJ,
            "spikes": sum(x["spike_pj"] for x in rows) / PJ_PER_UJ,
            "ISI lookups": sum(x["lookup_pj"] for x in rows) / PJ_PER_UJ}


def plot_energy(runs: list[Run], profile: en.Profile) -> bytes | None:
    """Where the energy goes: per run, stacked by layer role (left) and by event kind (right)."""
    costed = [r for r in runs if r.energy is not None]
    if not costed:
        return None
    from matplotlib import colormaps

    fig = _new_figure(12, 2.4 + 0.5 * len(costed))
    ax_l, ax_k = fig.subplots(1, 2, sharey=True)
    names = [_label(r) for r in costed][::-1]
    rev = costed[::-1]
    roles = _role_order(costed)
    cmap = colormaps["Set2"]
    left = [0.0] * len(rev)
    for j, role in enumerate(roles):
        rows = [dict(zip(r.roles(), r.energy["layers"])).get(role) for r in rev]
        vals = [0.0 if row is None else row["total_pj"] / PJ_PER_UJ for row in rows]
        ax_l.barh(names, vals, left=left, color=cmap(j % 8), edgecolor="black", linewidth=0.5,
                  label=role)
        left = [a + b for a, b in zip(left, vals)]
    for y, total in enumerate(left):
        ax_l.text(total, y, f" {total:,.2f}", va="center", fontsize=8)
    ax_l.set_title("by layer (role)")
    left = [0.0] * len(rev)
    kinds = [energy_by_kind(r) for r in rev]
    for kind, color in KIND_COLORS.items():
        vals = [k[kind] for k in kinds]
        if not any(vals):
            continue
        label = "synaptic events of the input spikes" if kind == "input synops" else \
            "synaptic events of hidden spikes" if kind == "hidden synops" else kind
        ax_k.barh(names, vals, left=left, color=color, edgecolor="black", linewidth=0.5,
                  label=label)
        left = [a + b for a, b in zip(left, vals)]
    for y, run in enumerate(rev):
        share = run.input_energy_share
        if share is not None:
            ax_k.text(left[y], y, f" input {share * 100:.0f}%", va="center", fontsize=8)
    ax_k.set_title("by event kind")
    for ax in (ax_l, ax_k):
        ax.set_xlabel("energy per inference (uJ)")
        ax.grid(axis="x", alpha=0.3)
        ax.margins(x=0.22)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=3,
                  frameon=False)
    fig.suptitle(f"Where the energy goes, profile '{profile.name}' (dynamic energy only)")
    return _png(fig)


def setup_groups(runs: list[Run]) -> list[list[Run]]:
    """Runs grouped by dataset and architecture (same_setup), in input order."""
    groups: list[list[Run]] = []
    for run in runs:
        for group in groups:
            if same_setup(group[0], run):
                group.append(run)
                break
        else:
            groups.append([run])
    return groups


def non_dominated(points: list[tuple[float, float]]) -> list[bool]:
    """Pareto front of (cost, accuracy): no other point is as cheap and as accurate, and
    strictly better in one of the two."""
    return [not any((c2 <= c and a2 >= a) and (c2 < c or a2 > a) for c2, a2 in points)
            for c, a in points]


def at_chance(run: Run) -> bool:
    """A collapsed run (accuracy near 1 / classes): drawn in a front, it would squeeze every
    other point into a corner; the fronts name it instead."""
    classes = run.layers[-1].get("neurons") if run.layers else None
    return bool(classes) and run.accuracy < CHANCE_FACTOR / classes


def _family_style(run: Run) -> tuple[str, str]:
    return FAMILY_STYLE.get(run.synapse or "", OTHER_STYLE)


def plot_front(runs: list[Run], cost, xlabel: str, title: str) -> bytes | None:
    """Accuracy against a cost, one panel per dataset and architecture; a line joins the runs
    of one model family (synapse) in cost order; rings mark the non-dominated runs. Runs at
    chance accuracy beside runs that learned are left out and named in the panel."""
    groups = [[r for r in g if cost(r) is not None] for g in setup_groups(runs)]
    # at chance: left out of a panel where other runs learned (a panel of only such runs
    # has nothing to squeeze and is drawn whole)
    collapsed = [[r for r in g if at_chance(r)] if not all(map(at_chance, g)) else []
                 for g in groups]
    groups = [[r for r in g if r not in c] for g, c in zip(groups, collapsed)]
    collapsed = [c for g, c in zip(groups, collapsed) if g]
    groups = [g for g in groups if g]
    if not groups:
        return None
    cols = min(2, len(groups))
    rows_n = (len(groups) + cols - 1) // cols
    fig = _new_figure(PANEL_W * cols + 0.4, PANEL_H * rows_n + 0.9)
    axes = fig.subplots(rows_n, cols, squeeze=False).ravel()
    for ax in axes[len(groups):]:
        ax.set_visible(False)
    for ax, group, left_out in zip(axes, groups, collapsed):
        if left_out:
            ax.text(0.01, 0.01, "not shown, at chance accuracy: " + ", ".join(
                f"{r.name} ({r.accuracy * 100:.1f}%)" for r in left_out),
                transform=ax.transAxes, fontsize=7, va="bottom", ha="left", in_layout=False,
                clip_on=True)
        points = [(cost(r), r.accuracy * 100) for r in group]
        front = non_dominated(points)
        for synapse in dict.fromkeys(r.synapse for r in group):
            members = sorted((r for r in group if r.synapse == synapse), key=cost)
            marker, color = _family_style(members[0])
            ax.plot([cost(r) for r in members], [r.accuracy * 100 for r in members], "-",
                    marker=marker, color=color, markersize=8, markeredgecolor="black",
                    label=members[0].family, zorder=3)
        fx = [p[0] for p, f in zip(points, front) if f]
        fy = [p[1] for p, f in zip(points, front) if f]
        ax.scatter(fx, fy, s=260, facecolors="none", edgecolors="black", linewidths=1.4,
                   label="non-dominated", zorder=4)
        log_x = _spans_decades([p[0] for p in points])
        if len(group) <= ANNOTATED_RUNS:
            _annotate(ax, [r.name for r in group], points, log_x)
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel + (" (log scale)" if log_x else ""))
        ax.set_ylabel("accuracy (%)")
        first = group[0]
        ax.set_title(f"{first.dataset or 'dataset n/a'}, {first.architecture()}", fontsize=10)
        ax.grid(alpha=0.3, which="both" if log_x else "major")
        ax.margins(x=0.3, y=0.3)
        if not log_x and ax.get_xlim()[0] < 0:
            ax.set_xlim(left=0)  # counts and energies are >= 0
    handles = {}
    for ax in axes[:len(groups)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", fontsize=8,
               ncols=len(handles), frameon=False)
    fig.suptitle(title)
    return _png(fig)


def plot_isi(runs: list[Run], colors) -> bytes | None:
    roles = _role_order(runs, lambda layer: layer.get("isi_histogram"))
    if not roles:
        return None
    n = len(roles)
    fig = _new_figure(7.0, 0.6 + 3.0 * n)
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, role in zip(axes, roles):
        width = 0
        for run in runs:
            layer = _by_role(run).get(role)
            hist = None if layer is None else layer.get("isi_histogram")
            if not hist:
                continue
            width = max(width, len(hist))
            total = sum(hist) or 1
            xs = list(range(1, len(hist) + 1))
            ax.step(xs, [h / total for h in hist], where="mid", color=colors[run.name],
                    linestyle="--" if run.is_baseline else "-", marker="o", markersize=3,
                    label=f"{_label(run)} ({sum(hist):,} spikes)")
        ticks = list(range(1, width + 1))
        ax.set_xticks(ticks, [str(t) for t in ticks[:-1]] + [f"≥{width}"])
        ax.set_title(f"{role}: interspike intervals of the arriving (presynaptic) spikes",
                     fontsize=10)
        ax.set_xlabel(f"ISI (steps); the last bin, ≥{width} = phi_max, holds every longer "
                      "interval (clipped)", fontsize=9)
        ax.set_ylabel("fraction of spikes")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


def _class_name(dataset: str | None, k) -> str:
    if k is None:
        return "?"
    try:
        from imsnn_lava.data.datasets import class_names

        names = class_names(dataset) if dataset else []
    except Exception:  # noqa: BLE001 - an unknown dataset name: the number alone
        names = []
    return f"{k} ({names[k]})" if 0 <= k < len(names) and names[k] != str(k) else str(k)


def raster_classes(run: Run) -> tuple[int | None, int | None]:
    """(true, predicted) class of the rastered sample: from the raster itself, else the first
    sample's (the raster is the first sample's, as imsnn simulate records it)."""
    raster = run.data.get("raster") or {}
    label, pred = raster.get("label"), raster.get("prediction")
    labels, preds = run.data.get("labels") or [], run.data.get("predictions") or []
    ids = (run.data.get("per_sample") or {}).get("sample_ids") or []
    first = not ids or ids[0] == raster.get("sample_id")
    if label is None and labels and first:
        label = labels[0]
    if pred is None and preds and first:
        pred = preds[0]
    return label, pred


def plot_raster(run: Run, colors) -> bytes | None:
    raster = run.data.get("raster")
    if not raster or not raster.get("layers"):
        return None
    rls = raster["layers"]
    steps = run.num_steps
    roles = ["input"] + role_names(len(rls) - 1)
    fig = _new_figure(7.5, 0.9 + 1.9 * len(rls))
    axes = fig.subplots(len(rls), 1, sharex=True, squeeze=False)[:, 0]
    for ax, rl, role in zip(axes, rls, roles):
        n = rl.get("neurons")
        rows = n or (max(rl["i"]) + 1 if rl["i"] else 1)
        size = 18 if rows <= 50 else 6 if rows <= 300 else 2.5  # a dot about one row tall
        ax.scatter(rl["t"], rl["i"], s=size, marker="s", color=colors[run.name],
                   linewidths=0)
        if n:
            ax.set_ylim(-0.5, n - 0.5)
        name = "" if rl["name"] == role else f"\n({rl['name']})"
        ax.set_ylabel(f"{role}{name}\nneuron", fontsize=8)
        ax.text(1.0, 1.0, f"{len(rl['t'])} spikes", transform=ax.transAxes, ha="right",
                va="bottom", fontsize=8)
        ax.grid(alpha=0.2)
    if steps:
        axes[-1].set_xlim(-0.5, steps - 0.5)
    axes[-1].set_xlabel("time step")
    sid = raster.get("sample_id")
    label, pred = raster_classes(run)
    verdict = "" if label is None or pred is None else (
        " (correct)" if label == pred else " (wrong)")
    fig.suptitle(f"{_label(run)}: sample {sid if sid is not None else '?'}, true class "
                 f"{_class_name(run.dataset, label)}, predicted "
                 f"{_class_name(run.dataset, pred)}{verdict}", fontsize=10)
    return _png(fig)

