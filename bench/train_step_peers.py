"""Training step time of imsnn against a peer, snnTorch, in the same run (CPU or CUDA).

The same shapes as bench/train_step_time.py (784-500-10 and 16c5s2-32c3s2-10), T = 25,
batch 100, real MNIST batches (the rate code of the configs). snnTorch's network is the same
baseline SNN written the snnTorch way: bias-free Linear / Conv2d synapses and `snn.Leaky`
neurons (beta = 1 - dv = 0.9, i.e. Lava's LIF with du = 1; threshold 1; reset to zero; fast
sigmoid surrogate, slope 5), stepped through time; cross-entropy on output spike counts; Adam.
(snnTorch zeroes a neuron on the step after it spikes, Lava on the step itself: the same cost.)
All models are timed interleaved (each repeat runs each once, in turn); medians are reported.

    python bench/train_step_peers.py [--repeats 15] [--processes 5] [--threads 1] [--device cpu]
        [--allocator keep|default]

Targets (issue): imsnn's baseline no slower than snnTorch's; dense IMSNN <= 1.25x snnTorch's
baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step_time import (  # noqa: E402
    CONV,
    DENSE,
    Runner,
    add_run_options,
    fresh_processes,
    load_batches,
    machine_info,
    median_models,
    minor_faults,
    set_allocator,
    step_row,
    sync,
)

from imsnn_lava.outputs import write_json_atomic  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "train_step_peers.json"
BETA, THRESHOLD, SLOPE = 0.9, 1.0, 5.0  # 1 - dv, vth, surrogate slope of the configs
SEED = 0  # snnTorch's initial weights
TARGET_BASELINE = 1.0  # imsnn baseline / snnTorch baseline
TARGET_DENSE_IMSNN = 1.25  # dense IMSNN / snnTorch baseline


class SnnTorchRunner:
    def __init__(self, name: str, kind: str, steps: int, device: str):
        import snntorch as snn
        from snntorch import surrogate

        self.name, self.steps, self.device = name, steps, torch.device(device)
        torch.manual_seed(SEED)  # torch.nn's initializers draw from the global generator
        grad = surrogate.fast_sigmoid(slope=SLOPE)

        def leaky():
            return snn.Leaky(beta=BETA, threshold=THRESHOLD, spike_grad=grad,
                             reset_mechanism="zero")

        if kind == "dense":
            self.synapses = nn.ModuleList([nn.Linear(784, 500, bias=False),
                                           nn.Linear(500, 10, bias=False)])
        else:
            self.synapses = nn.ModuleList([nn.Conv2d(1, 16, 5, stride=2, bias=False),
                                           nn.Conv2d(16, 32, 3, stride=2, bias=False),
                                           nn.Linear(800, 10, bias=False)])
        self.kind = kind
        self.neurons = nn.ModuleList([leaky() for _ in self.synapses])
        self.model = nn.ModuleList([self.synapses, self.neurons]).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.times: list[float] = []
        self.hidden_spikes: list[float] = []
        self.page_faults: list[int] = []

    def forward(self, x: torch.Tensor):
        mems = [neuron.init_leaky() for neuron in self.neurons]
        counts, hidden = 0, []
        for t in range(x.shape[0]):
            s = x[t] if self.kind == "dense" else x[t].view(-1, 1, 28, 28)
            for i, (syn, neuron) in enumerate(zip(self.synapses, self.neurons)):
                if isinstance(syn, nn.Linear):
                    s = s.flatten(1)
                s, mems[i] = neuron(syn(s), mems[i])
                if i < len(self.synapses) - 1:
                    hidden.append(s.detach().sum())  # read after the timing
            counts = counts + s
        return counts, hidden

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        x, y = x.to(self.device), y.to(self.device)
        sync(self.device)
        faults = minor_faults()
        t0 = time.perf_counter()
        counts, hidden = self.forward(x)
        loss = nn.functional.cross_entropy(counts, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        sync(self.device)
        dt = time.perf_counter() - t0
        self.page_faults.append(minor_faults() - faults)
        self.hidden_spikes.append(float(sum(hidden)) / x.shape[1])
        return dt


def measure(args) -> dict:
    """One process: every model timed interleaved; this run's medians and ratios."""
    torch.set_num_threads(args.threads)
    machine = machine_info(args.threads)
    machine["keep_freed_memory"] = set_allocator(args)
    batches = load_batches(args.repeats + args.warmup, args.batch_size, args.steps)
    runners = [
        Runner("imsnn dense baseline", DENSE, "plain", 16, args.batch_size, args.steps,
               device=args.device),
        Runner("imsnn dense IMSNN", DENSE, "isi", 16, args.batch_size, args.steps,
               device=args.device),
        SnnTorchRunner("snntorch dense baseline", "dense", args.steps, args.device),
        Runner("imsnn conv baseline", CONV, "plain", 8, args.batch_size, args.steps,
               device=args.device),
        Runner("imsnn conv IMSNN", CONV, "isi", 8, args.batch_size, args.steps,
               device=args.device),
        SnnTorchRunner("snntorch conv baseline", "conv", args.steps, args.device),
    ]
    for i, (x, y) in enumerate(batches):
        for r in runners:
            dt = r.step(x, y)
            if i >= args.warmup:
                r.times.append(dt)
    rows = {r.name: step_row(r, args.warmup) for r in runners}
    machine["load_average_at_end"] = os.getloadavg()
    return {"machine": machine, "models": rows, "ratios": _ratios(rows)}


def _ratios(rows: dict) -> dict:
    med = {name: row["median_ms"] for name, row in rows.items()}
    ratios = {}
    for kind in ("dense", "conv"):
        peer = med[f"snntorch {kind} baseline"]
        ratios[f"{kind}: imsnn baseline / snntorch baseline"] = med[f"imsnn {kind} baseline"] / peer
        ratios[f"{kind}: imsnn IMSNN / snntorch baseline"] = med[f"imsnn {kind} IMSNN"] / peer
    return ratios


def _targets(ratios: dict) -> dict:
    return {
        "imsnn baseline no slower than snntorch (dense)":
            ratios["dense: imsnn baseline / snntorch baseline"] <= TARGET_BASELINE,
        "imsnn baseline no slower than snntorch (conv)":
            ratios["conv: imsnn baseline / snntorch baseline"] <= TARGET_BASELINE,
        "dense IMSNN <= 1.25x snntorch baseline":
            ratios["dense: imsnn IMSNN / snntorch baseline"] <= TARGET_DENSE_IMSNN,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=RESULTS)
    add_run_options(ap)  # --processes, --allocator
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    if args.processes < 1:
        ap.error("--processes: expected >= 1")
    import snntorch

    if args.processes == 1:
        measured = measure(args)
    else:
        runs = fresh_processes(Path(__file__).resolve(), argv, args.processes)
        per_process = {k: [run["ratios"][k] for run in runs] for k in runs[0]["ratios"]}
        measured = {"machine": runs[0]["machine"], "models": median_models(runs),
                    "ratios": {k: statistics.median(v) for k, v in per_process.items()},
                    "ratios_per_process": per_process}
    result = {"benchmark": "train_step_peers", "snntorch": snntorch.__version__,
              "what": "forward + CE loss on output counts + backward + Adam step",
              "batch_size": args.batch_size, "num_steps": args.steps, "device": args.device,
              "warmup": args.warmup, "interleaved": True, "processes": args.processes,
              "allocator": args.allocator, **measured, "targets_met": _targets(measured["ratios"])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, result)
    machine = result["machine"]
    print(f"T {args.steps}, batch {args.batch_size}, {args.device}, {args.threads} thread(s), "
          f"{args.processes} process(es), load {machine['load_average_at_start']} -> "
          f"{machine['load_average_at_end']}, allocator {args.allocator} (glibc keeps freed "
          f"memory: {machine['keep_freed_memory']})")
    for name, row in result["models"].items():
        faults = row.get("page_faults_per_step_median_per_process",
                         [row.get("page_faults_per_step_median", 0)])
        print(f"{name:<28}{row['median_ms']:>9.1f} ms  hidden spk "
              f"{row['hidden_spikes_per_sample_median']:.0f}  page faults/step "
              f"{statistics.median(faults):.0f}")
    spread = result.get("ratios_per_process", {})
    for name, value in result["ratios"].items():
        extra = (f"  [per process {min(spread[name]):.2f}-{max(spread[name]):.2f}]"
                 if name in spread else "")
        print(f"{name}: {value:.2f}x{extra}")
    for name, ok in result["targets_met"].items():
        print(f"{name}: {'met' if ok else 'NOT met'}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
