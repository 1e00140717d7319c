"""Training step time of the IMSNN against the same-shape baseline (CPU).

One step = forward + cross-entropy on output counts + backward + Adam step, batch 100, T = 25,
on real MNIST training batches (rate code of the configs). The models are timed side by side in
one process, interleaved (each repeat runs every model once, in turn) so that machine load
drifts hit them alike; the median over repeats is reported. Results go to
bench/results/train_step_time.json with the machine's facts.

    python bench/train_step_time.py [--threads 1] [--repeats 15] [--processes 5] [--quick]
        [--device cpu] [--kernels-from COMMIT] [--allocator keep|default]

Each of --processes fresh processes makes that interleaved run; the JSON keeps every
process's medians and ratios, and reports their medians (a process is one sample: on this
machine the same step's median moves by up to a quarter from one process to the next).

--kernels-from adds, for each IMSNN, a copy that runs the ISI dense and conv kernels of an
earlier commit (imsnn_train/functional/ read with `git show`), timed interleaved with the
others: a before/after measurement of the kernels under one machine load.

Target (issue): IMSNN <= 2x the same-shape baseline, dense 784-500-10 and conv.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch

from imsnn_lava.data.datasets import load_split_with_ids
from imsnn_lava.numerics.encoding import encode
from imsnn_lava.outputs import write_json_atomic
from imsnn_train import layers as layers_mod
from imsnn_train import memory
from imsnn_train.config import from_dict
from imsnn_train.network import Network
from imsnn_train.train import loss_fn, make_optimizer

RESULTS = Path(__file__).resolve().parent / "results" / "train_step_time.json"

DENSE = [{"kind": "dense", "out": 500}, {"kind": "dense", "out": 10}]
CONV = [{"kind": "conv", "out": 16, "kernel": 5, "stride": 2},
        {"kind": "conv", "out": 32, "kernel": 3, "stride": 2},
        {"kind": "dense", "out": 10}]
# (name, layers, synapse, phi_max): the shapes of deploy/configs/mnist_{dense,conv}_*.toml
MODELS = [
    ("dense 784-500-10 baseline", DENSE, "plain", 16),
    ("dense 784-500-10 IMSNN", DENSE, "isi", 16),
    ("conv 16c5s2-32c3s2-10 baseline", CONV, "plain", 8),
    ("conv 16c5s2-32c3s2-10 IMSNN", CONV, "isi", 8),
]
PAIRS = [("dense", "dense 784-500-10 IMSNN", "dense 784-500-10 baseline"),
         ("conv", "conv 16c5s2-32c3s2-10 IMSNN", "conv 16c5s2-32c3s2-10 baseline")]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_facts() -> dict:
    """The CPU's model name and vector width (Linux /proc/cpuinfo): step times and their ratios
    differ between CPU models, so each result names the one it ran on."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return {"cpu_model": None, "avx512f": None}
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")),
                 None)
    flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
    return {"cpu_model": model, "avx512f": "avx512f" in flags}


def machine_info(threads: int) -> dict:
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        **cpu_facts(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": threads,
        "torch_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "load_average_at_start": load,
    }


def kernels_of(commit: str) -> types.ModuleType:
    """The ISI kernels (imsnn_train/functional/, all of it: isi.py imports its siblings) as they
    were at `commit`, loaded as a separate package so that they run beside today's."""
    repo = Path(__file__).resolve().parents[1]
    listing = subprocess.run(["git", "-C", str(repo), "ls-tree", "--name-only", commit,
                              "imsnn_train/functional/"],
                             check=True, capture_output=True, text=True).stdout.split()
    name = f"imsnn_kernels_at_{commit}"
    package = types.ModuleType(name)
    package.__path__ = []
    sys.modules[name] = package
    sources = {}
    for path in listing:
        if path.endswith(".py") and not path.endswith("__init__.py"):
            text = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"],
                                  check=True, capture_output=True, text=True).stdout
            sources[Path(path).stem] = text.replace("imsnn_train.functional.", f"{name}.")
    pending = dict(sources)
    while pending:  # load each file once its siblings are loaded (import order)
        for stem, text in list(pending.items()):
            module = types.ModuleType(f"{name}.{stem}")
            sys.modules[module.__name__] = module
            try:
                exec(compile(text, f"{commit}:imsnn_train/functional/{stem}.py", "exec"),
                     module.__dict__)
            except (ImportError, AttributeError):
                del sys.modules[module.__name__]
                continue
            setattr(package, stem, module)
            del pending[stem]
            break
        else:
            raise ImportError(f"could not load the kernels of {commit}: {sorted(pending)}")
    return package.isi


def _phi_first(module, kernel):
    """`kernel` of an older commit whose synapses take phi only (no counter=): phi from that
    commit's isi_phi_gated, as its layers computed it."""
    if "counter" in inspect.signature(kernel).parameters:
        return kernel

    def call(s, phi, *args, counter=None, **kwargs):
        if counter is not None:
            steps = s.reshape(counter.steps, -1, *s.shape[1:])
            phi = module.isi_phi_gated(steps, counter.c0, counter.phi_max, counter.gate,
                                       counter.strength).reshape(s.shape)
        return kernel(s, phi, *args, **kwargs)
    return call


@contextlib.contextmanager
def kernels(module):
    """Run the layers' forward passes with another module's isi_dense / isi_conv (the
    backward passes belong to the Functions those create)."""
    if module is None:
        yield
        return
    saved = layers_mod.isi_dense, layers_mod.isi_conv
    layers_mod.isi_dense = _phi_first(module, module.isi_dense)
    layers_mod.isi_conv = _phi_first(module, module.isi_conv)
    try:
        yield
    finally:
        layers_mod.isi_dense, layers_mod.isi_conv = saved


class Runner:
    def __init__(self, name, layers, synapse, phi_max, batch_size, steps, lr=1e-3,
                 device="cpu", kernel_module=None):
        self.name = name
        self.device = torch.device(device)
        self.kernel_module = kernel_module
        self.cfg = from_dict({
            "model": {"synapse": synapse, "layers": layers, "isi": {"phi_max": phi_max}},
            "encoding": {"num_steps": steps},
            "train": {"batch_size": batch_size, "lr": lr},
        })
        self.net = Network(self.cfg.model).to(self.device)
        self.net.train()
        self.opt = make_optimizer(self.net, self.cfg)
        self.times: list[float] = []
        self.hidden_spikes: list[float] = []
        self.page_faults: list[int] = []

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        x, y = x.to(self.device), y.to(self.device)
        sync(self.device)
        faults = minor_faults()
        t0 = time.perf_counter()
        with kernels(self.kernel_module):
            out = self.net(x)
            loss = loss_fn(out, y, self.cfg)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        sync(self.device)
        dt = time.perf_counter() - t0
        self.page_faults.append(minor_faults() - faults)
        self.hidden_spikes.append(sum(float(s.sum()) for s in out.spikes[1:-1]) / x.shape[1])
        return dt


def minor_faults() -> int:
    """Minor page faults of this process so far (each one is a fresh page mapped in)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def add_run_options(ap: argparse.ArgumentParser) -> None:
    """--processes and --allocator, shared with bench/train_step_peers.py."""
    ap.add_argument("--processes", type=int, default=5,
                    help="fresh processes, each a full interleaved run; medians over them "
                         "(default 5; fresh_processes in bench/train_step_time.py says why)")
    add_allocator_option(ap)


def add_allocator_option(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--allocator", choices=["keep", "default"], default="keep",
                    help="keep (default): glibc keeps freed memory for the next step, as "
                         "`imsnn train` does (train.keep_freed_memory); default: the C "
                         "library's own behaviour, under which a conv step's large tensors "
                         "fault in anew every step in some processes here")


def set_allocator(args) -> bool:
    """Apply --allocator in this process; whether glibc keeps freed memory."""
    return args.allocator == "keep" and memory.keep_freed_memory()


def step_row(r, warmup: int) -> dict:
    """One model's medians in one process."""
    return {"median_ms": 1e3 * statistics.median(r.times), "min_ms": 1e3 * min(r.times),
            "max_ms": 1e3 * max(r.times), "repeats": len(r.times),
            "hidden_spikes_per_sample_median": statistics.median(r.hidden_spikes[warmup:]),
            "page_faults_per_step_median": statistics.median(r.page_faults[warmup:])}


def load_batches(n_batches: int, batch_size: int, steps: int):
    """(input spikes (T, B, 784), labels) of the first MNIST training images."""
    images, labels, ids = load_split_with_ids("mnist", "train", limit=n_batches * batch_size)
    batches = []
    for b in range(n_batches):
        sl = slice(b * batch_size, (b + 1) * batch_size)
        x = encode(images[sl], ids[sl], num_steps=steps, max_rate=0.5, seed=1)
        batches.append((torch.from_numpy(x).float(),
                        torch.from_numpy(labels[sl].astype(np.int64))))
    return batches


def measure(args) -> dict:
    """One process: every model timed interleaved; the result of this run."""
    torch.set_num_threads(args.threads)
    machine = machine_info(args.threads)
    machine["keep_freed_memory"] = set_allocator(args)
    batches = load_batches(args.repeats + args.warmup, args.batch_size, args.steps)
    models = [m for m in MODELS if args.only is None or m[0].startswith(args.only)]
    old = kernels_of(args.kernels_from) if args.kernels_from else None
    runners = []
    for name, layers, syn, phi_max in models:
        runners.append(Runner(name, layers, syn, phi_max, args.batch_size, args.steps,
                              device=args.device))
        if old is not None and syn == "isi":
            runners.append(Runner(f"{name} @{args.kernels_from}", layers, syn, phi_max,
                                  args.batch_size, args.steps, device=args.device,
                                  kernel_module=old))
    for i, (x, y) in enumerate(batches):
        for r in runners:  # interleaved: every repeat runs every model once, in turn
            dt = r.step(x, y)
            if i >= args.warmup:
                r.times.append(dt)
    rows = {r.name: step_row(r, args.warmup) for r in runners}
    try:
        machine["load_average_at_end"] = os.getloadavg()
    except OSError:
        pass
    return {"machine": machine, "models": rows, "imsnn_over_baseline": _ratios(rows, args)}


def _ratios(rows: dict, args) -> dict:
    ratios = {}
    for kind, isi, base in PAIRS:
        if isi in rows and base in rows:
            ratios[kind] = rows[isi]["median_ms"] / rows[base]["median_ms"]
        before = f"{isi} @{args.kernels_from}"
        if before in rows and base in rows:
            ratios[f"{kind} @{args.kernels_from}"] = (rows[before]["median_ms"]
                                                     / rows[base]["median_ms"])
    return ratios


def fresh_processes(script: Path, argv: list[str], processes: int) -> list[dict]:
    """A benchmark script run `processes` times, each in a fresh Python process writing its
    own JSON: a step's time also depends on where the process's memory lands (with the C
    library's allocator, --allocator default, a conv model faults its tensors in anew every
    step in some processes and not in others), so one process is one sample and the report
    takes the median over processes."""
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(processes):
            out = Path(tmp) / f"run{i}.json"
            cmd = [sys.executable, str(script), *without_values(argv, ("--processes", "--out")),
                   "--processes", "1", "--out", str(out)]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            runs.append(json.loads(out.read_text()))
    return runs


def median_models(runs: list[dict]) -> dict:
    """Per model: the median over processes of each process's median, and every process's."""
    models = {}
    for name in runs[0]["models"]:
        per_run = [run["models"][name] for run in runs]
        models[name] = {
            "median_ms": statistics.median(r["median_ms"] for r in per_run),
            "median_ms_per_process": [r["median_ms"] for r in per_run],
            "min_ms": min(r["min_ms"] for r in per_run),
            "max_ms": max(r["max_ms"] for r in per_run),
            "repeats": sum(r["repeats"] for r in per_run),
            "hidden_spikes_per_sample_median": per_run[0]["hidden_spikes_per_sample_median"],
            "page_faults_per_step_median_per_process": [r["page_faults_per_step_median"]
                                                        for r in per_run],
        }
    return models


def _combined(runs: list[dict]) -> dict:
    per_process = {kind: [run["imsnn_over_baseline"][kind] for run in runs]
                   for kind in runs[0]["imsnn_over_baseline"]}
    return {"machine": runs[0]["machine"], "models": median_models(runs),
            "imsnn_over_baseline": {k: statistics.median(v) for k, v in per_process.items()},
            "imsnn_over_baseline_per_process": per_process}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a shared machine more can be far slower)")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--quick", action="store_true", help="3 repeats, 1 warm-up")
    ap.add_argument("--only", choices=["dense", "conv"], default=None)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--kernels-from", metavar="COMMIT",
                    help="also time each IMSNN with the ISI kernels of this commit")
    add_run_options(ap)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup = 3, 1
    if args.processes < 1:
        ap.error("--processes: expected >= 1")
    if args.processes == 1:
        measured = measure(args)
    else:
        measured = _combined(fresh_processes(Path(__file__).resolve(), argv, args.processes))
    result = {
        "benchmark": "train_step_time",
        "what": "forward + CE loss + backward + Adam step, real MNIST batches",
        "batch_size": args.batch_size, "num_steps": args.steps, "device": args.device,
        "kernels_from": args.kernels_from,
        "warmup": args.warmup, "interleaved": True, "processes": args.processes,
        "allocator": args.allocator,
        **measured,
        "target_dense_ratio": 2.0,
        "target_conv_ratio": 2.0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, result)
    _print(result, args)
    return 0


def without_values(argv: list[str], options) -> list[str]:
    """argv less the given options and their values (both --opt v and --opt=v)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in options:
            skip = True
            continue
        if a.startswith(tuple(f"{o}=" for o in options)):
            continue
        out.append(a)
    return out


def _print(result: dict, args) -> None:
    machine = result["machine"]
    print(f"batch {args.batch_size}, T {args.steps}, torch {torch.__version__}, "
          f"{args.threads} thread(s), {os.cpu_count()} cpus, {args.processes} process(es), "
          f"load average at start {machine['load_average_at_start']}")
    print(f"allocator: {args.allocator} (glibc keeps freed memory: "
          f"{machine['keep_freed_memory']})")
    print(f"{'model':<44}{'median ms':>11}{'min ms':>9}{'max ms':>9}{'hidden spk':>12}"
          f"{'faults/step':>13}")
    for name, row in result["models"].items():
        faults = row.get("page_faults_per_step_median",
                         statistics.median(row.get("page_faults_per_step_median_per_process",
                                                   [0])))
        print(f"{name:<44}{row['median_ms']:>11.1f}{row['min_ms']:>9.1f}{row['max_ms']:>9.1f}"
              f"{row['hidden_spikes_per_sample_median']:>12.1f}{faults:>13.0f}")
    per_process = result.get("imsnn_over_baseline_per_process", {})
    for kind, ratio in result["imsnn_over_baseline"].items():
        verdict = "" if "@" in kind else ("  (target <= 2x: met)" if ratio <= 2.0
                                          else "  (target <= 2x: NOT met)")
        spread = (f"  [per process {min(per_process[kind]):.2f}-{max(per_process[kind]):.2f}]"
                  if kind in per_process else "")
        print(f"{kind}: IMSNN / baseline = {ratio:.2f}x{verdict}{spread}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
