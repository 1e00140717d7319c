"""Where a training step's time goes: wall-clock timers around the ISI kernels' pieces and the
LIF loop inside real training steps (bench/train_step_time.py's models and batches, CPU, one
thread). A piece's time includes the pieces it calls (indented under it).

    python bench/train_step_profile.py [--model "conv 16c5s2-32c3s2-10 IMSNN"] [--steps 10]
        [--allocator keep|default]

Prints ms per step; writes nothing.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_step_time as bench  # noqa: E402

from imsnn_train import network  # noqa: E402
from imsnn_train.functional import isi, isi_conv  # noqa: E402

# (module or class, function, label): what is timed
TIMED = [
    (isi_conv._ISIConv, "forward", "conv layer forward"),
    (isi_conv._ISIConv, "backward", "conv layer backward"),
    (isi_conv, "count_bins", "  counter and bins"),
    (isi_conv, "_one_hot_forward", "  one-hot convolution"),
    (isi_conv, "_one_hot_weight_grad", "  one-hot weight gradient"),
    (isi_conv, "_entries", "  event patch entries"),
    (isi_conv, "_grad_spikes", "  dL/ds"),
    (isi_conv, "_input_grad", "    dominant-bin input gradient"),
    (isi_conv, "off_dominant", "    off-dominant inputs"),
    (isi_conv, "_expand", "    their patches"),
    (isi_conv, "sorted_row_dots", "  pair dot products (dL/ds, dL/dphi)"),
    (isi_conv, "argsort_stable", "  sorts (event entries, pairs)"),
    (isi_conv, "counter_grad", "  counter's dL/ds"),
    (isi._ISIDense, "forward", "dense layer forward"),
    (isi._ISIDense, "backward", "dense layer backward"),
    (network, "lif_run", "LIF loops (forward)"),
]


def main(argv=None) -> int:
    names = [m[0] for m in bench.MODELS]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="conv 16c5s2-32c3s2-10 IMSNN", choices=names)
    ap.add_argument("--steps", type=int, default=10)
    bench.add_allocator_option(ap)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    bench.set_allocator(args)
    spent = collections.defaultdict(float)
    for owner, name, label in TIMED:
        original = getattr(owner, name)

        def timed(*a, _f=original, _label=label, **k):
            t0 = time.perf_counter()
            try:
                return _f(*a, **k)
            finally:
                spent[_label] += time.perf_counter() - t0
        setattr(owner, name, staticmethod(timed) if isinstance(owner, type) else timed)
    layers, synapse, phi_max = next((m[1], m[2], m[3]) for m in bench.MODELS
                                    if m[0] == args.model)
    runner = bench.Runner(args.model, layers, synapse, phi_max, 100, 25)
    batches = bench.load_batches(args.steps + 2, 100, 25)
    total = 0.0
    for i, (x, y) in enumerate(batches):
        if i == 2:
            spent.clear()
        dt = runner.step(x, y)
        total += dt if i >= 2 else 0.0
    print(f"{args.model}: {1e3 * total / args.steps:.1f} ms per step, mean of {args.steps} "
          f"steps (with the timers)")
    for _, _, label in TIMED:
        if label in spent:
            print(f"  {label:<40}{1e3 * spent[label] / args.steps:>8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
