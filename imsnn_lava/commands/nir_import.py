"""`imsnn import MODEL.nir -o MODEL.h5`: a NIR graph from another SNN tool -> an imsnn model file.

Numpy, h5py and nir only (no torch). The supported subset, the discretisation and the one
timing difference are those of imsnn_lava.interop.nir; every refusal is one line naming the
file and the node or field (exit code 2, nothing written).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from imsnn_lava.commands.common import add_command, add_output
from imsnn_lava.errors import ImsnnError


def register(sub) -> None:
    p = add_command(
        sub, "import", help="NIR graph (e.g. from snnTorch) -> imsnn model file (HDF5)",
        description="Convert a feed-forward NIR graph (Input, Affine/Linear, Conv2d, Flatten, "
                    "LIF/CubaLIF/IF, Output) into an imsnn model file that `imsnn simulate` "
                    "runs in Lava. NIR carries no time step or input encoding: give them here "
                    "unless the graph's metadata has them (as `imsnn export --format nir` "
                    "writes them).",
        examples=["imsnn import snn.nir -o snn.h5 --dt 1e-4 --num-steps 25 --max-rate 0.5",
                  "imsnn import baseline.nir -o baseline.h5 --fixed-point"])
    p.add_argument("model", metavar="MODEL.nir", help="NIR file")
    add_output(p, what="the model file", metavar="MODEL.h5", required=True)
    p.add_argument("--fixed-point", action="store_true",
                   help="quantize to Loihi fixed point as `imsnn export --fixed-point` does")
    p.add_argument("--dt", type=float, help="simulation step in the graph's time unit "
                   "(snnTorch's NIR export uses 1e-4) (default: the graph's metadata)")
    p.add_argument("--num-steps", type=int,
                   help="steps per sample (T) of the rate code (default: the graph's metadata)")
    p.add_argument("--max-rate", type=float, help="spike probability per step of a white pixel "
                   "(default: the graph's metadata)")
    p.add_argument("--seed", type=int, help="seed of the rate code (default: the graph's, else 0)")
    p.set_defaults(func=_import)


def _import(args: argparse.Namespace) -> int:
    from imsnn_lava import ir as fmt
    from imsnn_lava.interop.nir import from_nir, import_notes

    out = Path(args.output)
    if out.is_dir():
        raise ImsnnError(f"{out}: cannot write the model file there (a folder)")
    model = from_nir(args.model, dt=args.dt, num_steps=args.num_steps, max_rate=args.max_rate,
                     seed=args.seed, fixed_point=args.fixed_point)
    fmt.write(model, out)
    sizes = "-".join(str(n) for n in [int(model.layers[0].n_in)] +
                     [layer.n_out for layer in model.layers])
    enc = model.encoding
    kind = "fixed point" if args.fixed_point else "float"
    print(f"wrote {out} ({kind}, {len(model.layers)} layers {sizes}, T={enc.num_steps}, "
          f"max_rate={enc.max_rate:g}, seed={enc.seed})")
    for layer in model.layers:
        line = f"  {layer.name}: {layer.type_name} du {layer.du:.6g} dv {layer.dv:.6g} " \
               f"vth {layer.vth:.6g}"
        if layer.fixed is not None:
            line += f" (scale {layer.fixed.scale}, vth {layer.fixed.vth}, du {layer.fixed.du}, " \
                    f"dv {layer.fixed.dv})"
        print(line)
    for note in import_notes(model):
        print(f"note: {note}")
    return 0
