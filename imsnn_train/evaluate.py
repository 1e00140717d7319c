"""Evaluation: accuracy and per-layer event counts, in float (PyTorch) or in Loihi fixed point.

The fixed-point evaluation runs the integer numpy reference (imsnn_lava.numerics.reference) on the
exported model: exactly the integers Lava's fixed-point models compute.
"""

from __future__ import annotations

import numpy as np
import torch

from imsnn_lava import ir as fmt
from imsnn_lava.analysis.layer_stats import EventTally
from imsnn_lava.numerics import reference
from imsnn_lava.numerics.encoding import encode
from imsnn_lava.runtime.progress import progress_bar
from imsnn_train.config import EncodingConfig
from imsnn_train.network import Network


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


def _finish(tally: EventTally, preds: list, labels: np.ndarray) -> dict:
    pred = np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)
    layers = tally.summary()
    acc = float((pred == labels).mean()) if len(labels) else 0.0
    return {
        "accuracy": acc,
        "num_samples": int(len(labels)),
        "layers": layers,
        "hidden_spikes_per_sample": float(sum(r["spikes_per_sample"] for r in layers[1:-1])),
        "total_spikes_per_sample": float(sum(r["spikes_per_sample"] for r in layers[1:])),
        "synops_per_sample": float(sum(r["synops_per_sample"] for r in layers[1:])),
        "predictions": pred.tolist(),
    }


def evaluate(net: Network, specs: list[fmt.LayerSpec], images: np.ndarray, labels: np.ndarray,
             sample_ids: np.ndarray, enc: EncodingConfig, *, batch_size: int = 500,
             progress: bool = True, desc: str = "eval") -> dict:
    """Float evaluation with PyTorch (the model in its own dtype, on its own device)."""
    net.eval()
    param = next(net.parameters())
    dtype, device = param.dtype, param.device
    tally = EventTally(specs, enc.num_steps)
    preds = []
    bar = progress_bar(total=len(labels), desc=desc, unit="sample", disable=not progress,
                       leave=False)
    with torch.no_grad():
        for sl in _batches(len(labels), batch_size):
            x = encode(images[sl], sample_ids[sl], num_steps=enc.num_steps,
                       max_rate=enc.max_rate, seed=enc.seed)
            out = net(torch.from_numpy(x).to(device=device, dtype=dtype))
            tally.add_spikes([s.cpu().numpy() for s in out.spikes])
            preds.append(out.predictions().cpu().numpy())
            bar.update(sl.stop - sl.start)
    bar.close()
    return _finish(tally, preds, np.asarray(labels))


def evaluate_fixed(model: fmt.ModelFile, images: np.ndarray, labels: np.ndarray,
                   sample_ids: np.ndarray, *, batch_size: int = 500, progress: bool = True,
                   desc: str = "eval fixed") -> dict:
    """Fixed-point evaluation: the integer reference on the exported model."""
    if model.precision != "fixed":
        raise ValueError("evaluate_fixed needs a fixed-point model")
    enc = model.encoding
    tally = EventTally(model.layers, enc.num_steps, fixed=True)
    preds = []
    bar = progress_bar(total=len(labels), desc=desc, unit="sample", disable=not progress,
                       leave=False)
    for sl in _batches(len(labels), batch_size):
        x = encode(images[sl], sample_ids[sl], num_steps=enc.num_steps, max_rate=enc.max_rate,
                   seed=enc.seed)
        res = reference.simulate(model, x, fixed=True, record=True)
        tally.add_spikes(res.spikes, currents=res.currents)
        preds.append(res.predictions())
        bar.update(sl.stop - sl.start)
    bar.close()
    return _finish(tally, preds, np.asarray(labels))


def format_table(metrics: dict, title: str = "") -> str:
    """A plain-text summary table of one evaluation."""
    lines = []
    if title:
        lines.append(title)
    lines.append(f"accuracy {metrics['accuracy'] * 100:.2f}% on {metrics['num_samples']} samples")
    lines.append(f"{'layer':<10}{'neurons':>9}{'spikes/sample':>15}{'spikes/neuron':>15}"
                 f"{'synops/sample':>15}")
    for row in metrics["layers"]:
        syn = row.get("synops_per_sample")
        lines.append(f"{row['name']:<10}{row['neurons']:>9}{row['spikes_per_sample']:>15.2f}"
                     f"{row['spikes_per_neuron']:>15.4f}"
                     f"{'' if syn is None else f'{syn:.1f}':>15}")
    return "\n".join(lines)
