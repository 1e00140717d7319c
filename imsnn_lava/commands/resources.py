"""`imsnn resources`: what a model file needs on a neuromorphic chip, per layer and in total,
checked against a target's limits."""

from __future__ import annotations

import argparse
import sys

from imsnn_lava.backends import NAMES as BACKEND_NAMES
from imsnn_lava.commands.common import add_command, add_output


def register(sub) -> None:
    p = add_command(
        sub, "resources", help="neurons, synapses, memory and cores of a model file on a "
                               "target chip",
        description="Per layer (fused) or per stock population (stock: every ISI layer "
                    "lowered onto Lava's own processes) and in total: neurons, synapses, "
                    "synaptic memory, axons, fan-in, fan-out, largest delay, weight bits and a "
                    "core estimate, checked against the target's limits. A hard limit "
                    "exceeded is an error (exit 2, nothing written).",
        examples=["imsnn resources runs/demo/imsnn.h5",
                  "imsnn resources runs/demo/imsnn.h5 --backend fused --target loihi2 "
                  "-o resources.json"])
    p.add_argument("model", help="MODEL.h5 exported with --fixed-point")
    p.add_argument("--backend", choices=BACKEND_NAMES, default="stock",
                   help="fused: imsnn's ISI synapse processes (CPU only); stock: the lowered "
                        "network a neurocore would run")
    p.add_argument("--target", default="loihi2",
                   help="a built-in target name or a target JSON file")
    add_output(p, what="the table as JSON", metavar="OUT.json")
    p.set_defaults(func=_resources)


def _resources(args: argparse.Namespace) -> int:
    from imsnn_lava import ir
    from imsnn_lava.analysis import resources as res
    from imsnn_lava.errors import ImsnnError
    from imsnn_lava.outputs import ensure_writable_file, write_json_atomic

    model = ir.read(args.model)
    if not model.fixed:
        raise ImsnnError(f"{args.model}: a float model file; resources are those of the "
                         "fixed-point network (export with --fixed-point)")
    target = res.load_target(args.target)
    if args.output:
        ensure_writable_file(args.output, "resources JSON")
    if args.backend == "stock":
        from imsnn_lava.backends.stock.lower import lower
        from imsnn_lava.backends.stock.summary import resource_rows

        rows = resource_rows(lower(model, replicas=1))
        kinds = sorted({k for r in rows for k in r["processes"]})
        note = f"stock Lava processes used: {', '.join(kinds)} (no Delay variant, no Conv)"
    else:
        rows = res.fused_rows(model)
        note = ("the fused ISI synapse is imsnn's own Python ProcessModel: it runs on a CPU, "
                "never on a neurocore; use --backend stock for what the chip would hold")
    errors = res.check(rows, target, args.model)
    print(res.table(rows, target, f"{args.model}: {args.backend} backend"))
    print(note)
    for line in errors:
        print(f"imsnn resources: error: {line}", file=sys.stderr)
    if errors:
        return 2
    if args.output:
        write_json_atomic(args.output, {"model": args.model, "backend": args.backend,
                                        "target": target.name, "rows": rows,
                                        "cores": sum(res.cores_of(r, target) for r in rows)})
        print(f"resources: {args.output}")
    return 0
