"""The stock backend against the fused runner on a fixed-point model file and MNIST test images.

Both backends run the same N samples in this one process (the same load): the fused runner
(imsnn's ISI synapse processes, with a bit-packed spike Recorder added on every layer) and
the stock backend (run_stock: Lava's stock processes only). The bench asserts that every
layer's spikes are identical at every step of every sample (exit status 1 otherwise), and
that the original network's event counts computed from the stock run equal the fused ones.

Measured per backend: the simulation time (run_s, the chunks only) and the whole call
(wall_s: build, compile, run, read-out, stop), ms per Lava step, samples/s, peak memory of
this process and all its descendants (sum of RSS, and of PSS: shared pages split among
sharers; sampled every MONITOR_S), the most processes seen, the deployed Lava processes,
neurons and synapses; for the stock network also the count model's events per sample.

    python bench/stock_backend.py MODEL.h5 -n 1000 -o bench/results/stock_backend_dense.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

MONITOR_S = 0.2
DEFAULT_TIMEOUT_S = 900.0
CHUNK_STEPS = 1000


# ---------------------------------------------------------------------------------------------
# memory and processes of the whole tree


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [pid], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _mem(pid: int) -> tuple[int, int]:
    """(RSS, PSS) bytes of one process (0, 0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            vals = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f
                    if line.startswith(("Rss:", "Pss:"))}
        return vals.get("Rss", 0), vals.get("Pss", 0)
    except (OSError, ValueError):
        return 0, 0


class TreeMonitor:
    """Peak summed RSS and PSS, and the most processes, of this process tree in a block."""

    def __init__(self):
        self.rss = self.pss = self.procs = 0
        self._stop = threading.Event()

    def _loop(self):
        while not self._stop.is_set():
            pids = _tree(os.getpid())
            mems = [_mem(p) for p in pids]
            self.rss = max(self.rss, sum(m[0] for m in mems))
            self.pss = max(self.pss, sum(m[1] for m in mems))
            self.procs = max(self.procs, len(pids))
            self._stop.wait(MONITOR_S)

    def __enter__(self):
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def json(self) -> dict:
        return {"peak_rss_bytes": self.rss, "peak_pss_bytes": self.pss,
                "max_processes": self.procs}


# ---------------------------------------------------------------------------------------------
# the fused runner with per-layer spike recorders


def run_fused(model, images, ids, replicas: int, timeout_s: float):
    """runtime.execute's loop on the fused network plus a packed spike Recorder per layer
    (spikes only: build(record=True) would also read every voltage):
    (LavaResult, per layer (T, N, n) spikes, deployed process count)."""
    from imsnn_lava.backends.fused import build as network
    from imsnn_lava.backends.host.proc.recorder.process import Recorder
    from imsnn_lava.backends.host.wire import per_sample, unpack_words
    from imsnn_lava.runtime import guard

    t_start = time.perf_counter()
    n = len(images)
    net = network.build(model, fixed=True, replicas=replicas, num_samples=n, images=images,
                        sample_ids=ids)
    with guard.lava_logging_guard():
        recs = []
        for lif in net.neurons:
            recs.append(Recorder(shape=lif.s_out.shape, num_steps=net.total_steps, pack=True))
            lif.s_out.connect(recs[-1].a_in)
    per_chunk = max(1, CHUNK_STEPS // model.num_steps)
    run_s, runtime = 0.0, None
    try:
        runtime = guard.start_runtime(net)
        done = 0
        while done < net.num_periods:
            k = min(per_chunk, net.num_periods - done)
            t0 = time.perf_counter()
            guard.run_chunk(runtime, k * model.num_steps, timeout_s)
            run_s += time.perf_counter() - t0
            done += k
        result = net.collect(n, run_s)
        shape = (net.num_periods, net.num_steps, net.replicas)
        spikes = [per_sample(unpack_words(r.data.get(), r.a_in.shape[-1]), shape, n)
                  for r in recs]
    finally:
        if runtime is not None:
            guard.shutdown_runtime(runtime)
        procs = len(net.processes)
        guard.release(net.processes + recs)
    result.wall_s = time.perf_counter() - t_start
    return result, spikes, procs


# ---------------------------------------------------------------------------------------------


def _means(d: dict) -> dict:
    return {k: float(np.mean(v)) for k, v in d.items()}


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _backend_json(res, mon: TreeMonitor, n: int, processes: int, neurons: int,
                  synapses: int) -> dict:
    return {"replicas": res.replicas, "steps": res.steps, "run_s": res.run_s,
            "wall_s": res.wall_s, "ms_per_step": res.ms_per_step,
            "samples_per_s_run": n / res.run_s, "samples_per_s_wall": n / res.wall_s,
            "lava_processes": processes, "neurons_per_replica": neurons,
            "synapses_per_replica": synapses,
            **mon.json()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("-n", "--num-samples", type=int, default=100)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--fused-replicas", type=int, default=0,
                    help="0: runtime.replicas.auto_replicas")
    ap.add_argument("--stock-replicas", type=int, default=1)
    ap.add_argument("--stock-prefer", default="auto", choices=("auto", "Dense", "Sparse"),
                    help="connection kinds of the stock network (lower's `prefer`)")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    args = ap.parse_args(argv)

    from imsnn_lava import ir as fmt
    from imsnn_lava.backends.stock import counts
    from imsnn_lava.backends.stock.lower import lower
    from imsnn_lava.backends.stock.run import run_stock
    from imsnn_lava.data.datasets import load_split_with_ids
    from imsnn_lava.numerics import counting
    from imsnn_lava.numerics.synapse import fan_out
    from imsnn_lava.runtime.replicas import auto_replicas

    model = fmt.read(args.model)
    cfg = json.loads(model.config_json or "{}").get("train", {})
    images, labels, ids = load_split_with_ids(cfg.get("dataset", "mnist"), "test",
                                              val_size=int(cfg.get("val_size", 5000)),
                                              limit=args.num_samples)
    n = len(labels)
    flat = images.reshape(n, -1)
    fused_r = args.fused_replicas or auto_replicas(model, n, fixed=True)
    load_before = os.getloadavg()
    with TreeMonitor() as mon_f:
        fused, fused_spikes, fused_procs = run_fused(model, flat, ids, fused_r, args.timeout)
    with TreeMonitor() as mon_s:
        stock = run_stock(model, images=flat, sample_ids=ids, replicas=args.stock_replicas,
                          record=True, count=False, timeout_s=args.timeout,
                          prefer=args.stock_prefer)
    with TreeMonitor() as mon_c:  # the numpy counts after the run, measured on their own
        t0 = time.perf_counter()
        stock.events = counting.count_events(model, stock.spikes, fixed=True)
        stock.stock_events = counts.count_model(stock.graph, model, stock.spikes)
        count_s = time.perf_counter() - t0
        # the same spikes through an all-Sparse lowering: synaptic events without the zero
        # entries a Dense matrix holds (what hardware that stores only non-zeros would do)
        sparse_ev = counts.count_model(lower(model, replicas=stock.replicas, prefer="Sparse"),
                                       model, stock.spikes)
    load_after = os.getloadavg()
    t0 = time.perf_counter()
    layers, compared, mismatches = [], 0, 0
    for i, (a, b) in enumerate(zip(stock.spikes[1:], fused_spikes), start=1):
        bad = int(np.count_nonzero(a != b))
        layers.append({"layer": i, "values": int(a.size), "spikes": int(b.sum()),
                       "mismatches": bad})
        compared += a.size
        mismatches += bad
    events_equal = {k: bool(np.array_equal(getattr(stock.events, k), getattr(fused.events, k)))
                    for k in ("spikes", "spikes_in", "synops", "active_updates")}
    counts_equal = bool(np.array_equal(stock.layer_counts, fused.layer_counts)
                        and np.array_equal(stock.output_counts, fused.output_counts))
    g = stock.graph
    ev = stock.stock_events
    # sizes of one replica (R = 1): neurons of the deployed populations, stored synapses
    # (fused: one per connection (i, j), each holding K table entries; stock: matrix entries
    # of Dense, non-zeros of Sparse)
    one = lower(model, replicas=1, prefer=args.stock_prefer)
    fused_neurons = sum(layer.n_out for layer in model.layers)
    fused_synapses = int(sum(fan_out(layer).sum() for layer in model.layers))
    payload = {
        "bench": "stock_backend", "model": args.model,
        "model_sha256": hashlib.sha256(Path(args.model).read_bytes()).hexdigest(),
        "num_samples": n, "num_steps": model.num_steps,
        "layers": [{"name": la.name, "type": la.type_name, "n_out": la.n_out,
                    "phi_max": la.phi_max, "c0": la.c0,
                    "exponents": sorted(set(la.fixed.table.exp.tolist()))}
                   for la in model.layers],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_before": load_before, "loadavg_after": load_after},
        "identical": mismatches == 0 and counts_equal and all(events_equal.values()),
        "spike_values_compared": int(compared), "mismatches": int(mismatches),
        "per_layer": layers, "layer_counts_equal": counts_equal,
        "original_events_equal": events_equal,
        "accuracy": {"fused": float(np.mean(fused.predictions == labels)),
                     "stock": float(np.mean(stock.predictions == labels))},
        "fused": _backend_json(fused, mon_f, n, fused_procs, fused_neurons, fused_synapses),
        "stock": {**_backend_json(stock, mon_s, n, stock.lava_processes, one.num_neurons,
                                  one.num_synapses),
                  "deployed_processes": stock.processes, "prefer": args.stock_prefer,
                  "count_model": {"seconds": count_s, **mon_c.json()},
                  "latency_steps": list(g.latency), "lead_in_steps": g.lead_in,
                  "guard_steps": g.guard,
                  "populations": [{"name": p.name, "role": p.role, "size": p.size,
                                   "shared": p.shared} for p in g.populations],
                  "connections": [{"name": c.name, "kind": c.kind, "role": c.role,
                                   "shape": list(c.weights.shape), "nnz": int(c.weights.nnz),
                                   "weight_exp": c.weight_exp} for c in g.connections],
                  "events_per_sample": {
                      "spikes": _means(ev.spikes), "synops": _means(ev.synops),
                      "neuron_updates": _means(ev.neuron_updates),
                      "active_updates": _means(ev.active_updates),
                      "shared_spikes_per_period": _means(ev.shared_spikes),
                      "shared_synops_per_period": _means(ev.shared_synops)},
                  "events_total": {k: int(sum(v.values())) for k, v in ev.totals.items()},
                  "synops_per_sample_all_sparse": _means(sparse_ev.synops)},
        "fused_events_per_sample": {
            "input_spikes": float(fused.events.input_spikes.mean()),
            "spikes": fused.events.spikes.mean(axis=0).tolist(),
            "synops": fused.events.synops.mean(axis=0).tolist(),
            "active_updates": fused.events.active_updates.mean(axis=0).tolist()},
        "compare_s": time.perf_counter() - t0,
    }
    _write_json(Path(args.output), payload)
    for key in ("fused", "stock"):
        b = payload[key]
        print(f"{key:6s} R={b['replicas']:3d} {b['ms_per_step']:7.2f} ms/step "
              f"{b['samples_per_s_run']:7.2f} samples/s (run) {b['wall_s']:7.1f} s wall "
              f"rss {b['peak_rss_bytes'] / 2**20:7.0f} MiB procs {b['max_processes']}")
    print(f"identical: {payload['identical']} ({compared} spike values, {mismatches} "
          f"mismatches); accuracy {payload['accuracy']}; result: {args.output}")
    return 0 if payload["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
