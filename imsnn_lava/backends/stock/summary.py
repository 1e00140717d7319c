"""The lowered network's events as JSON-able rows, one per stock population, in the form the
energy model reads (the "layers" rows of a results JSON), plus its resource totals.

Per sample (means over the run's samples): spikes, synaptic events (those delivered into the
population, attributed to it as the count model does), neuron updates and their active/idle
split. A ring's neurons are shared by the R replicas of a sample period, so their events are
divided among those samples (per period / R). numpy only."""

from __future__ import annotations

import numpy as np

from imsnn_lava.backends.stock.counts import StockEvents
from imsnn_lava.backends.stock.lower import StockGraph, column_fanout, stored_synapses

ROLE_OF = {"input": "input", "layer": "layer", "detector": "isi-unit"}
LOWERED_FORMAT = "stock-lowered"


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if np.size(values) else 0.0


def population_rows(graph: StockGraph, events: StockEvents) -> list[dict]:
    """One row per population but the input: name, role, layer, neurons (per replica, shared
    ring neurons included), spikes/synops/neuron updates per sample."""
    n = max(events.num_samples, 1)
    into = {}
    for conn in graph.connections:
        into.setdefault(conn.dst, []).append(conn.name)
    rows = []
    for pop in graph.populations:
        if pop.role == "input":
            continue

        def per_sample(kind: str, name: str) -> float:
            own = getattr(events, kind).get(name)
            shared = getattr(events, f"shared_{kind}").get(name)
            value = _mean(own) if own is not None else 0.0
            if shared is not None and np.size(shared):  # a ring's events, spread over samples
                value += float(np.sum(shared)) / n
            return value

        synops = sum(per_sample("synops", c) for c in into.get(pop.name, []))
        updates = per_sample("neuron_updates", pop.name)
        active = per_sample("active_updates", pop.name)
        rows.append({
            "name": pop.name, "role": ROLE_OF.get(pop.role, pop.role), "layer": int(pop.layer),
            "neurons": int(pop.per_replica + pop.shared),
            "spikes_per_sample": per_sample("spikes", pop.name),
            "synops_per_sample": synops,
            "neuron_updates_per_sample": updates,
            "active_updates_per_sample": active,
            "idle_updates_per_sample": max(updates - active, 0.0),
        })
    return rows


def lowered_summary(graph: StockGraph, events: StockEvents) -> dict:
    """The JSON section `lowered` of a result: rows, resource totals, timing facts."""
    kinds = sorted({c.kind for c in graph.connections})
    return {
        "format": LOWERED_FORMAT,
        "num_samples": int(events.num_samples),
        "populations": len(graph.populations) - 1,
        "connections": len(graph.connections),
        "processes": len(graph.populations) - 1 + len(graph.connections),
        "process_kinds": ["LIF", "LIFReset", *kinds],
        "neurons": int(sum(p.per_replica + p.shared for p in graph.populations
                           if p.role != "input")),
        "synapses": int(sum(stored_synapses(c) for c in graph.connections)) // graph.replicas,
        "latency_steps": [int(x) for x in graph.latency],
        "layers": population_rows(graph, events),
    }


def resource_rows(graph: StockGraph) -> list[dict]:
    """Per stock population (one replica): neurons, the synapses of its incoming connections
    (stored: every entry of a Dense matrix, the non-zeros of a Sparse one) and their memory,
    axons, fan-in (stored synapses into its busiest neuron), fan-out (the busiest source
    neuron's stored synapses), largest delay and weight bits; `processes` names the stock
    classes the population and its input connections need."""
    rows = []
    for pop in graph.populations:
        if pop.role == "input":
            continue
        into = [c for c in graph.connections if c.dst == pop.name]
        out = [c for c in graph.connections if c.src == pop.name]
        synapses = sum(stored_synapses(c) for c in into)
        fan_in = np.zeros(pop.size, np.int64)
        for c in into:
            fan_in += np.diff(c.weights.indptr) if c.kind == "Sparse" else c.weights.shape[1]
        fan_out = max((int(column_fanout(c).max(initial=0)) for c in out), default=0)
        rows.append({
            "name": pop.name, "role": ROLE_OF.get(pop.role, pop.role),
            "neurons": int(pop.size), "synapses": int(synapses),
            "synaptic_memory_bits": int(sum(stored_synapses(c) * c.num_weight_bits
                                            for c in into)),
            "axons_in": int(sum(graph.population(c.src).size for c in into)),
            "axons_out": int(pop.size), "fan_in": int(fan_in.max(initial=0)),
            "fan_out": fan_out, "max_delay": int(max((c.delay for c in into), default=0)),
            "weight_bits": int(max((c.num_weight_bits for c in into), default=0)),
            "processes": [pop.model] + sorted({c.kind for c in into}),
        })
    return rows
