"""Choosing the replica count R: samples simulated side by side in one Lava network."""

from __future__ import annotations

import numpy as np

from imsnn_lava.ir.nodes import ModelFile

# Choosing the replica count R (`auto_replicas`). Lava's simulator costs about 1.7 ms per step
# whatever the network (message passing between the processes, not math), so R samples side by
# side share that cost, while the math grows with R. Measured on 2 cores (demo 784-200-10
# network, 994 neurons, fixed point; bench/lava_throughput.py): ms per step 1.7 (R = 1), 2.3
# (32), 4.8 (94), 11.3 (256), at load ~6: the fixed cost is a third of a step at R ~ 100 and
# a sixth at R ~ 250, where samples/s flatten out. So: R x (input + all layer sizes) ~
# REPLICA_NEURONS.
# Memory: every connection of Lava's CPU backend buffers LAVA_CHANNEL_SLOTS messages of (R, n)
# values, so a replica costs about `replica_bytes` (0.4 MB for the demo network); R is capped to
# keep that under MEMORY_BUDGET.
REPLICA_NEURONS = 250_000
MEMORY_BUDGET = 1 << 30  # bytes for the replica-dependent part (about 0.4 GB base besides)
LAVA_CHANNEL_SLOTS = 64  # Lava 0.10's default pypy_channel_size
REPLICA_BYTES_FACTOR = 2.0  # measured PSS growth per replica / the estimate below


def replica_bytes(model: ModelFile, fixed: bool) -> int:
    """Estimated memory one replica adds: the channel buffers of every connection (source
    -> synapse: bool; synapse -> neurons and neurons -> next: 4-byte ints in fixed point,
    float64 in floating point, LAVA_CHANNEL_SLOTS messages each) plus the models' per-replica
    state, times REPLICA_BYTES_FACTOR (calibrated on the demo network)."""
    n_in = int(np.prod(model.input_shape))
    value = 4 if fixed else 8
    outs = [layer.n_out for layer in model.layers]
    message = n_in + 2 * value * sum(outs)
    state = model.num_steps * n_in + 8 * n_in * len(outs) + 8 * 6 * sum(outs)
    return int(REPLICA_BYTES_FACTOR * (LAVA_CHANNEL_SLOTS * message + state))


def auto_replicas(model: ModelFile, num_samples: int, *, fixed: bool,
                  memory_budget: int = MEMORY_BUDGET) -> int:
    """The replica count for N samples: R_max = min(ceil(REPLICA_NEURONS / neurons),
    memory_budget // replica_bytes), neurons = input size + every layer's size; then balanced
    so that the last sample period is as full as the others: R = ceil(N / ceil(N / R_max))."""
    neurons = int(np.prod(model.input_shape)) + sum(layer.n_out for layer in model.layers)
    r_speed = -(-REPLICA_NEURONS // max(neurons, 1))
    r_mem = max(1, int(memory_budget) // max(replica_bytes(model, fixed), 1))
    r_max = max(1, min(r_speed, r_mem))
    n = max(int(num_samples), 1)
    periods = -(-n // r_max)
    return -(-n // periods)
