"""The deployment pipeline behind `imsnn simulate` and `imsnn verify`, as functions: select
samples (dataset, split, shard), run them through a backend, check agreement with the numpy
reference on the same input spikes, and build the result. No torch: the model file carries
everything, and the agreement check runs the numpy reference (the same integers the quantized
PyTorch evaluation computes)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from imsnn_lava.errors import ImsnnError
from imsnn_lava.ir.nodes import ModelFile


@dataclass(frozen=True)
class Selection:
    """Which samples a run takes: the first `num_samples` (0 = all) of a split, optionally the
    K-th of N contiguous shards of them."""

    dataset: str
    split: str = "test"
    num_samples: int = 100
    shard: tuple[int, int] | None = None


def training_dataset(model: ModelFile) -> tuple[str, int]:
    """(dataset, validation size) the model was trained with, from its config."""
    cfg = json.loads(model.config_json or "{}")
    train = cfg.get("train", {})
    return train.get("dataset", "mnist"), int(train.get("val_size", 5000))


def load_selection(model: ModelFile, sel: Selection):
    """(images (N, n) uint8, labels, sample ids, selection meta) of a selection."""
    from imsnn_lava.data.datasets import load_split_with_ids
    from imsnn_lava.runtime.shards import shard_range

    if sel.num_samples < 0:
        raise ImsnnError("--num-samples must be >= 0")
    _, val_size = training_dataset(model)
    images, labels, ids = load_split_with_ids(sel.dataset, sel.split, val_size=val_size,
                                              limit=sel.num_samples)
    total = len(labels)
    start, stop = shard_range(total, *sel.shard) if sel.shard else (0, total)
    if stop <= start:
        raise ImsnnError(f"--shard {sel.shard[0]}/{sel.shard[1]}: no samples (the selection "
                         f"has {total})")
    meta = {"dataset": sel.dataset, "split": sel.split,
            "selection": {"num_samples_arg": sel.num_samples, "total": total, "start": start,
                          "stop": stop},
            "shard": {"index": sel.shard[0], "count": sel.shard[1]} if sel.shard else None}
    flat = images[start:stop].reshape(stop - start, -1)
    return flat, labels[start:stop], ids[start:stop], meta


LOWERED_BATCH = 250  # samples per batch of the count model (bounded memory)


def lowered_counts(model: ModelFile, images: np.ndarray, sample_ids: np.ndarray, *,
                   batch_size: int = LOWERED_BATCH, progress=False) -> dict:
    """The stock-lowered network's events for these samples without running it: the count
    model (backends.stock.counts) on the reference simulator's spike trains, which every run
    reproduces exactly (the agreement check). Returns the results JSON's `lowered` section.
    Each batch of `batch_size` samples is counted as one run of the stock network, as
    `--backend stock` runs it, so each batch carries the latency tail of one run (one step
    per layer at its end); the sections of the batches are merged as shards are."""
    from imsnn_lava.analysis.result import merge_lowered
    from imsnn_lava.backends.stock import counts
    from imsnn_lava.backends.stock.lower import lower
    from imsnn_lava.backends.stock.summary import lowered_summary
    from imsnn_lava.numerics import reference
    from imsnn_lava.numerics.encoding import encode
    from imsnn_lava.runtime.progress import progress_bar

    if not model.fixed:
        raise ImsnnError("lowered counts need a fixed-point model file (the stock backend "
                         "runs Lava's bit-accurate models)")
    graph = lower(model, replicas=1)
    enc = model.encoding
    parts = []
    bar = progress_bar(total=len(sample_ids), unit="sample", desc="lowered counts",
                       disable=not progress)
    try:
        for start in range(0, len(sample_ids), batch_size):
            sl = slice(start, start + batch_size)
            x = encode(images[sl], sample_ids[sl], num_steps=enc.num_steps,
                       max_rate=enc.max_rate, seed=enc.seed)
            spikes = reference.simulate(model, x, fixed=True).spikes
            parts.append(lowered_summary(graph, counts.count_model(graph, model, spikes)))
            bar.update(x.shape[1])
    finally:
        bar.close()
    return merge_lowered(parts)


def simulate(model: ModelFile, model_path: str, sel: Selection, *, fixed: bool,
             backend: str = "fused", replicas: int | None = None,
             timeout_s: float | None = None, progress=False,
             with_lowered: bool = False) -> dict:
    """Run a selection in Lava and check it against the reference: {"table", "json"}.
    with_lowered: also give the stock-lowered network's events (the stock backend counts its
    own; for the fused backend, the count model on the same samples: `lowered_counts`)."""
    from imsnn_lava import runtime
    from imsnn_lava.analysis.agreement import agreement
    from imsnn_lava.analysis.result import model_sha256, summarize

    if replicas is not None and replicas < 1:
        raise ImsnnError("--replicas must be >= 1")
    images, labels, ids, meta = load_selection(model, sel)
    result = runtime.run(model, fixed=fixed, images=images, sample_ids=ids, replicas=replicas,
                         timeout_s=timeout_s, raster=True, progress=progress, backend=backend)
    ref = agreement(model, images, ids, result, fixed=fixed)
    meta = {"model": model_path, "model_sha256": model_sha256(model_path),
            "fixed_point": fixed, "backend": backend, **meta}
    lowered = getattr(result, "lowered", None)
    if with_lowered and lowered is None:
        lowered = lowered_counts(model, images, ids, progress=progress)
    if lowered is not None:
        meta["lowered"] = lowered
    return summarize(model, result, labels, ref, ids, meta=meta)


@dataclass(frozen=True)
class Verification:
    sample_ids: np.ndarray
    expected: np.ndarray  # (n, L) layer spike counts of the reference vectors
    got: np.ndarray  # (n, L) Lava's
    ok: np.ndarray  # (n,) bool: every layer count and every output count equal

    @property
    def passed(self) -> bool:
        return bool(self.ok.all())


def verify(model: ModelFile, path: str, *, backend: str = "fused",
           timeout_s: float | None = None) -> Verification:
    """Run the file's own reference vectors in Lava and compare every count."""
    from imsnn_lava import runtime

    ref = model.reference
    if ref is None or len(ref.sample_ids) == 0:
        raise ImsnnError(f"{path}: no reference vectors (export with --reference-samples)")
    result = runtime.run(model, fixed=model.fixed, spikes=ref.spikes, replicas=1,
                         timeout_s=timeout_s, progress=False, backend=backend)
    ok = np.all(result.layer_counts == ref.layer_counts, axis=1) & np.all(
        result.output_counts == ref.output_counts, axis=1)
    return Verification(sample_ids=ref.sample_ids, expected=ref.layer_counts,
                        got=result.layer_counts, ok=ok)
