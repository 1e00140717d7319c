"""Events of the lowered (stock) network, per sample (numpy and scipy only).

`count_model` derives every population's spikes from the original layers' spike trains
(input included, (T, N, n) per layer as reference.simulate or the fused runner give them):
the layers' own spikes shifted by their latency, and the ISI units' spikes in closed form
(Z(i, c) fires at the presynaptic local step t iff c_i[t] == c < K; D(i, k) fires at t + 1
iff the presynaptic neuron spiked at t <= T - 2 with bin k; exactly one ring neuron fires
per step). `count_streams` turns any such spike streams (also those recorded in Lava) into
event counts, with these definitions:

- spikes: the spikes a population's neurons emit;
- synops (per connection): a spike into a connection costs one event per synapse it fans
  out to: Dense, every entry of the matrix column (zeros included); Sparse, the stored
  non-zeros of the column;
- neuron_updates: every neuron at every step; active_updates: (step, neuron) pairs whose
  summed input is non-zero (cancellations and zero weights count as idle).

Attribution: Lava step g (1-based) of a population with window offset o belongs to sample
period clip((g - 1 - o) // T, 0, P - 1), so the steps before the first window (latency
lead-in) go to period 0 and the steps after the last (the tail) to the last period.
A replicated neuron's events go to its replica's sample p * R + r; synaptic events go to
the destination neuron, at the step they are delivered (one after the spike). The ring
neurons, shared by all replicas, are counted per period (`shared_*`, shape (P,)). Totals
over the whole run (padding replicas of the last period included) are in `totals`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from imsnn_lava.backends.stock.lower import Connection, Population, StockGraph, column_fanout

ACTIVE_CHUNK_STEPS = 2000  # steps per block when summing delivered inputs (bounds memory)


@dataclass
class StockEvents:
    num_samples: int
    periods: int
    spikes: dict[str, np.ndarray] = field(default_factory=dict)  # pop -> (N,)
    synops: dict[str, np.ndarray] = field(default_factory=dict)  # conn -> (N,)
    neuron_updates: dict[str, np.ndarray] = field(default_factory=dict)  # pop -> (N,)
    active_updates: dict[str, np.ndarray] = field(default_factory=dict)  # pop -> (N,)
    shared_spikes: dict[str, np.ndarray] = field(default_factory=dict)  # pop -> (P,)
    shared_synops: dict[str, np.ndarray] = field(default_factory=dict)  # conn -> (P,)
    shared_neuron_updates: dict[str, np.ndarray] = field(default_factory=dict)
    shared_active_updates: dict[str, np.ndarray] = field(default_factory=dict)
    totals: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> name -> int

    def per_sample_total(self, kind: str) -> np.ndarray:
        """(N,) sum over populations (or connections) of one kind of event."""
        values = list(getattr(self, kind).values())
        return np.sum(values, axis=0) if values else np.zeros(self.num_samples, np.int64)

    def equals(self, other: StockEvents) -> list[str]:
        """Names of the fields that differ (empty: identical)."""
        diff = []
        for key in ("spikes", "synops", "neuron_updates", "active_updates", "shared_spikes",
                    "shared_synops", "shared_neuron_updates", "shared_active_updates"):
            a, b = getattr(self, key), getattr(other, key)
            if a.keys() != b.keys():
                diff.append(f"{key}: names {sorted(a)} != {sorted(b)}")
                continue
            diff += [f"{key}[{k}]" for k in a if not np.array_equal(a[k], b[k])]
        if self.totals != other.totals:
            diff.append("totals")
        return diff


# ---------------------------------------------------------------------------------------------
# the streams of every population, from the original layers' spikes


def _periods(graph: StockGraph, n: int) -> int:
    return -(-n // graph.replicas)


def _place(graph: StockGraph, pop: Population, per_sample: np.ndarray, total: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """(T, N, m) per-sample spikes of a replicated population (m = per_replica) -> (step
    index, neuron) pairs on the run's timeline, local step t at index offset + pT + t."""
    t_steps, n, m = per_sample.shape
    r = graph.replicas
    tt, ss, jj = np.nonzero(per_sample)
    period, rep = np.divmod(ss, r)
    step = pop.offset + period * t_steps + tt
    keep = step < total
    return step[keep], (rep * m + jj)[keep]


def _counters(pre: np.ndarray, c0: int, k: int) -> np.ndarray:
    """(T, N, n) ISI counters min(c, K) of isi.counter_step (int16)."""
    c = np.empty(pre.shape, np.int16)
    c[0] = c0
    for t in range(pre.shape[0] - 1):
        c[t + 1] = np.where(pre[t], 1, np.minimum(c[t] + 1, k))
    return c


def count_model_streams(graph: StockGraph, model, layer_spikes: list[np.ndarray]
                        ) -> dict[str, sp.csr_matrix]:
    """Every population's spikes as (G, size) boolean CSR matrices, G = the run's steps."""
    n = layer_spikes[0].shape[1]
    periods = _periods(graph, n)
    total = graph.total_steps(periods)
    t_steps, r = graph.num_steps, graph.replicas
    # padded to whole periods: replicas without a sample see no spikes
    padded = []
    for s in layer_spikes:
        x = np.zeros((t_steps, periods * r, s.shape[2]), dtype=bool)
        x[:, :n] = s
        padded.append(x)
    events: dict[str, tuple] = {}
    for pop, x in zip((graph.population(nm) for nm in graph.layer_names), padded):
        events[pop.name] = _place(graph, pop, x, total)
    for index, layer in enumerate(model.layers, start=1):
        pre = padded[index - 1]
        k_bins = layer.phi_max if layer.synapse == "isi" else 1
        c0 = layer.c0 if layer.synapse == "isi" else 1
        units = [p for p in graph.populations if p.layer == index and p.role == "detector"]
        z = units[0]
        off = z.offset
        n_pre = pre.shape[2]
        # ring: one neuron per step, neuron (g - off) mod T at Lava step g
        g = np.arange(1, total + 1)
        ring = (z.replicas * z.per_replica + (g - off) % t_steps, g - 1)
        # chain, for the real periods and the virtual ones before/after (no spikes)
        lo = -(-off // t_steps) if off else 0
        hi = -(-(total - off) // t_steps)
        ext = np.zeros((t_steps, (lo + hi) * r, n_pre), dtype=bool)
        ext[:, lo * r:(lo + periods) * r] = pre
        c = _counters(ext, c0, k_bins)
        if off:  # a virtual period whose V step (1-based off + pT) is < 1 never started
            started = np.repeat(off + (np.arange(-lo, hi) * t_steps) >= 1, r)
            c[:, ~started] = k_bins
        tt, ss, ii = np.nonzero(c < k_bins)
        period, rep = np.divmod(ss, r)
        step = off + (period - lo) * t_steps + tt
        keep = (step >= 0) & (step < total)
        neuron = rep * z.per_replica + (c[tt, ss, ii].astype(np.int64) - 1) * n_pre + ii
        events[z.name] = (np.concatenate([step[keep], ring[1]]),
                          np.concatenate([neuron[keep], ring[0]]))
        # detectors: D(i, k) at local t + 1 for a spike at t <= T - 2, bin k
        cb = _counters(pre, c0, k_bins)
        pre_ok = pre.copy()
        pre_ok[-1] = False
        tt, ss, ii = np.nonzero(pre_ok)
        kk = cb[tt, ss, ii].astype(np.int64)
        period, rep = np.divmod(ss, r)
        step = off + period * t_steps + tt + 1
        for d in units[1:]:
            bins = [int(name.split()[1]) for name, _, _ in d.parts]
            pos = np.full(k_bins + 1, -1)
            pos[bins] = np.arange(len(bins))
            sel = pos[kk] >= 0
            neuron = rep[sel] * d.per_replica + pos[kk[sel]] * n_pre + ii[sel]
            events[d.name] = (step[sel], neuron)
    out = {}
    for pop in graph.populations:
        steps, neurons = events.get(pop.name, (np.zeros(0, int), np.zeros(0, int)))
        out[pop.name] = sp.csr_matrix((np.ones(steps.size, bool), (steps, neurons)),
                                      shape=(total, pop.size))
    return out


# ---------------------------------------------------------------------------------------------
# counting events of spike streams


def _period_of(step_index: np.ndarray, offset: int, t: int, periods: int) -> np.ndarray:
    return np.clip((step_index - offset) // t, 0, periods - 1)


def _bucket(graph, pop: Population, steps, neurons, weights, n: int, periods: int):
    """Sum `weights` of events at (step index, neuron) into (N,) samples and (P,) shared."""
    p = _period_of(steps, pop.offset, graph.num_steps, periods)
    rep_part = neurons < pop.replicas * pop.per_replica
    rep = np.where(rep_part, neurons // max(pop.per_replica, 1), 0)
    sample = p * graph.replicas + rep
    per = np.bincount(sample[rep_part], weights[rep_part], minlength=periods * graph.replicas)
    shared = np.bincount(p[~rep_part], weights[~rep_part], minlength=periods)
    return per[:n].astype(np.int64), shared.astype(np.int64), int(weights.sum())


def _active(graph: StockGraph, pop: Population, conns: list[Connection],
            streams: dict[str, sp.csr_matrix], n: int, periods: int):
    """Active updates of `pop`: (step, neuron) pairs whose summed delivered input (one step
    after the spikes) is non-zero; computed over ACTIVE_CHUNK_STEPS steps at a time."""
    total = streams[pop.name].shape[0]
    per = np.zeros(n, np.int64)
    shared = np.zeros(periods, np.int64)
    tot = 0
    mats = [(c, sp.csr_matrix(c.weights.T, dtype=np.int64)) for c in conns]
    for g0 in range(1, total, ACTIVE_CHUNK_STEPS):  # nothing is delivered at step index 0
        g1 = min(total, g0 + ACTIVE_CHUNK_STEPS)
        a = sp.csr_matrix((g1 - g0, pop.size), dtype=np.int64)
        for c, wt in mats:
            spikes = sp.csr_matrix(streams[c.src][g0 - 1:g1 - 1], dtype=np.int64)
            a = a + (spikes @ wt) * (1 << c.weight_exp)
        a = a.tocoo()
        nz = a.data != 0
        p_, s_, t_ = _bucket(graph, pop, a.row[nz] + g0, a.col[nz],
                             np.ones(int(nz.sum()), np.int64), n, periods)
        per += p_
        shared += s_
        tot += t_
    return per, shared, tot


def count_streams(graph: StockGraph, streams: dict[str, sp.spmatrix], num_samples: int
                  ) -> StockEvents:
    """Event counts of a run whose populations spiked as `streams` ((G, size) each)."""
    n = int(num_samples)
    periods = _periods(graph, n)
    t = graph.num_steps
    ev = StockEvents(num_samples=n, periods=periods)
    ev.totals = {"spikes": {}, "synops": {}, "neuron_updates": {}, "active_updates": {}}
    pops = {p.name: p for p in graph.populations}
    streams = {k: sp.csr_matrix(v, dtype=bool) for k, v in streams.items()}
    total = next(iter(streams.values())).shape[0]
    for conn in graph.connections:
        dst = pops[conn.dst]
        s = streams[conn.src].tocoo()
        fan = column_fanout(conn)
        # synaptic events per destination replica: split each column's fan-out by rows
        pattern = sp.csr_matrix(np.ones(conn.weights.shape, bool)) if conn.kind == "Dense" \
            else sp.csr_matrix(conn.weights != 0)
        rows = np.arange(dst.size)
        group = np.where(rows < dst.replicas * dst.per_replica,
                         rows // max(dst.per_replica, 1), dst.replicas)
        split = sp.csr_matrix((np.ones(dst.size, np.int64), (rows, group)),
                              shape=(dst.size, dst.replicas + 1))
        per_group = (pattern.T.astype(np.int64) @ split).toarray()  # (src.size, R + 1)
        assert np.array_equal(per_group.sum(axis=1), fan)
        step = s.row + 1  # delivered one step later (the last step's never arrive)
        per = np.zeros(periods * graph.replicas, np.int64)
        shared = np.zeros(periods, np.int64)
        p = _period_of(step, dst.offset, t, periods)
        for g in range(dst.replicas + 1):
            w = per_group[s.col, g]
            if g < dst.replicas:
                per += np.bincount(p * graph.replicas + g, w, minlength=per.size).astype(
                    np.int64)
            else:
                shared += np.bincount(p, w, minlength=periods).astype(np.int64)
        if dst.per_replica:
            ev.synops[conn.name] = per[:n]
        if dst.shared:
            ev.shared_synops[conn.name] = shared
        ev.totals["synops"][conn.name] = int(fan[s.col].sum())
    for pop in graph.populations:
        s = streams[pop.name].tocoo()
        per, shared, tot = _bucket(graph, pop, s.row, s.col, np.ones(s.nnz, np.int64), n,
                                   periods)
        steps = np.bincount(_period_of(np.arange(total), pop.offset, t, periods),
                            minlength=periods)
        neuron = pop.model != "SpikeSource"  # the host input has no neurons to update
        if pop.per_replica:
            ev.spikes[pop.name] = per
            if neuron:
                ev.neuron_updates[pop.name] = np.repeat(steps, graph.replicas)[:n] \
                    * pop.per_replica
        if pop.shared:
            ev.shared_spikes[pop.name] = shared
            ev.shared_neuron_updates[pop.name] = steps * pop.shared
        ev.totals["spikes"][pop.name] = tot
        if neuron:
            ev.totals["neuron_updates"][pop.name] = total * pop.size
            per, shared, tot = _active(graph, pop, [c for c in graph.connections
                                                    if c.dst == pop.name], streams, n,
                                       periods)
            if pop.per_replica:
                ev.active_updates[pop.name] = per
            if pop.shared:
                ev.shared_active_updates[pop.name] = shared
            ev.totals["active_updates"][pop.name] = tot
    return ev


def count_model(graph: StockGraph, model, layer_spikes: list[np.ndarray]) -> StockEvents:
    """The lowered network's events from the original layers' spike trains (input first,
    (T, N, n) each, as the fused model produces them)."""
    n = layer_spikes[0].shape[1]
    return count_streams(graph, count_model_streams(graph, model, layer_spikes), n)
