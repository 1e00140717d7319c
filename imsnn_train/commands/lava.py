"""`imsnn simulate`, `imsnn merge` and `imsnn verify`: run a model file in Lava's CPU simulator.

None of them needs torch: the model file carries everything, and the agreement check runs
the numpy reference (the same integers the quantized PyTorch evaluation computes).
`imsnn simulate --shard K/N` runs the K-th of N contiguous parts of the selected samples;
`imsnn merge` joins the shards' JSON results into the result of the whole selection.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imsnn_train.errors import ImsnnError
from imsnn_train.io_checks import ensure_writable_file, write_json_atomic


def register(sub) -> None:
    p = sub.add_parser("simulate", help="run a model file in Lava (Loihi2SimCfg)",
                       description="Stream test samples through the exported network as Lava "
                                   "processes; report accuracy, per-layer spike counts, and "
                                   "agreement with the reference model on the same inputs.")
    p.add_argument("model", help="MODEL.h5 from imsnn export")
    p.add_argument("--dataset", choices=("mnist", "fashion-mnist"),
                   help="default: the model's training dataset")
    p.add_argument("--split", default="test", choices=("test", "val", "train"))
    p.add_argument("-n", "--num-samples", type=int, default=100, help="first N samples (0 = all)")
    p.add_argument("--fixed-point", action="store_true",
                   help="bit-accurate fixed_pt models (needs a file exported with --fixed-point)")
    p.add_argument("--replicas", type=int, default=None,
                   help="network copies simulated side by side in one Lava run (default: "
                        "chosen from the network size and memory: R x (input + layer sizes) "
                        "~ 250k neuron copies, replica memory under 1 GB, balanced periods)")
    p.add_argument("--shard", metavar="K/N",
                   help="run only the K-th (from 1) of N contiguous, disjoint parts of the "
                        "selected samples; join the JSON results with `imsnn merge`")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds without progress before the run is stopped as hung")
    p.add_argument("--json", help="write the result here")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_simulate)

    p = sub.add_parser("merge", help="join `imsnn simulate --shard` results into one",
                       description="Join the JSON results of the shards of one `imsnn simulate` "
                                   "selection into the result of the whole selection (the same "
                                   "predictions, counts, means and distributions as one run). "
                                   "Refuses shards of different models, datasets, splits or "
                                   "precisions, and sets with gaps or overlaps.")
    p.add_argument("shards", nargs="+", metavar="SHARD.json")
    p.add_argument("-o", "--output", required=True, metavar="OUT.json")
    p.set_defaults(func=_merge)

    p = sub.add_parser("verify", help="prove that Lava reproduces the model's reference vectors")
    p.add_argument("model")
    p.add_argument("--timeout", type=float, default=300.0)
    p.set_defaults(func=_verify)


def _read_model(path: str):
    from imsnn_lava import format as fmt

    return fmt.read(path)


def _dataset_of(model, override: str | None) -> tuple[str, int]:
    cfg = json.loads(model.config_json or "{}")
    train = cfg.get("train", {})
    return override or train.get("dataset", "mnist"), int(train.get("val_size", 5000))


def _simulate(args: argparse.Namespace) -> int:
    from imsnn_lava import runner
    from imsnn_lava.results import (
        agreement,
        all_agree,
        model_sha256,
        parse_shard,
        shard_range,
        summarize,
    )
    from imsnn_train.data.datasets import load_split_with_ids

    model = _read_model(args.model)
    if args.fixed_point and model.precision != "fixed":
        raise ImsnnError(f"{args.model}: a float model file; export with --fixed-point to "
                         "simulate in fixed point")
    if args.num_samples < 0 or (args.replicas is not None and args.replicas < 1):
        raise ImsnnError("--num-samples must be >= 0 and --replicas >= 1")
    shard = parse_shard(args.shard) if args.shard else None
    dataset, val_size = _dataset_of(model, args.dataset)
    images, labels, ids = load_split_with_ids(dataset, args.split, val_size=val_size,
                                              limit=args.num_samples)
    total = len(labels)
    start, stop = shard_range(total, *shard) if shard else (0, total)
    if stop <= start:
        raise ImsnnError(f"--shard {args.shard}: no samples (the selection has {total})")
    images, labels, ids = images[start:stop], labels[start:stop], ids[start:stop]
    if args.json:
        ensure_writable_file(args.json, "result")
    flat = images.reshape(len(images), -1)
    result = runner.run(model, fixed=args.fixed_point, images=flat, sample_ids=ids,
                        replicas=args.replicas, timeout_s=args.timeout, raster=True,
                        progress=not args.no_progress)
    ref = agreement(model, flat, ids, result, fixed=args.fixed_point)
    meta = {"model": args.model, "model_sha256": model_sha256(args.model), "dataset": dataset,
            "split": args.split, "fixed_point": args.fixed_point,
            "selection": {"num_samples_arg": args.num_samples, "total": total,
                          "start": start, "stop": stop},
            "shard": {"index": shard[0], "count": shard[1]} if shard else None}
    summary = summarize(model, result, labels, ref, ids, meta=meta)
    print(summary["table"])
    if args.json:
        write_json_atomic(args.json, summary["json"], dumps=dumps)
        print(f"result: {args.json}")
    return 0 if all_agree(summary["json"]) else 1


def _merge(args: argparse.Namespace) -> int:
    from imsnn_lava.results import all_agree, merge, table

    payloads = []
    for path in args.shards:
        try:
            payloads.append(json.loads(Path(path).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ImsnnError(f"{path}: no such result file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ImsnnError(f"{path}: not a readable JSON result ({exc})") from None
        if not isinstance(payloads[-1], dict):
            raise ImsnnError(f"{path}: not an `imsnn simulate --json` result")
    ensure_writable_file(args.output, "merged result")
    merged = merge(payloads, list(args.shards))
    print(table(merged))
    write_json_atomic(args.output, merged, dumps=dumps)
    print(f"merged {len(payloads)} shards: {args.output}")
    return 0 if all_agree(merged) else 1


def dumps(obj, level: int = 0) -> str:
    """JSON with objects and nested lists indented, lists of plain values on one line (the
    per-sample arrays stay compact)."""
    pad, inner = "  " * level, "  " * (level + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {dumps(v, level + 1)}"
                 for k, v in sorted(obj.items())]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(obj, list) and any(isinstance(x, (dict, list)) for x in obj):
        return "[\n" + ",\n".join(f"{inner}{dumps(x, level + 1)}" for x in obj) + f"\n{pad}]"
    return json.dumps(obj)




def _verify(args: argparse.Namespace) -> int:
    import numpy as np

    from imsnn_lava import runner

    model = _read_model(args.model)
    ref = model.reference
    if ref is None or len(ref.sample_ids) == 0:
        raise ImsnnError(f"{args.model}: no reference vectors (export with --reference-samples)")
    fixed = model.precision == "fixed"
    result = runner.run(model, fixed=fixed, spikes=ref.spikes, replicas=1, timeout_s=args.timeout,
                        progress=False)
    ok_layers = np.all(result.layer_counts == ref.layer_counts, axis=1)
    ok_out = np.all(result.output_counts == ref.output_counts, axis=1)
    for i, sid in enumerate(ref.sample_ids):
        status = "OK" if ok_layers[i] and ok_out[i] else "MISMATCH"
        print(f"sample {sid}: expected layer spikes {ref.layer_counts[i].tolist()}, "
              f"Lava {result.layer_counts[i].tolist()}  {status}")
    n_ok = int(np.sum(ok_layers & ok_out))
    print(f"{args.model}: {n_ok}/{len(ok_out)} reference samples reproduced exactly in Lava "
          f"({'fixed point' if fixed else 'floating point'})")
    if n_ok != len(ok_out):
        print("verify: FAILED", file=sys.stderr)
        return 1
    return 0
