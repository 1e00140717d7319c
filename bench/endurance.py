"""Endurance: N consecutive `imsnn_lava.runtime.run` calls in one process leak nothing.

After each run (and a gc.collect()) the process's resources are recorded: resident memory
(VmRSS), open file descriptors, OS threads, live child processes (multiprocessing's resource
tracker excluded: it lives as long as the process), the /dev/shm objects the runs mapped that
still exist (a sampler thread reads /proc/PID/maps of this process and its children every
20 ms), and, for information only, every entry in /dev/shm (other programs use it too).
After `--warmup` runs, none may grow beyond a small fixed bound over its value at the end of
the warm-up (the BOUNDS below), no child process may be left after a run, and no mapped
shared memory object may outlive its run.

The model is a tiny fixed-point IMSNN (tests/lava_helpers.py: 16 -> ISI 12 -> 5), 2 samples
of random spikes per run, so the run time is Lava's start and stop.

    python bench/endurance.py [--runs 200] [--warmup 10] [--backend fused|stock] [--out JSON]

Writes bench/results/endurance.json (atomically): the bounds, the per-run samples, the
growth of each resource after the warm-up, and pass/fail. Exit 1 if a bound is exceeded.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "results" / "endurance.json"
DEFAULT_RUNS = 200
DEFAULT_WARMUP = 10
SAMPLES_PER_RUN = 2
RUN_TIMEOUT_S = 120.0
SHM_POLL_S = 0.02
# growth allowed after the warm-up (the largest value of any later run minus the value at
# the end of the warm-up)
BOUNDS = {"rss_mb": 16.0, "fds": 4, "threads": 2, "children": 0, "shm_leaked": 0}
SHM = Path("/dev/shm")


def _helpers():
    name = "imsnn_test_lava_helpers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "lava_helpers.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def children() -> list[int]:
    """Live (not zombie) descendants of this process, the resource tracker excluded (the
    process table of tests/lava_helpers.py)."""
    table = {pid: (ppid, "resource_tracker" in cmd)
             for pid, ppid, _, state, cmd in _helpers().proc_table() if state != "Z"}
    out, todo = [], [os.getpid()]
    while todo:
        parent = todo.pop()
        for pid, (ppid, tracker) in table.items():
            if ppid == parent:
                todo.append(pid)
                if not tracker:
                    out.append(pid)
    return out


class ShmSampler:
    """The /dev/shm objects mapped by this process and its children, sampled while active."""

    def __init__(self):
        self.names: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="shm-sampler", daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            for pid in (os.getpid(), *children()):
                try:
                    with open(f"/proc/{pid}/maps") as f:
                        for line in f:
                            if "/dev/shm/" in line:
                                self.names.add(line.split("/dev/shm/", 1)[1].split()[0])
                except OSError:
                    continue
            time.sleep(SHM_POLL_S)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()

    def leaked(self) -> list[str]:
        return sorted(n for n in self.names if (SHM / n).exists())


def sample(sampler: ShmSampler) -> dict:
    return {"rss_mb": round(_status("VmRSS") / 1024, 1),
            "fds": len(os.listdir("/proc/self/fd")), "threads": _status("Threads"),
            "children": len(children()), "shm_leaked": len(sampler.leaked()),
            "shm_mapped": len(sampler.names), "shm_entries": len(os.listdir(SHM))}


def backend_available(backend: str) -> bool:
    return importlib.util.find_spec(f"imsnn_lava.backends.{backend}") is not None


def endurance(runs: int = DEFAULT_RUNS, warmup: int = DEFAULT_WARMUP, backend: str = "fused",
              log=print) -> dict:
    """Run the model `runs` times; returns the samples, the growth and whether it passed."""
    from imsnn_lava import runtime

    h = _helpers()
    model = h.quantize(h.tiny_model())
    spikes = h.random_spikes(np.random.default_rng(0), SAMPLES_PER_RUN, model.num_steps,
                             int(np.prod(model.input_shape)), 0.4)
    expected = None
    sampler = ShmSampler()
    sampler.start()
    samples = []
    t0 = time.perf_counter()
    try:
        for i in range(runs):
            res = runtime.run(model, fixed=True, spikes=spikes, timeout_s=RUN_TIMEOUT_S,
                              backend=backend)
            if expected is None:
                expected = res.output_counts.copy()
            if not np.array_equal(res.output_counts, expected):
                raise AssertionError(f"run {i + 1}: the output counts changed")
            del res
            gc.collect()
            samples.append({"run": i + 1, "wall_s": round(time.perf_counter() - t0, 2),
                            **sample(sampler)})
            if (i + 1) % 20 == 0 or i + 1 == runs:
                log(f"run {i + 1}/{runs}: {samples[-1]}")
    finally:
        sampler.stop()
    base = samples[min(warmup, len(samples)) - 1]
    after = samples[min(warmup, len(samples)):] or samples[-1:]
    growth = {key: round(max(s[key] for s in after) - base[key], 1) for key in BOUNDS}
    # no child process and no mapped shared memory may outlive any run (warm-up included)
    growth["children"] = max(s["children"] for s in samples)
    growth["shm_leaked"] = max(s["shm_leaked"] for s in samples)
    failed = [key for key, bound in BOUNDS.items() if growth[key] > bound]
    return {"backend": backend, "runs": runs, "warmup": warmup,
            "samples_per_run": SAMPLES_PER_RUN, "model": "tiny_model 16 -> ISI 12 -> 5, fixed",
            "bounds": BOUNDS, "at_warmup": base, "last": samples[-1], "growth": growth,
            "passed": not failed, "failed": failed,
            "seconds": round(time.perf_counter() - t0, 1), "samples": samples}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=DEFAULT_RUNS)
    p.add_argument("--warmup", type=int, default=DEFAULT_WARMUP)
    p.add_argument("--backend", choices=("fused", "stock"), default="fused")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    if not backend_available(args.backend):
        print(f"endurance: skipped: backend {args.backend!r} is not in this tree "
              f"(imsnn_lava.backends.{args.backend} is missing)")
        return 0
    from imsnn_lava.outputs import write_json_atomic

    result = endurance(args.runs, args.warmup, args.backend)
    write_json_atomic(args.out, result)
    print(f"{args.runs} runs ({args.backend}) in {result['seconds']} s; growth after "
          f"{args.warmup} warm-up runs: {result['growth']} (bounds {BOUNDS}): "
          f"{'PASS' if result['passed'] else 'FAIL ' + ', '.join(result['failed'])}")
    print(f"result: {args.out}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
