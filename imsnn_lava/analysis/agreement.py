"""The agreement check: a run's per-sample counts against the numpy reference on the same
input spikes (numpy only)."""

from __future__ import annotations

import numpy as np

from imsnn_lava.ir.nodes import ModelFile
from imsnn_lava.numerics import reference
from imsnn_lava.numerics.counting import count_events
from imsnn_lava.numerics.encoding import encode
from imsnn_lava.numerics.events import EventCounts


def reference_counts(model: ModelFile, images: np.ndarray, sample_ids: np.ndarray, *,
                     fixed: bool, batch_size: int = 500) -> dict:
    """Per-sample counts of the numpy reference on the same input spikes: layer and output
    spike counts, predictions, and every event count (counting.count_events)."""
    enc = model.encoding
    layer_counts, out_counts, events = [], [], []
    for start in range(0, len(sample_ids), batch_size):
        sl = slice(start, start + batch_size)
        x = encode(images[sl], sample_ids[sl], num_steps=enc.num_steps, max_rate=enc.max_rate,
                   seed=enc.seed)
        res = reference.simulate(model, x, fixed=fixed, record=True)
        layer_counts.append(res.layer_counts())
        out_counts.append(res.output_counts())
        events.append(count_events(model, res.spikes, fixed=fixed,
                                            currents=res.currents))
    n_layers = len(model.layers)
    return {
        "layer_counts": np.concatenate(layer_counts) if layer_counts
        else np.zeros((0, n_layers), np.int64),
        "output_counts": np.concatenate(out_counts) if out_counts
        else np.zeros((0, model.layers[-1].n_out), np.int64),
        "events": EventCounts.concat(events) if events else None,
    }


def _events_agree(a: EventCounts | None, b: EventCounts | None, n: int) -> np.ndarray:
    """(N,) bool: every per-sample count of a equals b's."""
    if a is None or b is None:
        return np.ones(n, dtype=bool)
    ok = np.ones(n, dtype=bool)
    ok &= a.input_spikes == b.input_spikes
    for key in ("spikes", "spikes_in", "synops", "active_updates"):
        x, y = getattr(a, key), getattr(b, key)
        if x is not None and y is not None:
            ok &= np.all(x == y, axis=1)
    return ok


def agreement(model: ModelFile, images: np.ndarray, sample_ids: np.ndarray, lava_result, *,
              fixed: bool) -> dict:
    ref = reference_counts(model, images, sample_ids, fixed=fixed)
    same_counts = np.all(ref["layer_counts"] == lava_result.layer_counts, axis=1) & np.all(
        ref["output_counts"] == lava_result.output_counts, axis=1)
    ref_pred = reference.predict(ref["output_counts"])
    events = getattr(lava_result, "events", None)
    same_events = _events_agree(events, ref["events"], len(same_counts))
    same_hist = True
    if events is not None and ref["events"] is not None:
        same_hist = "isi_histograms" not in events.differences(ref["events"])
    return {"agree": same_counts, "same_prediction": ref_pred == lava_result.predictions,
            "same_events": same_events, "same_isi_histograms": bool(same_hist),
            "reference_predictions": ref_pred, **ref}


