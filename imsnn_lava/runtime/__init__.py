"""The runtime: run and stream samples through a backend's network, replicas and shards, and
the guard that always stops Lava.

    run.py       run(model, ..., backend=...) -> LavaResult; input checks
    guard.py     start, watchdog, shutdown, kill by pid; Lava's global state
    replicas.py  choosing the replica count R
    shards.py    splitting a sample selection into shards
    progress.py  progress bars (terminal only)
"""

from imsnn_lava.runtime.guard import shutdown_runtime, stop_all_runtimes
from imsnn_lava.runtime.replicas import REPLICA_NEURONS, auto_replicas, replica_bytes
from imsnn_lava.runtime.run import LavaResult, check_inputs, run

__all__ = ["REPLICA_NEURONS", "LavaResult", "auto_replicas", "check_inputs", "replica_bytes",
           "run", "shutdown_runtime", "stop_all_runtimes"]
