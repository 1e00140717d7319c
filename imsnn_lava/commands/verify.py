"""`imsnn verify`: prove that Lava reproduces the model file's own reference vectors (and
print the file's content digest, which reading it has checked)."""

from __future__ import annotations

import argparse
import sys

from imsnn_lava.backends import NAMES as BACKEND_NAMES
from imsnn_lava.commands.common import add_command, add_precision, resolve_precision


def register(sub) -> None:
    p = add_command(
        sub, "verify", help="prove that Lava reproduces the model's reference vectors",
        description="Run the reference samples stored in a model file through Lava and compare "
                    "every layer's spike count with the counts stored beside them. The "
                    "reference counts were computed in the file's own precision, so verify runs "
                    "in it (--fixed-point or --float only confirm it). Exit status 1 on any "
                    "mismatch.",
        examples=["imsnn verify runs/demo/imsnn.h5",
                  "imsnn verify runs/demo/imsnn.h5 --backend stock"])
    p.add_argument("model", metavar="MODEL.h5", help="model file of imsnn export or imsnn import")
    add_precision(p)
    p.add_argument("--backend", choices=BACKEND_NAMES, default="fused",
                   help="fused: imsnn's ISI synapse processes; stock: Lava's own processes "
                        "(fixed-point files)")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="seconds without progress before the run is stopped as hung")
    p.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    from imsnn_lava import ir, pipeline
    from imsnn_lava.errors import ImsnnError
    from imsnn_lava.ir import digest

    model = ir.read(args.model)  # checks the content digest and the fixed-point tables
    print(f"{args.model}: content digest {digest.short(model.digest)} (verified)"
          if model.digest else f"{args.model}: content digest {digest.short(None)}")
    fixed, said = resolve_precision(args, model, args.model)
    if fixed != model.fixed:
        raise ImsnnError(f"{args.model}: its reference vectors were computed in fixed point; "
                         "verify runs the file's own precision (drop --float, or use "
                         "imsnn simulate --float)")
    print(said)
    v = pipeline.verify(model, args.model, backend=args.backend, timeout_s=args.timeout)
    for sid, want, got, ok in zip(v.sample_ids, v.expected, v.got, v.ok):
        print(f"sample {sid}: expected layer spikes {want.tolist()}, "
              f"Lava {got.tolist()}  {'OK' if ok else 'MISMATCH'}")
    print(f"{args.model}: {int(v.ok.sum())}/{len(v.ok)} reference samples reproduced exactly "
          f"in Lava ({'fixed point' if model.fixed else 'floating point'}, {args.backend} "
          "backend)")
    if not v.passed:
        print("verify: FAILED", file=sys.stderr)
        return 1
    return 0
