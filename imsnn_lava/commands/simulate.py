"""`imsnn simulate`: stream test samples through a model file in Lava's CPU simulator and
check every sample against the numpy reference; `--shard K/N` runs the K-th of N contiguous
parts of the selection (join them with `imsnn merge`)."""

from __future__ import annotations

import argparse


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
    p.add_argument("--backend", choices=("fused", "stock"), default="fused",
                   help="fused: imsnn's ISI synapse processes (CPU only); stock: every ISI "
                        "layer lowered onto Lava's own processes, as a neurocore would run it "
                        "(fixed point only; slower)")
    p.add_argument("--replicas", type=int, default=None,
                   help="network copies simulated side by side in one Lava run (default: "
                        "chosen from the network size and memory: R x (input + layer sizes) "
                        "~ 250k neuron copies, replica memory under 1 GB, balanced periods)")
    p.add_argument("--shard", metavar="K/N",
                   help="run only the K-th (from 1) of N contiguous, disjoint parts of the "
                        "selected samples; join the JSON results with `imsnn merge`")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds without progress before the run is stopped as hung")
    p.add_argument("--lowered-counts", action="store_true",
                   help="also count the events of the stock-lowered network (what a neurocore "
                        "would run) and cost them; the stock backend always does, the fused one "
                        "derives them with the count model (fixed point only; slower)")
    p.add_argument("--json", help="write the result here")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from imsnn_lava import ir, pipeline
    from imsnn_lava.analysis.result import all_agree
    from imsnn_lava.analysis.runresult import dumps
    from imsnn_lava.errors import ImsnnError
    from imsnn_lava.outputs import ensure_writable_file, write_json_atomic
    from imsnn_lava.runtime.shards import parse_shard

    model = ir.read(args.model)
    if args.fixed_point and model.precision != "fixed":
        raise ImsnnError(f"{args.model}: a float model file; export with --fixed-point to "
                         "simulate in fixed point")
    if (args.backend == "stock" or args.lowered_counts) and not args.fixed_point:
        raise ImsnnError("--backend stock and --lowered-counts use Lava's bit-accurate models: "
                         "add --fixed-point (and a file exported with --fixed-point)")
    shard = parse_shard(args.shard) if args.shard else None
    dataset = args.dataset or pipeline.training_dataset(model)[0]
    if args.json:
        ensure_writable_file(args.json, "result")
    sel = pipeline.Selection(dataset=dataset, split=args.split, num_samples=args.num_samples,
                             shard=shard)
    summary = pipeline.simulate(model, args.model, sel, fixed=args.fixed_point,
                                backend=args.backend, replicas=args.replicas,
                                timeout_s=args.timeout, progress=not args.no_progress,
                                with_lowered=args.lowered_counts)
    print(summary["table"])
    if args.json:
        write_json_atomic(args.json, summary["json"], dumps=dumps)
        print(f"result: {args.json}")
    return 0 if all_agree(summary["json"]) else 1
