"""RunResult: the typed, versioned result of one run (simulate, evaluate --json, merge), read
and validated once, and everything computed from it: summary fields, table, merging shards.

The JSON of `imsnn simulate --json` keeps the per-sample arrays (`per_sample`, `predictions`,
`labels`) next to the summary; every summary field is recomputed from them by `finish`, so the
results of disjoint shards of a sample selection merge (`merge`) into exactly what one run of
the whole selection gives (timings and replica counts aside). numpy only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from imsnn_lava.analysis.layer_stats import LayerInfo, input_row, layer_rows
from imsnn_lava.analysis.runresult import RESULT_FORMAT, RESULT_VERSION
from imsnn_lava.errors import ImsnnError
from imsnn_lava.ir.nodes import ModelFile
from imsnn_lava.numerics.events import PER_SAMPLE_KEYS, EventCounts

DEFAULT_PROFILE = "loihi"
PJ_PER_UJ = 1e6

# fields that legitimately differ between a merged result and the unsharded run
RUN_FIELDS = ("wall_s", "run_s", "ms_per_step", "samples_per_s", "replicas", "shard", "shards")


# ---------------------------------------------------------------------------------------------
# the JSON payload


def model_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_meta(model: ModelFile) -> dict:
    """What a run is, from its model file: name, synapse, gate and activity_l1 (from the
    model's config JSON), the network's layers, T and the encoding. The report pairs runs with
    their baselines on these fields (never on names)."""
    try:
        cfg = json.loads(model.config_json or "{}")
    except json.JSONDecodeError:
        cfg = {}
    model_cfg, train_cfg = cfg.get("model") or {}, cfg.get("train") or {}
    synapse = model_cfg.get("synapse")
    if synapse is None:
        kinds = {layer.synapse for layer in model.layers}
        synapse = kinds.pop() if len(kinds) == 1 else "mixed"
    enc = model.encoding
    meta = {"synapse": synapse,
            "model_precision": model.precision,
            "num_steps": model.num_steps,
            "encoding": {"num_steps": int(enc.num_steps), "max_rate": float(enc.max_rate),
                         "seed": int(enc.seed)},
            "network": {"input_neurons": int(np.prod(model.input_shape)),
                        "layers": [LayerInfo.of(layer).to_dict() for layer in model.layers]}}
    if cfg.get("name"):
        meta["name"] = str(cfg["name"])
    if "activity_l1" in train_cfg:  # absent: a model file not written by imsnn export
        meta["activity_l1"] = float(train_cfg["activity_l1"])
    if synapse != "plain" and (model_cfg.get("isi") or {}).get("gate"):
        meta["gate"] = str(model_cfg["isi"]["gate"])
    return meta


def raster_json(model: ModelFile, raster: list[np.ndarray], sample_id: int) -> dict:
    """The first sample's spikes, as report.py draws them: per layer (t, i) of every spike."""
    names = ["input"] + [layer.name for layer in model.layers]
    layers = []
    for name, bits in zip(names, raster):
        t, i = np.nonzero(np.asarray(bits, dtype=bool))
        layers.append({"name": name, "neurons": int(bits.shape[1]), "t": t.tolist(),
                       "i": i.tolist()})
    return {"sample_id": int(sample_id), "layers": layers}


def build_payload(model: ModelFile, lava_result, labels: np.ndarray, ref: dict,
                  sample_ids: np.ndarray, *, meta: dict | None = None) -> dict:
    """The JSON-ready result of one run (per-sample arrays + every summary field)."""
    labels = np.asarray(labels)
    sample_ids = np.asarray(sample_ids)
    ev = lava_result.events
    names = [layer.name for layer in model.layers]
    per_sample = {
        "sample_ids": sample_ids.tolist(),
        "reference_predictions": np.asarray(ref["reference_predictions"]).tolist(),
        "agree": np.asarray(ref["agree"]).astype(bool).tolist(),
        "same_events": np.asarray(ref.get("same_events", ref["agree"])).astype(bool).tolist(),
        "input_spikes": ev.input_spikes.tolist(),
        "layers": [{"name": name, **{key: getattr(ev, key)[:, k].tolist()
                                     for key in PER_SAMPLE_KEYS}}
                   for k, name in enumerate(names)],
    }
    hists = [None if h is None else h.tolist() for h in (ev.isi_histograms or [None] * len(names))]
    payload = {**model_meta(model), "fixed_point": bool(lava_result.fixed),
               "precision": "fixed" if lava_result.fixed else "float", **(meta or {})}
    payload.update({
        "replicas": int(lava_result.replicas),
        "wall_s": float(lava_result.wall_s),
        "run_s": float(lava_result.run_s),
        "ms_per_step": float(lava_result.ms_per_step),
        "predictions": np.asarray(lava_result.predictions).tolist(),
        "labels": labels.tolist(),
        "per_sample": per_sample,
        "isi_histograms": hists,
        "same_isi_histograms": bool(ref.get("same_isi_histograms", True)),
    })
    if lava_result.raster is not None and len(sample_ids):
        payload["raster"] = raster_json(model, lava_result.raster, int(sample_ids[0]))
        # the rastered sample is the first one: its true and predicted class
        payload["raster"].update(label=int(labels[0]),
                                 prediction=int(np.asarray(lava_result.predictions)[0]))
    return finish(payload)


def counts_from_payload(payload: dict) -> EventCounts:
    ps = payload["per_sample"]
    infos = [LayerInfo.from_dict(d) for d in payload["network"]["layers"]]
    n = len(ps["input_spikes"])

    def col(key):
        if not infos:
            return np.zeros((n, 0), np.int64)
        return np.array([layer[key] for layer in ps["layers"]], dtype=np.int64).reshape(
            len(infos), n).T

    hists = payload.get("isi_histograms") or [None] * len(infos)
    return EventCounts(
        input_spikes=np.array(ps["input_spikes"], dtype=np.int64),
        spikes=col("spikes"), spikes_in=col("spikes_in"), synops=col("synops"),
        active_updates=col("active_updates"),
        neuron_updates=np.array([payload["num_steps"] * x.neurons for x in infos], np.int64),
        isi=[x.synapse == "isi" for x in infos],
        isi_histograms=[None if h is None else np.array(h, dtype=np.int64) for h in hists])


def finish(payload: dict) -> dict:
    """(Re)compute every summary field of a payload from its per-sample arrays."""
    counts = counts_from_payload(payload)
    ps = payload["per_sample"]
    infos = [LayerInfo.from_dict(d) for d in payload["network"]["layers"]]
    pred = np.asarray(payload["predictions"], dtype=np.int64)
    labels = np.asarray(payload["labels"], dtype=np.int64)
    ref_pred = np.asarray(ps["reference_predictions"], dtype=np.int64)
    n = len(labels)

    def mean(x) -> float:
        return float(np.mean(x)) if n else 1.0

    inp = input_row(counts, payload["network"]["input_neurons"])
    inp.pop("name")
    out = dict(payload)
    out.update({
        "format": RESULT_FORMAT,
        "version": RESULT_VERSION,
        "num_samples": n,
        "accuracy": float(np.mean(pred == labels)) if n else 0.0,
        "reference_accuracy": float(np.mean(ref_pred == labels)) if n else 0.0,
        "agreement_counts": mean(np.asarray(ps["agree"], dtype=bool)),
        "agreement_predictions": mean(ref_pred == pred),
        "agreement_events": mean(np.asarray(ps["same_events"], dtype=bool)),
        "input": inp,
        "layers": layer_rows(counts, infos),
    })
    run_s = float(out.get("run_s", 0.0))
    out["samples_per_s"] = n / run_s if run_s > 0 else 0.0
    return out


def all_agree(payload: dict) -> bool:
    ps = payload["per_sample"]
    return bool(all(ps["agree"]) and all(ps["same_events"])
                and payload.get("same_isi_histograms", True))


# ---------------------------------------------------------------------------------------------
# the printed table


def _fmt(v: float) -> str:
    return f"{v:,.1f}" if abs(v) < 1e6 else f"{v:,.0f}"


def table(payload: dict) -> str:
    """The printable summary of a payload: per layer, every count's mean and p5/p50/p95."""
    n = payload["num_samples"]
    prec = "fixed-point" if payload.get("fixed_point") or payload.get("precision") == "fixed" \
        else "floating-point"
    name = payload.get("name") or Path(payload.get("model") or "model").stem
    lines = [f"Lava {prec} simulation of {name}: {n} samples x {payload['num_steps']} steps"
             f" (R = {payload.get('replicas')})",
             f"{'layer':<10}{'count':<18}{'mean':>13}{'p5':>13}{'p50':>13}{'p95':>13}"]

    def row(layer: str, label: str, r: dict, key: str):
        m = r.get(f"{key}_per_sample")
        if m is None:
            return
        d = r.get(f"{key}_per_sample_distribution") or {}
        cells = [_fmt(m)] + [_fmt(d[p]) if p in d else "" for p in ("p5", "p50", "p95")]
        lines.append(f"{layer:<10}{label:<18}" + "".join(f"{c:>13}" for c in cells))

    row("input", "spikes", payload["input"], "spikes")
    for r in payload["layers"]:
        first = r["name"]
        for label, key in (("spikes in", "spikes_in"), ("synops", "synops"),
                           ("ISI lookups", "lookups"), ("active updates", "active_updates"),
                           ("idle updates", "idle_updates"), ("spikes", "spikes")):
            before = len(lines)
            row(first, label, r, key)
            if len(lines) > before:
                first = ""
        hist = r.get("isi_histogram")
        if hist:
            total = sum(hist) or 1
            mode = int(np.argmax(hist)) + 1
            lines.append(f"{'':<10}ISI bins 1..{len(hist)}: mode {mode}, "
                         f"{100 * hist[-1] / total:.1f}% at phi_max")
        lines.append(f"{'':<10}neuron updates/sample {r['neuron_updates_per_sample']:,}; "
                     f"{r['synapse']} {r['kind']}, fan-in {r['fan_in']}")
    lines += _energy_lines(payload)
    lines += [
        f"accuracy: Lava {payload['accuracy'] * 100:.2f}%   reference (PyTorch semantics) "
        f"{payload['reference_accuracy'] * 100:.2f}%",
        f"agreement with the reference: predictions {payload['agreement_predictions'] * 100:.2f}"
        f"%, per-layer spike counts {payload['agreement_counts'] * 100:.2f}%, all event counts "
        f"{payload['agreement_events'] * 100:.2f}% of samples"
        + ("" if payload.get("same_isi_histograms", True) else "; ISI histograms DIFFER"),
        f"wall time {payload['wall_s']:.1f} s, simulation {payload.get('run_s', 0.0):.1f} s "
        f"({payload['ms_per_step']:.2f} ms per step, {payload.get('samples_per_s', 0.0):.1f} "
        "samples/s)",
    ]
    return "\n".join(lines)


def _energy_lines(payload: dict) -> list[str]:
    """Energy per inference under the Loihi profile, of this network and, where the result
    carries them, of its stock-lowered form (what a neurocore would run)."""
    from imsnn_lava.analysis import energy as en

    prof = en.load_profile(DEFAULT_PROFILE)
    fused = en.energy_per_inference(payload["layers"], prof)["total_pj"] / PJ_PER_UJ
    lines = [f"energy ({prof.name}): {fused:,.3f} uJ per inference from the layers' own events "
             "(the ISI bookkeeping not costed)"]
    low = payload.get("lowered")
    if low:
        e = en.energy_per_inference(low["layers"], prof)
        by_role: dict[str, float] = {}
        for row, cost in zip(low["layers"], e["layers"]):
            by_role[row["role"]] = by_role.get(row["role"], 0.0) + cost["total_pj"]
        total = e["total_pj"] / PJ_PER_UJ
        units = by_role.get("isi-unit", 0.0) / max(e["total_pj"], 1e-300)
        lines.append(f"energy ({prof.name}) lowered onto stock processes: {total:,.3f} uJ per "
                     f"inference ({low['neurons']:,} neurons, {low['processes']} processes; "
                     f"ISI units {100 * units:.1f}% of it)")
    return lines


def summarize(model: ModelFile, lava_result, labels: np.ndarray, ref: dict,
              sample_ids: np.ndarray | None = None, meta: dict | None = None) -> dict:
    """A printable table and a JSON-ready dict."""
    if sample_ids is None:
        sample_ids = np.arange(len(labels))
    data = build_payload(model, lava_result, labels, ref, sample_ids, meta=meta)
    return {"table": table(data), "json": data}


# what must be equal across the shards of one selection
IDENTITY = ("model_sha256", "dataset", "split", "fixed_point", "precision", "model_precision",
            "num_steps", "network")


def merge(payloads: list[dict], sources: list[str] | None = None) -> dict:
    """Join the results of shards of one selection into the result of the whole selection.

    Refuses (ImsnnError) shards of different models, datasets, splits or precisions, of
    different selections, and sets with gaps or overlaps."""
    sources = sources or [f"shard {i + 1}" for i in range(len(payloads))]
    if not payloads:
        raise ImsnnError("merge: no shard results given")
    for src, p in zip(sources, payloads):
        for key in ("per_sample", "selection", "predictions", "labels", "network"):
            if key not in p:
                raise ImsnnError(f"{src}: field '{key}' is missing (not an `imsnn simulate "
                                 "--json` result of this version)")
    first = payloads[0]
    for src, p in zip(sources[1:], payloads[1:]):
        for key in IDENTITY + ("selection",):
            a, b = first.get(key), p.get(key)
            if key == "selection" and a and b:
                a = {k: v for k, v in a.items() if k not in ("start", "stop")}
                b = {k: v for k, v in b.items() if k not in ("start", "stop")}
            if a != b:
                raise ImsnnError(f"{src}: '{key}' differs from {sources[0]}'s ({b!r} != "
                                 f"{a!r}): not shards of one run")
    order = sorted(range(len(payloads)), key=lambda i: payloads[i]["selection"]["start"])
    total = first["selection"]["total"]
    pos = 0
    for i in order:
        sel = payloads[i]["selection"]
        if sel["start"] > pos:
            raise ImsnnError(f"samples {pos}..{sel['start'] - 1} of the selection are in no "
                             "shard (a gap)")
        if sel["start"] < pos:
            raise ImsnnError(f"{sources[i]}: samples {sel['start']}..{pos - 1} are in two "
                             "shards (an overlap)")
        if len(payloads[i]["labels"]) != sel["stop"] - sel["start"]:
            raise ImsnnError(f"{sources[i]}: holds {len(payloads[i]['labels'])} samples, its "
                             f"selection {sel['start']}..{sel['stop']} says otherwise")
        pos = sel["stop"]
    if pos != total:
        raise ImsnnError(f"samples {pos}..{total - 1} of the selection are in no shard (a gap)")
    parts = [payloads[i] for i in order]
    merged = {k: v for k, v in parts[0].items() if k not in ("shard",)}
    merged["selection"] = {**parts[0]["selection"], "start": 0, "stop": total}
    merged["predictions"] = [x for p in parts for x in p["predictions"]]
    merged["labels"] = [x for p in parts for x in p["labels"]]
    ps = {}
    for key in ("sample_ids", "reference_predictions", "agree", "same_events", "input_spikes"):
        ps[key] = [x for p in parts for x in p["per_sample"][key]]
    ps["layers"] = []
    for k, layer in enumerate(parts[0]["per_sample"]["layers"]):
        row = {"name": layer["name"]}
        for key in PER_SAMPLE_KEYS:
            row[key] = [x for p in parts for x in p["per_sample"]["layers"][k][key]]
        ps["layers"].append(row)
    merged["per_sample"] = ps
    hists = []
    for k, h in enumerate(parts[0].get("isi_histograms") or []):
        hists.append(None if h is None else [int(sum(v)) for v in zip(
            *(p["isi_histograms"][k] for p in parts))])
    merged["isi_histograms"] = hists
    merged["same_isi_histograms"] = all(p.get("same_isi_histograms", True) for p in parts)
    merged["wall_s"] = float(sum(p["wall_s"] for p in parts))
    merged["run_s"] = float(sum(p.get("run_s", 0.0) for p in parts))
    steps = sum(p["run_s"] * 1000.0 / p["ms_per_step"] for p in parts
                if p.get("ms_per_step") and p.get("run_s"))
    merged["ms_per_step"] = 1000.0 * merged["run_s"] / steps if steps else 0.0
    merged["replicas"] = parts[0]["replicas"]
    merged["shards"] = [{"file": sources[i], "shard": payloads[i].get("shard"),
                         "replicas": payloads[i].get("replicas"),
                         "wall_s": payloads[i].get("wall_s")} for i in order]
    if "raster" in parts[0]:
        merged["raster"] = parts[0]["raster"]
    else:
        merged.pop("raster", None)
    if any("lowered" in p for p in parts):
        if not all("lowered" in p for p in parts):
            raise ImsnnError("some shards carry lowered counts and some do not: run every "
                             "shard with the same options")
        merged["lowered"] = merge_lowered([p["lowered"] for p in parts])
    return finish(merged)


def merge_lowered(parts: list[dict]) -> dict | None:
    """The `lowered` sections of disjoint sample sets as one: per-sample means weighted by
    the samples each holds (exact for means)."""
    if not parts:
        return None
    first = parts[0]
    names = [r["name"] for r in first["layers"]]
    for p in parts[1:]:
        if [r["name"] for r in p["layers"]] != names:
            raise ImsnnError("lowered counts of different lowered networks cannot be merged")
    total = sum(int(p["num_samples"]) for p in parts)
    rows = []
    for k, row in enumerate(first["layers"]):
        merged = dict(row)
        for key, value in row.items():
            if key.endswith("_per_sample") and isinstance(value, (int, float)):
                merged[key] = sum(p["layers"][k][key] * int(p["num_samples"])
                                  for p in parts) / max(total, 1)
        rows.append(merged)
    return {**first, "num_samples": total, "layers": rows}
