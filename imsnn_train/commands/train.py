"""`imsnn train`, `imsnn evaluate`, `imsnn export` (PyTorch side; torch imported lazily)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from imsnn_lava.commands.common import add_command, add_output, add_progress, progress_enabled
from imsnn_lava.outputs import ensure_writable_dir, ensure_writable_file, writing
from imsnn_train.errors import ConfigError


def register(sub) -> None:
    p = add_command(
        sub, "train", help="train a network from a config file",
        description="Train an IMSNN or baseline SNN. Overrides are KEY=VALUE pairs with dotted "
                    "keys (e.g. train.epochs=2); --print-config shows the config they give.",
        examples=["imsnn train --config deploy/configs/mnist_dense_imsnn.toml",
                  "imsnn train --config deploy/configs/demo_imsnn.toml -o runs/demo/imsnn "
                  "--resume",
                  "imsnn train --config deploy/configs/mnist_dense_baseline.toml "
                  "train.epochs=3 train.activity_l1=3e-4 --print-config"])
    p.add_argument("--config", required=True, metavar="CONFIG.toml",
                   help="training config, e.g. deploy/configs/<name>.toml")
    add_output(p, what="the run folder (checkpoint.pt, metrics.json)", metavar="DIR",
               old=("--out",), default="runs/<config name>")
    p.add_argument("--resume", action="store_true", help="continue from the run's checkpoint")
    p.add_argument("--print-config", action="store_true",
                   help="print the effective config (overrides applied) as JSON and exit; the "
                        "output loads with --config FILE.json")
    add_progress(p)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides with dotted keys, e.g. model.isi.gate=full")
    p.set_defaults(func=_train)

    p = add_command(
        sub, "evaluate", help="accuracy and spike counts of a checkpoint (PyTorch)",
        description="Evaluate a checkpoint in PyTorch: accuracy and per-layer spike and event "
                    "counts. --fixed-point runs the quantized model: exactly the integers Lava "
                    "computes. -o writes a results JSON that imsnn report reads.",
        examples=["imsnn evaluate runs/demo/imsnn/checkpoint.pt -n 500",
                  "imsnn evaluate runs/demo/imsnn/checkpoint.pt --fixed-point -n 500 "
                  "-o runs/demo/imsnn-torch-fixed.json"])
    p.add_argument("checkpoint", metavar="CHECKPOINT.pt", help="checkpoint of imsnn train")
    p.add_argument("--dataset", choices=("mnist", "fashion-mnist"),
                   help="dataset (default: the one it was trained on)")
    p.add_argument("--split", default="test", choices=("test", "val", "train"),
                   help="which split")
    p.add_argument("-n", "--num-samples", type=int, default=0,
                   help="first N samples (0 = all)")
    p.add_argument("--fixed-point", action="store_true",
                   help="evaluate the quantized model: exactly the integers Lava computes")
    add_output(p, what="the results JSON", metavar="RESULT.json", old=("--json",))
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the run's "
                                     "train.device); the fixed-point evaluation's integers "
                                     "do not depend on it")
    add_progress(p)
    p.set_defaults(func=_evaluate)

    p = add_command(
        sub, "export", help="checkpoint -> versioned model file (HDF5) or NIR graph",
        description="Write the versioned model file (HDF5) that imsnn verify and imsnn simulate "
                    "run in Lava, with reference vectors; or a NIR graph of a plain network.",
        examples=["imsnn export runs/demo/imsnn/checkpoint.pt -o runs/demo/imsnn.h5 "
                  "--fixed-point",
                  "imsnn export runs/demo/baseline/checkpoint.pt -o baseline.nir --format nir"])
    p.add_argument("checkpoint", metavar="CHECKPOINT.pt", help="checkpoint of imsnn train")
    add_output(p, what="the model file", metavar="MODEL.h5|MODEL.nir", required=True)
    p.add_argument("--format", choices=("h5", "nir"), default="h5",
                   help="h5: imsnn model file; nir: NIR graph of a plain (non-ISI) network "
                        "(docs/nir.md)")
    p.add_argument("--fixed-point", action="store_true",
                   help="Loihi fixed point (8-bit weight mantissas, 24-bit state)")
    p.add_argument("--reference-samples", type=int, default=8,
                   help="test samples stored with their expected counts (for imsnn verify)")
    p.set_defaults(func=_export)


def _train(args: argparse.Namespace) -> int:
    from imsnn_train import config
    from imsnn_train.train import train

    cfg = config.load(args.config, args.overrides)
    if args.print_config:
        print(json.dumps(config.to_dict(cfg), indent=2, sort_keys=True))
        return 0
    out = Path(args.output) if args.output else Path("runs") / cfg.name
    ensure_writable_dir(out, "run folder")  # before loading data or training
    with writing(out, "run folder"):
        train(cfg, out, resume=args.resume, progress=progress_enabled(args))
    if int(os.environ.get("RANK", "0")) == 0:  # torchrun: the other processes say nothing
        print(f"run folder: {out}")
    return 0


def _load_eval_data(dataset: str, split: str, n: int, val_size: int):
    from imsnn_lava.data.datasets import load_split_with_ids

    return load_split_with_ids(dataset, split, val_size=val_size, limit=n)


def _evaluate(args: argparse.Namespace) -> int:
    from imsnn_train import device as devices
    from imsnn_train.checkpoint import load_network
    from imsnn_train.evaluate import evaluate, evaluate_fixed, format_table
    from imsnn_train.export import layer_specs, to_model_file

    if args.output:
        ensure_writable_file(args.output, "results JSON")
    net, cfg, _ = load_network(args.checkpoint)
    if args.device is not None:
        from imsnn_train.config import DEVICE_PATTERN

        if not DEVICE_PATTERN.fullmatch(args.device):
            raise ConfigError(f"--device {args.device!r}: expected auto, cpu, cuda or cuda:N")
    net = net.to(devices.resolve(args.device or cfg.train.device))
    dataset = args.dataset or cfg.train.dataset
    images, labels, ids = _load_eval_data(dataset, args.split, args.num_samples,
                                          cfg.train.val_size)
    progress = progress_enabled(args)
    if args.fixed_point:
        model = to_model_file(net, cfg, fixed=True)
        metrics = evaluate_fixed(model, images, labels, ids, progress=progress)
    else:
        metrics = evaluate(net, layer_specs(net), images, labels, ids, cfg.encoding,
                           progress=progress)
    title = (f"{cfg.name} on {dataset} {args.split} "
             f"({'fixed point' if args.fixed_point else 'float'})")
    print(format_table(metrics, title=title))
    if args.output:
        from imsnn_lava.analysis.result import model_meta
        from imsnn_lava.analysis.runresult import RESULT_FORMAT, RESULT_VERSION
        from imsnn_lava.outputs import write_json_atomic

        if not args.fixed_point:
            model = to_model_file(net, cfg, fixed=False)
        # what the run is (name, synapse, network, steps, encoding, L1 strength): from the
        # same model metadata `imsnn simulate -o` writes, so the report pairs both alike
        meta = model_meta(model)
        with writing(args.output, "results JSON"):
            write_json_atomic(Path(args.output), {
                "format": RESULT_FORMAT, "version": RESULT_VERSION, **meta,
                "checkpoint": args.checkpoint, "dataset": dataset, "split": args.split,
                "fixed_point": args.fixed_point,
                "precision": "fixed" if args.fixed_point else "float",
                "backend": "torch", **metrics})
    return 0


def _export(args: argparse.Namespace) -> int:
    from imsnn_lava import ir as fmt
    from imsnn_train.checkpoint import load_network
    from imsnn_train.export import attach_reference, to_model_file

    if args.reference_samples < 0:
        raise ConfigError("--reference-samples: expected >= 0")
    ensure_writable_file(args.output, "model file")
    net, cfg, payload = load_network(args.checkpoint)
    metrics = {"history": payload["history"]}
    model = to_model_file(net, cfg, fixed=args.fixed_point, metrics=metrics)
    if args.format == "nir":
        from imsnn_lava.interop.nir import save_nir, to_nir

        graph = to_nir(model)  # refuses ISI layers before anything is written
        with writing(args.output, "NIR file"):
            save_nir(graph, args.output)
        print(f"wrote {args.output} (NIR, {len(model.layers)} layers, dt "
              f"{graph.metadata['dt']:g})")
        return 0
    if args.reference_samples:
        images, labels, ids = _load_eval_data(cfg.train.dataset, "test", args.reference_samples,
                                              cfg.train.val_size)
        model = attach_reference(model, net, images, labels, ids)
    with writing(args.output, "model file"):
        fmt.write(model, args.output)
    kind = "fixed point" if args.fixed_point else "float"
    print(f"wrote {args.output} ({kind}, {len(model.layers)} layers, "
          f"{args.reference_samples} reference samples)")
    if args.fixed_point:
        for layer in model.layers:
            fx = layer.fixed
            print(f"  {layer.name}: {layer.type_name} scale {fx.scale} vth {fx.vth} "
                  f"weight exponents {sorted(set(fx.table.exp.tolist()))}")
    return 0
