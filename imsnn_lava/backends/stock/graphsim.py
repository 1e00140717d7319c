"""A numpy simulator of a StockGraph with the integer semantics of Lava's bit-accurate models
(numpy and scipy only): the fast model of the lowered network the tests compare with
reference.simulate, independent of Lava.

Per Lava step g = 1, 2, ...: every LIF/LIFReset population receives the sum of what its
connections buffered at step g-1 (PyDenseModelBitAcc / PySparseModelBitAcc: (W @ s) <<
weight_exp, handed on one step late), runs PyLifModelBitAcc / PyLifResetModelBitAcc (a
LIFReset zeroes u and v first when g % reset_interval == reset_offset), and sends its spikes;
every connection then buffers its input spikes of step g.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imsnn_lava.backends.stock.lower import Population, StockGraph
from imsnn_lava.ir import fixed_point as fp


@dataclass
class GraphRun:
    """Every population's spikes (G, size) bool and, with record_inputs, the a_in each
    received (G, size) int64, over the G Lava steps of the run (index g - 1)."""

    spikes: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray] | None


def input_stream(spikes: np.ndarray, replicas: int, total_steps: int) -> np.ndarray:
    """(N, T, n) per-sample input spikes -> (total_steps, R * n) on Lava's clock: sample
    p * R + r plays on replica r during period p (steps p*T + 1 .. (p+1)*T), as SpikeSource."""
    n, t, n_in = spikes.shape
    periods = -(-n // replicas)
    padded = np.zeros((periods * replicas, t, n_in), dtype=bool)
    padded[:n] = spikes
    stream = padded.reshape(periods, replicas, t, n_in).transpose(0, 2, 1, 3)
    out = np.zeros((total_steps, replicas * n_in), dtype=bool)
    steps = min(total_steps, periods * t)
    out[:steps] = stream.reshape(periods * t, replicas * n_in)[:steps]
    return out


def lif_step(pop: Population, g: int, a_in: np.ndarray, u: np.ndarray, v: np.ndarray):
    """One step of Lava's fixed-point LIF (LIFReset) at Lava step g (1-based), in place."""
    if pop.reset_interval is not None and g % pop.reset_interval == pop.reset_offset:
        u[:] = 0
        v[:] = 0
    u[:] = fp.wrap_u(fp.decay_int(u, pop.du + fp.DU_OFFSET)
                     + np.left_shift(a_in.astype(np.int64), fp.ACT_SHIFT))
    v[:] = fp.clip_v(fp.decay_int(v, pop.dv + fp.DV_OFFSET) + u + pop.bias)
    s = v > (pop.vth << fp.VTH_SHIFT)
    v[s] = 0
    return s


def simulate(graph: StockGraph, stream: np.ndarray, *, record_inputs: bool = False,
             drop: tuple[str, ...] = ()) -> GraphRun:
    """Run the graph for len(stream) steps on (G, R * n_in) input spikes.

    drop: names of connections to leave out (to show that a broken construction fails)."""
    total = stream.shape[0]
    pops = [p for p in graph.populations if p.model != "SpikeSource"]
    conns = [c for c in graph.connections if c.name not in drop]
    spikes = {p.name: np.zeros((total, p.size), dtype=bool) for p in graph.populations}
    src = next(p for p in graph.populations if p.model == "SpikeSource")
    spikes[src.name][:] = stream
    inputs = {p.name: np.zeros((total, p.size), np.int64) for p in pops} if record_inputs \
        else None
    state = {p.name: (np.zeros(p.size, np.int64),
                      np.zeros(p.size, np.int64) if p.v_init is None
                      else np.asarray(p.v_init, np.int64).copy()) for p in pops}
    buf = {c.name: np.zeros(c.weights.shape[0], np.int64) for c in conns}
    into = {p.name: [c for c in conns if c.dst == p.name] for p in pops}
    for i in range(total):
        for p in pops:
            a = np.zeros(p.size, np.int64)
            for c in into[p.name]:
                a += buf[c.name]
            if inputs is not None:
                inputs[p.name][i] = a
            u, v = state[p.name]
            spikes[p.name][i] = lif_step(p, i + 1, a, u, v)
        for c in conns:
            s = spikes[c.src][i]
            acc = c.weights[:, s].sum(axis=1).A1.astype(np.int64) if s.any() \
                else np.zeros(c.weights.shape[0], np.int64)
            buf[c.name] = np.left_shift(acc, c.weight_exp)
    return GraphRun(spikes=spikes, inputs=inputs)


def layer_windows(graph: StockGraph, run_spikes: dict[str, np.ndarray], num_samples: int
                  ) -> list[np.ndarray]:
    """Per original layer 0..L, its spikes in its own sample windows: (T, N, n) bool, the
    shape reference.simulate gives (the extra latency undone)."""
    out = []
    for name, off in zip(graph.layer_names, graph.offsets):
        out.append(window(graph, graph.population(name), run_spikes[name], num_samples, off))
    return out


def window(graph: StockGraph, pop: Population, data: np.ndarray, num_samples: int,
           offset: int) -> np.ndarray:
    """(G, R * n) step records of a replicated population -> (T, N, n) per sample."""
    t, r = graph.num_steps, graph.replicas
    periods = -(-num_samples // r)
    block = data[offset:offset + periods * t, :r * pop.per_replica]
    if block.shape[0] != periods * t:
        raise ValueError(f"{pop.name}: the run has {data.shape[0]} steps, windows need "
                         f"{offset + periods * t}")
    block = block.reshape(periods, t, r, pop.per_replica).transpose(1, 0, 2, 3)
    return block.reshape(t, periods * r, pop.per_replica)[:, :num_samples]
