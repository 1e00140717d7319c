"""Backends: IR in, a connected Lava network and its counters out.

    fused/   imsnn's own ISI synapse processes (Python ProcessModels: CPU only)
    stock/   every ISI layer lowered onto Lava's own processes (LIF, Dense, Sparse, ...)
    host/    host-side processes every backend shares: input source, recorders, counters

A backend's `build(model, *, fixed, replicas, num_samples, images, spikes, sample_ids,
record)` returns a network with `root`, `run_config()`, `processes`, `num_periods`,
`period_steps`, `total_steps` and `collect(n, run_s, raster) -> runtime.run.LavaResult`;
the runtime, results and report do not know which backend ran.
"""

from __future__ import annotations

NAMES = ("fused", "stock")


def build(name: str, model, **kwargs):
    """Build `model` with the backend called `name` (Lava is imported only here)."""
    if name == "fused":
        from imsnn_lava.backends.fused.build import build as fn
    elif name == "stock":
        from imsnn_lava.backends.stock.build import build as fn
    else:
        raise ValueError(f"backend: expected one of {NAMES}, got {name!r}")
    return fn(model, **kwargs)


# The stock backend flattens R replicas into each process with block-diagonal weights; on the
# 784-500-10 IMSNN R = 4 ran at 2.41 samples/s against 5.13 at R = 1 (bench/stock_backend.py),
# so it runs one sample at a time unless told otherwise.
STOCK_DEFAULT_REPLICAS = 1


def default_replicas(name: str, model, num_samples: int, *, fixed: bool) -> int:
    """The replica count a backend runs N samples with when none is given."""
    if name == "stock":
        return STOCK_DEFAULT_REPLICAS
    from imsnn_lava.runtime.replicas import auto_replicas

    return auto_replicas(model, num_samples, fixed=fixed)
