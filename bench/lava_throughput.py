"""Lava throughput of the demo-sized networks: replicas, rebuilds, precision, memory, 10k time.

Networks: 784-200-10 dense, ISI (deploy/configs/demo_imsnn.toml) and plain
(demo_baseline.toml), T = 25, rate code max_rate 0.5, on real MNIST test images. Their weights
are the project's own random initialisation scaled by 3 (hidden) and 4 (output) so that they
fire like trained ones (~400 hidden and ~20 output spikes per sample); or pass a model file
(`imsnn export` .h5) or a training checkpoint (.pt) with --model.

Measured side by side in one process (the same load for all), each a fresh runner.run:
- streaming, one network for all samples, R = 1, R = auto (runner.auto_replicas) and a few
  other R: samples/s over the whole call (build + compile + run + read-out + stop) and over the
  simulation alone, ms per Lava step;
- per-sample rebuild: a fresh network per sample (runner.run with one sample, R = 1);
- floating vs fixed point (ISI network, R = auto);
- peak memory: the proportional set size (PSS, shared pages split among sharers) of this
  process and all its descendants, sampled every 0.1 s, per configuration; and
  resource.getrusage maxrss of self and of the largest child over the whole benchmark;
- the 10k MNIST test set: extrapolated from two runs at the best R (wall = a + N / b), and run
  once in full when the estimate is under --full-limit seconds (default 180).
Bit-exactness: every run's predictions and per-layer spike counts are compared with
reference.simulate on the same samples (the integers of the quantized PyTorch evaluation).

    python bench/lava_throughput.py [--model M.h5|C.pt] [--replicas 8,32,256] [--quick]

Results: bench/results/lava_throughput.json (with the machine's facts) and a printed table.
Target (issue 6): the 10k test set in <= 60 s on 2 cores, demo dense IMSNN, fixed point.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np

from imsnn_lava import runtime as runner
from imsnn_lava.numerics import reference
from imsnn_lava.numerics.encoding import encode

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "lava_throughput.json"
GAINS = (3.0, 4.0)
TARGET_10K_S = 60.0


# ---------------------------------------------------------------------------------------------
# memory


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class PeakMemory:
    """Peak PSS of this process and its descendants while the block runs."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def _loop(self):
        me = os.getpid()
        while not self._stop.is_set():
            total = _pss(me) + sum(_pss(p) for p in _descendants(me))
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------------------------------------
# networks and data


def demo_models(gains=GAINS) -> dict:
    """{name: (float ModelFile, fixed ModelFile)} of the demo ISI and plain networks."""
    import torch

    from imsnn_train import config
    from imsnn_train.export import to_model_file
    from imsnn_train.network import Network

    out = {}
    for name, cfg_name in (("dense ISI 784-200-10", "demo_imsnn"),
                           ("dense plain 784-200-10", "demo_baseline")):
        cfg = config.load(REPO / "deploy" / "configs" / f"{cfg_name}.toml")
        net = Network(cfg.model)
        with torch.no_grad():
            for layer, gain in zip(net.layers, gains):
                layer.weight.mul_(gain)
        out[name] = (to_model_file(net, cfg, fixed=False), to_model_file(net, cfg, fixed=True))
    return out


def models_from(path: str) -> dict:
    from imsnn_lava import ir as fmt

    if path.endswith(".pt"):
        from imsnn_train.checkpoint import load_network
        from imsnn_train.export import to_model_file

        net, cfg, _ = load_network(path)
        return {Path(path).stem: (to_model_file(net, cfg, fixed=False),
                                  to_model_file(net, cfg, fixed=True))}
    model = fmt.read(path)
    if model.precision != "fixed":
        raise SystemExit(f"{path}: a float model file; export with --fixed-point to benchmark "
                         "fixed point (the target)")
    return {Path(path).stem: (model, model)}


def load_images(n: int):
    from imsnn_lava.data.datasets import load_split_with_ids

    images, labels, ids = load_split_with_ids("mnist", "test", limit=n)
    return images.reshape(len(images), -1), labels, np.asarray(ids)


def reference_check(model, images, ids, fixed: bool, res) -> dict:
    """Predictions and per-layer spike counts of the Lava run vs reference.simulate."""
    enc = model.encoding
    preds, layers = [], []
    for start in range(0, len(ids), 500):
        sl = slice(start, start + 500)
        x = encode(images[sl], ids[sl], num_steps=enc.num_steps, max_rate=enc.max_rate,
                   seed=enc.seed)
        r = reference.simulate(model, x, fixed=fixed)
        preds.append(r.predictions())
        layers.append(r.layer_counts())
    preds, layers = np.concatenate(preds), np.concatenate(layers)
    return {"predictions_equal": bool(np.array_equal(preds, res.predictions)),
            "layer_counts_equal": bool(np.array_equal(layers, res.layer_counts))}


# ---------------------------------------------------------------------------------------------
# one measurement


def measure(label: str, net_name: str, model, fixed: bool, images, labels, ids, replicas,
            *, check: bool = True, timeout_s: float = 900.0) -> dict:
    n = len(ids)
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        res = runner.run(model, fixed=fixed, images=images, sample_ids=ids, replicas=replicas,
                         timeout_s=timeout_s)
        wall = time.perf_counter() - t0
    row = {"config": label, "network": net_name, "precision": "fixed" if fixed else "float",
           "replicas": int(res.replicas), "samples": n, "wall_s": wall, "run_s": res.run_s,
           "samples_per_s_wall": n / wall, "samples_per_s_run": n / res.run_s,
           "ms_per_step": res.ms_per_step, "steps": res.steps,
           "peak_pss_mb": mem.peak / 2 ** 20,
           "accuracy": float(np.mean(res.predictions == labels)),
           "hidden_spikes_per_sample": float(res.layer_counts[:, :-1].sum(axis=1).mean()),
           "output_spikes_per_sample": float(res.layer_counts[:, -1].mean())}
    if check:
        row.update(reference_check(model, images, ids, fixed, res))
    print(_line(row), flush=True)
    return row


def rebuild(label, net_name, model, fixed, images, labels, ids) -> dict:
    """A fresh network per sample."""
    n = len(ids)
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        preds, run_s, steps = [], 0.0, 0
        for j in range(n):
            res = runner.run(model, fixed=fixed, images=images[j:j + 1], sample_ids=ids[j:j + 1],
                             replicas=1, timeout_s=300)
            preds.append(res.predictions[0])
            run_s += res.run_s
            steps += res.steps
        wall = time.perf_counter() - t0
    row = {"config": label, "network": net_name, "precision": "fixed" if fixed else "float",
           "replicas": 1, "samples": n, "wall_s": wall, "run_s": run_s,
           "samples_per_s_wall": n / wall, "samples_per_s_run": n / run_s,
           "ms_per_step": 1000.0 * run_s / steps, "steps": steps,
           "peak_pss_mb": mem.peak / 2 ** 20,
           "accuracy": float(np.mean(np.array(preds) == labels))}
    enc = model.encoding
    x = encode(images, ids, num_steps=enc.num_steps, max_rate=enc.max_rate, seed=enc.seed)
    row["predictions_equal"] = bool(np.array_equal(
        reference.simulate(model, x, fixed=fixed).predictions(), preds))
    print(_line(row), flush=True)
    return row


HEADER = (f"{'config':<22}{'network':<24}{'prec':<6}{'R':>5}{'N':>7}{'wall s':>8}{'run s':>8}"
          f"{'smp/s wall':>11}{'smp/s run':>10}{'ms/step':>9}{'PSS MB':>8}  exact")


def _line(r: dict) -> str:
    exact = r.get("predictions_equal")
    exact = "-" if exact is None else ("yes" if exact and r.get("layer_counts_equal", True)
                                       else "NO")
    return (f"{r['config']:<22}{r['network']:<24}{r['precision']:<6}{r['replicas']:>5}"
            f"{r['samples']:>7}{r['wall_s']:>8.2f}{r['run_s']:>8.2f}"
            f"{r['samples_per_s_wall']:>11.1f}{r['samples_per_s_run']:>10.1f}"
            f"{r['ms_per_step']:>9.2f}{r['peak_pss_mb']:>8.0f}  {exact}")


def machine_info() -> dict:
    import lava.magma
    import scipy

    try:
        from importlib.metadata import version
        lava_version = version("lava-nc")
    except Exception:  # noqa: BLE001
        lava_version = getattr(lava.magma, "__version__", None)
    return {
        "python": platform.python_version(), "numpy": np.__version__,
        "scipy": scipy.__version__, "lava_nc": lava_version,
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_at_start": os.getloadavg(),
    }


# ---------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="a model file (.h5, fixed point) or checkpoint (.pt) "
                                    "instead of the random demo networks")
    ap.add_argument("--replicas", default="8,32,256",
                    help="R values measured besides 1 and auto (comma-separated)")
    ap.add_argument("--samples", type=int, default=1024,
                    help="samples per streaming run (at least 4 periods of R are used)")
    ap.add_argument("--r1-samples", type=int, default=40, help="samples of the R = 1 run")
    ap.add_argument("--rebuild-samples", type=int, default=5)
    ap.add_argument("--full", choices=("auto", "yes", "no"), default="auto",
                    help="run the whole 10k test set (auto: if the estimate is under "
                         "--full-limit s)")
    ap.add_argument("--full-limit", type=float, default=180.0)
    ap.add_argument("--quick", action="store_true",
                    help="ISI network only, fewer samples, no full run")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.quick:
        args.samples, args.r1_samples, args.rebuild_samples = 256, 20, 3
        args.replicas, args.full = "32", "no"
    machine = machine_info()
    t_bench = time.perf_counter()
    nets = models_from(args.model) if args.model else demo_models()
    if args.quick:
        nets = dict(list(nets.items())[:1])
    extra_r = [int(x) for x in args.replicas.split(",") if x.strip()]
    first = next(iter(nets))
    model0 = nets[first][1]
    auto_r = runner.auto_replicas(model0, 10_000, fixed=True)
    images, labels, ids = load_images(10_000)
    print(f"Lava throughput, {os.cpu_count()} cpus, load average {machine['load_average_at_start']}"
          f"; auto R for 10k samples: {auto_r} (replica_bytes "
          f"{runner.replica_bytes(model0, True) / 2**20:.2f} MB)")
    print(HEADER)
    rows = []

    def data(n):
        return images[:n], labels[:n], ids[:n]

    for name, (float_model, fixed_model) in nets.items():
        rows.append(measure("streaming R=1", name, fixed_model, True,
                            *data(args.r1_samples), 1))
        r_auto = runner.auto_replicas(fixed_model, args.samples, fixed=True)
        for r in sorted(set(extra_r + [r_auto])):
            n = max(args.samples, 4 * r)
            label = "streaming R=auto" if r == r_auto else f"streaming R={r}"
            rows.append(measure(label, name, fixed_model, True, *data(n), r))
        rows.append(rebuild("rebuild per sample", name, fixed_model, True,
                            *data(args.rebuild_samples)))
        if name == first:  # the same, with synapse.synapse_step instead of the kernel
            from imsnn_lava.backends.fused.proc.isi_synapse import models as proc_common

            proc_common.FixedSynapseModel.integer_kernel = False
            try:
                rows.append(measure("R=auto, no int kernel", name, fixed_model, True,
                                    *data(max(args.samples, 4 * r_auto)), r_auto))
            finally:
                proc_common.FixedSynapseModel.integer_kernel = True
        if name == first:  # floating point: the same network's float64 tables
            rows.append(measure("streaming R=auto", name, float_model, False,
                                *data(args.samples), r_auto))
    # the 10k estimate: the ISI network, fixed point, the best R measured
    stream = [r for r in rows if r["network"] == first and r["precision"] == "fixed"
              and r["config"].startswith("streaming")]
    best = max(stream, key=lambda r: r["samples_per_s_wall"])
    best_r = best["replicas"]
    small, big = min(4 * best_r, 2_500), min(16 * best_r, 10_000)
    fits = [measure(f"fit N={small}", first, model0, True, *data(small), best_r, check=False),
            measure(f"fit N={big}", first, model0, True, *data(big), best_r, check=False)]
    slope = (fits[1]["wall_s"] - fits[0]["wall_s"]) / (big - small)
    intercept = fits[0]["wall_s"] - slope * small
    estimate = intercept + slope * 10_000
    rows += fits
    full = None
    print(f"10k estimate at R={best_r}: {estimate:.1f} s (wall = {intercept:.2f} s + N x "
          f"{slope * 1000:.2f} ms)", flush=True)
    if args.full == "yes" or (args.full == "auto" and estimate < args.full_limit):
        full = measure("full 10k test set", first, model0, True, images, labels, ids, best_r)
        rows.append(full)
    ru_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ru_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {
        "benchmark": "lava_throughput",
        "what": "runner.run on real MNIST test images, one Lava network per call; "
                "samples/s wall = whole call (build, compile, run, read-out, stop)",
        "num_steps": model0.num_steps, "weight_gains": None if args.model else list(GAINS),
        "model": args.model, "machine": machine,
        "auto_replicas_10k": auto_r,
        "replica_bytes_estimate": runner.replica_bytes(model0, True),
        "rows": rows,
        "ten_k": {"replicas": best_r, "estimate_s": estimate, "fit_intercept_s": intercept,
                  "fit_ms_per_sample": slope * 1000,
                  "measured_s": None if full is None else full["wall_s"],
                  "measured_bit_exact": None if full is None else full.get("predictions_equal"),
                  "target_s": TARGET_10K_S,
                  "target_met": (full["wall_s"] if full else estimate) <= TARGET_10K_S},
        "rusage_maxrss_mb": {"self": ru_self, "largest_child": ru_children},
        "bench_wall_s": time.perf_counter() - t_bench,
    }
    result["machine"]["load_average_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print()
    print(HEADER)
    for r in rows:
        print(_line(r))
    t10 = result["ten_k"]
    how = f"measured {t10['measured_s']:.1f} s" if full else f"estimated {estimate:.1f} s"
    print(f"10k MNIST test set, {first}, fixed point, R = {best_r}: {how} "
          f"(target <= {TARGET_10K_S:.0f} s: {'met' if t10['target_met'] else 'NOT met'})")
    print(f"getrusage maxrss: self {ru_self:.0f} MB, largest child {ru_children:.0f} MB")
    bad = [r for r in rows if r.get("predictions_equal") is False
           or r.get("layer_counts_equal") is False]
    print("bit-exact against the reference: " + ("all runs" if not bad else
                                                   f"{len(bad)} runs DIFFER"))
    print(f"wrote {args.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
