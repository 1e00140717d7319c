"""`imsnn verify`: prove that Lava reproduces the model file's own reference vectors (and
print the file's content digest, which reading it has checked)."""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser("verify", help="prove that Lava reproduces the model's reference vectors")
    p.add_argument("model")
    p.add_argument("--backend", choices=("fused", "stock"), default="fused",
                   help="fused: imsnn's ISI synapse processes; stock: Lava's own processes "
                        "(fixed-point files)")
    p.add_argument("--timeout", type=float, default=300.0)
    p.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    from imsnn_lava import ir, pipeline
    from imsnn_lava.ir import digest

    model = ir.read(args.model)  # checks the content digest and the fixed-point tables
    print(f"{args.model}: content digest {digest.short(model.digest)} (verified)"
          if model.digest else f"{args.model}: content digest {digest.short(None)}")
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
