"""`imsnn simulate` and `imsnn verify`: run a model file in Lava's CPU simulator.

Neither command needs torch: the model file carries everything, and the agreement check runs
the numpy reference (the same integers the quantized PyTorch evaluation computes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imsnn_train.errors import ImsnnError


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
    p.add_argument("--replicas", type=int, default=1,
                   help="network copies simulated side by side in one Lava run")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds without progress before the run is stopped as hung")
    p.add_argument("--json", help="write the result here")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_simulate)

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
    import numpy as np

    from imsnn_lava import runner
    from imsnn_lava.results import agreement, summarize
    from imsnn_train.data.datasets import load_split_with_ids

    model = _read_model(args.model)
    if args.fixed_point and model.precision != "fixed":
        raise ImsnnError(f"{args.model}: a float model file; export with --fixed-point to "
                         "simulate in fixed point")
    if args.num_samples < 0 or args.replicas < 1:
        raise ImsnnError("--num-samples must be >= 0 and --replicas >= 1")
    dataset, val_size = _dataset_of(model, args.dataset)
    images, labels, ids = load_split_with_ids(dataset, args.split, val_size=val_size,
                                              limit=args.num_samples)
    if args.json:
        _check_writable(Path(args.json))
    flat = images.reshape(len(images), -1)
    result = runner.run(model, fixed=args.fixed_point, images=flat, sample_ids=ids,
                        replicas=args.replicas, timeout_s=args.timeout,
                        progress=not args.no_progress)
    ref = agreement(model, flat, ids, result, fixed=args.fixed_point)
    summary = summarize(model, result, labels, ref)
    print(summary["table"])
    if args.json:
        from imsnn_train.train import write_json_atomic

        payload = {"model": args.model, "dataset": dataset, "split": args.split,
                   "fixed_point": args.fixed_point, "replicas": args.replicas,
                   **summary["json"]}
        write_json_atomic(Path(args.json), payload)
        print(f"result: {args.json}")
    return 0 if np.all(ref["agree"]) else 1


def _check_writable(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".{path.name}.probe"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ImsnnError(f"{path}: cannot write the result there ({exc.strerror})") from None


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
