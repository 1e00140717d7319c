"""Build a StockGraph as Lava processes (Lava is imported inside the functions).

Deployed part: only lava.proc classes (LIF, LIFReset, Dense, Sparse; DelayDense/DelaySparse
when a connection has a delay, which the current construction never needs). Host input:
imsnn's SpikeSource (replays or rate-codes the samples). Read-out probes: imsnn's Recorder
(bit-packed spike trains) on every original layer and, with probe_units=True, on every ISI
unit population too. Populations are flat (R * n,); probes see them as (R, n) (or (1, size)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from imsnn_lava.backends.stock.lower import Connection, Population, StockGraph
from imsnn_lava.ir import ModelFile

STOCK_MODULE_PREFIX = "lava.proc."


@dataclass
class StockNetwork:
    """The Lava processes of one built stock network (build a fresh one per run)."""

    graph: StockGraph
    model: ModelFile
    num_samples: int
    periods: int
    source: object
    populations: dict = field(default_factory=dict)  # name -> LIF / LIFReset
    connections: dict = field(default_factory=dict)  # name -> Dense / Sparse / Delay*
    recorders: dict = field(default_factory=dict)  # population name -> Recorder
    inputs: np.ndarray | None = None  # (T, N, n_in) the input spike trains (host side)
    options: dict = field(default_factory=dict)  # read-out options of `collect`

    @property
    def total_steps(self) -> int:
        return self.graph.total_steps(self.periods)

    @property
    def num_periods(self) -> int:
        return self.periods

    @property
    def period_steps(self) -> int:
        return self.graph.num_steps

    @property
    def replicas(self) -> int:
        return self.graph.replicas

    def collect(self, n: int, run_s: float, raster: bool = True):
        """Read the probes after a run: a StockResult (runtime.run.LavaResult and more)."""
        from imsnn_lava.backends.stock.run import result_of

        return result_of(self, read_streams(self), n, run_s, **self.options)

    @property
    def deployed(self) -> list:
        """The processes that make up the network itself (all lava.proc classes)."""
        return list(self.populations.values()) + list(self.connections.values())

    @property
    def host(self) -> list:
        """Host input (SpikeSource) and read-out probes (Recorders): imsnn's own."""
        return [self.source] + list(self.recorders.values())

    @property
    def processes(self) -> list:
        return self.deployed + self.host

    @property
    def root(self):
        return self.source

    @property
    def fixed(self) -> bool:
        return True

    def run_config(self):
        from lava.magma.core.run_configs import Loihi2SimCfg

        return Loihi2SimCfg(select_tag="fixed_pt")


def deployed_processes(net: StockNetwork) -> list[tuple[str, str]]:
    """(name, class path) of every deployed process, for a stock-only check."""
    return [(p.name, f"{type(p).__module__}.{type(p).__qualname__}") for p in net.deployed]


def non_stock(net: StockNetwork) -> list[tuple[str, str]]:
    """Deployed processes whose class is not from lava.proc (empty for a valid network)."""
    return [(n, c) for n, c in deployed_processes(net) if not c.startswith(STOCK_MODULE_PREFIX)]


def _population(pop: Population):
    from lava.proc.lif.process import LIF, LIFReset

    v = 0 if pop.v_init is None else np.asarray(pop.v_init, dtype=np.int64)
    common = dict(shape=(pop.size,), du=pop.du, dv=pop.dv, vth=pop.vth, bias_mant=pop.bias,
                  bias_exp=0, v=v, name=pop.name)
    if pop.model == "LIFReset":
        return LIFReset(reset_interval=pop.reset_interval, reset_offset=pop.reset_offset,
                        **common)
    return LIF(**common)


def _connection(conn: Connection):
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.sparse.process import DelaySparse, Sparse

    params = dict(weight_exp=int(conn.weight_exp), num_weight_bits=int(conn.num_weight_bits),
                  name=conn.name)
    if conn.kind == "Dense":
        weights = conn.weights.toarray().astype(np.int32)
        if conn.delay:
            return DelayDense(weights=weights, delays=int(conn.delay), **params)
        return Dense(weights=weights, **params)
    weights = conn.weights.astype(np.int32)
    if conn.delay:
        return DelaySparse(weights=weights, delays=int(conn.delay), **params)
    return Sparse(weights=weights, **params)


def build(model: ModelFile, *, fixed: bool = True, replicas: int = 1, num_samples: int,
          images: np.ndarray | None = None, spikes: np.ndarray | None = None,
          sample_ids: np.ndarray | None = None, record: bool = False,
          prefer: str = "auto", probe_units: bool = False, count: bool = True
          ) -> StockNetwork:
    """The backend entry point (imsnn_lava.backends.build): lower `model` (fixed point only)
    and build its stock network for `num_samples` samples, the original layers probed."""
    from imsnn_lava.backends.stock.lower import lower
    from imsnn_lava.backends.stock.run import host_spikes
    from imsnn_lava.ir.nodes import check

    if not fixed:
        raise ValueError("the stock backend runs Lava's fixed-point models only (fixed=True)")
    check(model)
    spikes, images, sample_ids, x = host_spikes(model, spikes=spikes, images=images,
                                                sample_ids=sample_ids)
    n = x.shape[1]
    if n != num_samples:
        raise ValueError(f"num_samples = {num_samples} but the inputs hold {n} samples")
    graph = lower(model, replicas=max(1, min(int(replicas), n)), prefer=prefer)
    net = build_graph(graph, model, num_samples=n, spikes=spikes, images=images,
                      sample_ids=sample_ids, probe_layers=True,
                      probe_input=record or probe_units, probe_units=probe_units)
    net.inputs = x
    net.options = {"record": record, "probe_units": probe_units, "count": count}
    return net


def build_graph(graph: StockGraph, model: ModelFile, *, num_samples: int,
          spikes: np.ndarray | None = None, images: np.ndarray | None = None,
          sample_ids: np.ndarray | None = None, probe_layers: bool = True,
          probe_input: bool = True, probe_units: bool = False) -> StockNetwork:
    """Create (not compile) the processes of `graph` for N samples.

    spikes: (N, T, n_in) bool, or images: (N, n_in) uint8 rate-coded inside the source with
    the model's encoding and `sample_ids`. probe_layers: a Recorder on every original layer;
    probe_input: on the input too (the host knows it: a check of the transport);
    probe_units: also on every ISI unit population (small runs: reading them moves size / 32
    values per step)."""
    from imsnn_lava.runtime.guard import lava_logging_guard

    with lava_logging_guard():
        return _build(graph, model, num_samples=num_samples, spikes=spikes, images=images,
                      sample_ids=sample_ids, probe_layers=probe_layers,
                      probe_input=probe_input, probe_units=probe_units)


def _build(graph, model, *, num_samples, spikes, images, sample_ids, probe_layers,
           probe_input, probe_units) -> StockNetwork:
    from imsnn_lava.backends.host.proc.recorder.process import Recorder
    from imsnn_lava.backends.host.proc.source.process import SpikeSource

    r, t = graph.replicas, graph.num_steps
    periods = -(-int(num_samples) // r)
    enc = model.encoding
    inp = graph.population(graph.layer_names[0])
    source = SpikeSource(shape=(r, inp.per_replica), num_steps=t, num_samples=num_samples,
                         spikes=spikes, images=images, sample_ids=sample_ids,
                         max_rate=enc.max_rate, seed=enc.seed, name="stock_source")
    net = StockNetwork(graph=graph, model=model, num_samples=int(num_samples),
                       periods=periods, source=source)
    for pop in graph.populations:
        if pop.model != "SpikeSource":
            net.populations[pop.name] = _population(pop)

    def out_port(name: str, shape: tuple):
        port = source.s_out if name == inp.name else net.populations[name].s_out
        return port if port.shape == shape else port.reshape(shape)

    for conn in graph.connections:
        proc = _connection(conn)
        net.connections[conn.name] = proc
        out_port(conn.src, (graph.population(conn.src).size,)).connect(proc.s_in)
        proc.a_out.connect(net.populations[conn.dst].a_in)
    steps = graph.total_steps(periods)
    for pop in graph.populations:
        wanted = {"input": probe_input, "layer": probe_layers}.get(pop.role, probe_units)
        if wanted:
            shape = (r, pop.per_replica) if not pop.shared else (1, pop.size)
            rec = Recorder(shape=shape, num_steps=steps, pack=True, name=f"rec_{pop.name}")
            out_port(pop.name, shape).connect(rec.a_in)
            net.recorders[pop.name] = rec
    return net


def read_streams(net: StockNetwork) -> dict[str, np.ndarray]:
    """Every probed population's spikes over the run, (G, size) bool (after the run)."""
    from imsnn_lava.backends.host.wire import unpack_words

    out = {}
    for name, rec in net.recorders.items():
        pop = net.graph.population(name)
        bits = unpack_words(rec.data.get(), rec.a_in.shape[-1])
        out[name] = bits.reshape(bits.shape[0], -1)[:, :pop.size]
    return out
