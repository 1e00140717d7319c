"""Simulation results: agreement with the reference model, summary table, JSON (numpy only)."""

from __future__ import annotations

import numpy as np

from imsnn_lava import reference
from imsnn_lava.encoding import encode
from imsnn_lava.format import ModelFile


def reference_counts(model: ModelFile, images: np.ndarray, sample_ids: np.ndarray, *,
                     fixed: bool, batch_size: int = 500) -> dict:
    """Per-sample layer and output counts of the numpy reference on the same input spikes."""
    enc = model.encoding
    layer_counts, out_counts = [], []
    for start in range(0, len(sample_ids), batch_size):
        sl = slice(start, start + batch_size)
        x = encode(images[sl], sample_ids[sl], num_steps=enc.num_steps, max_rate=enc.max_rate,
                   seed=enc.seed)
        res = reference.simulate(model, x, fixed=fixed)
        layer_counts.append(res.layer_counts())
        out_counts.append(res.output_counts())
    n_layers = len(model.layers)
    return {
        "layer_counts": np.concatenate(layer_counts) if layer_counts
        else np.zeros((0, n_layers), np.int64),
        "output_counts": np.concatenate(out_counts) if out_counts
        else np.zeros((0, model.layers[-1].n_out), np.int64),
    }


def agreement(model: ModelFile, images: np.ndarray, sample_ids: np.ndarray, lava_result, *,
              fixed: bool) -> dict:
    ref = reference_counts(model, images, sample_ids, fixed=fixed)
    same_counts = np.all(ref["layer_counts"] == lava_result.layer_counts, axis=1) & np.all(
        ref["output_counts"] == lava_result.output_counts, axis=1)
    ref_pred = reference.predict(ref["output_counts"])
    return {"agree": same_counts, "same_prediction": ref_pred == lava_result.predictions,
            "reference_predictions": ref_pred, **ref}


def summarize(model: ModelFile, lava_result, labels: np.ndarray, ref: dict) -> dict:
    """A printable table and a JSON-ready dict."""
    labels = np.asarray(labels)
    n = len(labels)
    acc = float(np.mean(lava_result.predictions == labels)) if n else 0.0
    ref_acc = float(np.mean(ref["reference_predictions"] == labels)) if n else 0.0
    names = [layer.name for layer in model.layers]
    sizes = [layer.n_out for layer in model.layers]
    counts = lava_result.layer_counts
    rows = []
    for i, (name, size) in enumerate(zip(names, sizes)):
        col = counts[:, i] if n else np.zeros(0)
        rows.append({"name": name, "neurons": int(size),
                     "spikes_per_sample": float(col.mean()) if n else 0.0,
                     "spikes_per_sample_std": float(col.std()) if n else 0.0,
                     "spikes_per_neuron": float(col.mean() / size) if n else 0.0})
    data = {
        "num_samples": n,
        "num_steps": model.num_steps,
        "accuracy": acc,
        "reference_accuracy": ref_acc,
        "agreement_counts": float(np.mean(ref["agree"])) if n else 1.0,
        "agreement_predictions": float(np.mean(ref["same_prediction"])) if n else 1.0,
        "layers": rows,
        "wall_s": float(lava_result.wall_s),
        "ms_per_step": float(lava_result.ms_per_step),
        "predictions": lava_result.predictions.tolist(),
        "labels": labels.tolist(),
    }
    lines = [
        f"Lava {'fixed' if model.precision == 'fixed' else 'float'}-model simulation: "
        f"{n} samples x {model.num_steps} steps",
        f"{'layer':<10}{'neurons':>9}{'spikes/sample':>15}{'std':>9}{'spikes/neuron':>15}",
    ]
    for r in rows:
        lines.append(f"{r['name']:<10}{r['neurons']:>9}{r['spikes_per_sample']:>15.2f}"
                     f"{r['spikes_per_sample_std']:>9.2f}{r['spikes_per_neuron']:>15.4f}")
    lines += [
        f"accuracy: Lava {acc * 100:.2f}%   reference (PyTorch semantics) {ref_acc * 100:.2f}%",
        f"agreement with the reference: predictions {data['agreement_predictions'] * 100:.2f}%,"
        f" per-layer spike counts {data['agreement_counts'] * 100:.2f}% of samples",
        f"wall time {data['wall_s']:.1f} s ({data['ms_per_step']:.2f} ms per step)",
    ]
    return {"table": "\n".join(lines), "json": data}
