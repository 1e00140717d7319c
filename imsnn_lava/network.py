"""Build an imsnn model as a network of Lava processes (Lava is imported inside `build`).

    SpikeSource -> [ISIDense | ISIConv -> LIFReset] per layer -> SpikeCounter

Every process has a leading replica dimension R: one network simulates R independent samples
at once; sample j plays on replica j % R during sample period j // R. Each period lasts T steps
(T = model.num_steps) and starts with an exact reset: the LIFReset neurons zero u and v at the
period's first step (Lava's time_step % T == 1) and the synapses send zeros and restart their
ISI counters then, so nothing of one sample reaches the next. The output equals
reference.simulate(model, spikes, fixed=...) step for step.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from imsnn_lava.format import LayerSpec, ModelFile


@dataclass
class LavaNetwork:
    """The processes of one built network (one run: build a fresh one for a fresh run)."""

    model: ModelFile
    fixed: bool
    replicas: int
    num_samples: int
    num_periods: int
    source: object
    synapses: list = field(default_factory=list)  # per layer
    neurons: list = field(default_factory=list)  # per layer, LIFReset (R, n_out)
    counter: object = None  # SpikeCounter on the output layer
    spike_recorders: list | None = None  # input + every layer, bit-packed
    current_recorders: list | None = None  # every synapse's a_out
    voltage_readers: list | None = None  # lava.proc.io.sink.Read on every LIFReset.v

    @property
    def num_steps(self) -> int:
        return self.model.num_steps

    @property
    def total_steps(self) -> int:
        return self.num_periods * self.num_steps

    @property
    def processes(self) -> list:
        procs = [self.source, *self.synapses, *self.neurons, self.counter]
        for extra in (self.spike_recorders, self.current_recorders, self.voltage_readers):
            procs.extend(extra or [])
        return [p for p in procs if p is not None]

    @property
    def root(self):
        """Any process of the network: running it runs them all."""
        return self.source

    @property
    def select_tag(self) -> str:
        return "fixed_pt" if self.fixed else "floating_pt"

    def run_config(self):
        from lava.magma.core.run_configs import Loihi2SimCfg

        return Loihi2SimCfg(select_tag=self.select_tag)


def check_inputs(model: ModelFile, *, images=None, spikes=None, sample_ids=None
                 ) -> tuple[int, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Validate the input arrays; returns (N, images (N, n) uint8, spikes (N, T, n) bool, ids)."""
    t = model.num_steps
    n_in = int(np.prod(model.input_shape))
    if (images is None) == (spikes is None):
        raise ValueError("give exactly one of images (N, ...) uint8 or spikes (N, T, n_in)")
    if spikes is not None:
        spikes = np.asarray(spikes)
        if spikes.ndim != 3 or spikes.shape[1:] != (t, n_in):
            hint = ""
            if spikes.ndim == 3 and spikes.shape[0] == t and spikes.shape[2] == n_in:
                hint = " (this looks like (T, N, n_in), as encode returns: pass " \
                       "spikes.transpose(1, 0, 2))"
            raise ValueError(f"spikes: expected shape (N, {t}, {n_in}), got "
                             f"{spikes.shape}{hint}")
        return spikes.shape[0], None, np.asarray(spikes, dtype=bool), None
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"images: expected dtype uint8, got {images.dtype}")
    n = images.shape[0]
    images = images.reshape(n, -1)
    if images.shape[1] != n_in:
        raise ValueError(f"images: expected {n_in} pixels per image, got {images.shape[1]}")
    if sample_ids is None:
        sample_ids = np.arange(n, dtype=np.int64)
    sample_ids = np.asarray(sample_ids, dtype=np.int64).reshape(-1)
    if sample_ids.shape[0] != n:
        raise ValueError(f"sample_ids: expected {n} ids, got {sample_ids.shape[0]}")
    return n, images, None, sample_ids


def _neuron(layer: LayerSpec, fixed: bool, replicas: int, num_steps: int, name: str):
    from lava.proc.lif.process import LIFReset

    if fixed:
        du, dv, vth = layer.fixed.du, layer.fixed.dv, layer.fixed.vth
    else:
        du, dv, vth = layer.du, layer.dv, layer.vth
    return LIFReset(shape=(replicas, layer.n_out), du=du, dv=dv, vth=vth, bias_mant=0,
                    reset_interval=num_steps, reset_offset=1, name=name)


def _synapse(layer: LayerSpec, fixed: bool, replicas: int, num_steps: int, num_periods: int,
             name: str):
    if layer.kind == "conv":
        from imsnn_lava.proc.isi_conv.process import ISIConv as cls
    else:
        from imsnn_lava.proc.isi_dense.process import ISIDense as cls
    return cls.from_layer(layer, fixed=fixed, replicas=replicas, num_steps=num_steps,
                          num_periods=num_periods, name=name)


def build(model: ModelFile, *, fixed: bool, replicas: int, num_samples: int,
          images: np.ndarray | None = None, spikes: np.ndarray | None = None,
          sample_ids: np.ndarray | None = None, record: bool = False) -> LavaNetwork:
    """Build (not compile) the Lava processes of `model` for `num_samples` samples.

    images: (N, ...) uint8, encoded inside the source with the model's encoding parameters
    and `sample_ids` (default 0..N-1); or spikes: (N, T, n_in) bool. fixed: run Lava's
    bit-accurate models on the file's integers (needs a fixed-point file); else float64.
    record: also record every layer's spike trains, every synapse's output and every
    neuron's v at every step (small runs only: Var.get moves ~55k values/s).
    Each synapse counts its layer's events (Vars spike_counts, synops, active_updates,
    isi_histogram; imsnn_lava.counting has the definitions) and keeps the first sample's
    incoming spikes (Var raster); the output counter keeps the output layer's.
    """
    with lava_logging_guard():
        return _build(model, fixed=fixed, replicas=replicas, num_samples=num_samples,
                      images=images, spikes=spikes, sample_ids=sample_ids, record=record)


_LAVA_LOGGERS = ("", "lava.magma.compiler.compiler")


@contextmanager
def lava_logging_guard():
    """Undo the logging handlers Lava 0.10 adds: every process adds a console handler to the
    root logger and every compile one to the compiler's logger, so each run would multiply
    every later log line of the whole program. Wrap process creation and compilation."""
    loggers = [logging.getLogger(name) for name in _LAVA_LOGGERS]
    before = [list(lg.handlers) for lg in loggers]
    try:
        yield
    finally:
        for lg, keep in zip(loggers, before):
            for handler in list(lg.handlers):
                if handler not in keep:
                    lg.removeHandler(handler)


def release(net: LavaNetwork) -> None:
    """Forget a finished network's processes and Vars in Lava's global registries, which
    otherwise keep every process (with its tables and input arrays) alive for the life of
    the Python process. Call only after its runtime has been shut down."""
    from lava.magma.core.process.process import ProcessServer
    from lava.magma.core.process.variable import VarServer

    procs = net.processes
    proc_ids = {id(p) for p in procs}
    var_ids = {id(v) for p in procs for v in p.vars}
    server = ProcessServer()
    server.processes[:] = [p for p in server.processes if id(p) not in proc_ids]
    var_server = VarServer()
    var_server.vars[:] = [v for v in var_server.vars if id(v) not in var_ids]


def _build(model: ModelFile, *, fixed: bool, replicas: int, num_samples: int,
           images, spikes, sample_ids, record: bool) -> LavaNetwork:
    from imsnn_lava.proc.counter.process import SpikeCounter
    from imsnn_lava.proc.recorder.process import Recorder
    from imsnn_lava.proc.source.process import SpikeSource

    if fixed and any(layer.fixed is None for layer in model.layers):
        raise ValueError("fixed=True needs a fixed-point model file (precision 'fixed')")
    n, images, spikes, sample_ids = check_inputs(model, images=images, spikes=spikes,
                                                 sample_ids=sample_ids)
    if n != num_samples:
        raise ValueError(f"num_samples = {num_samples} but the inputs hold {n} samples")
    if num_samples < 1:
        raise ValueError("need at least one sample")
    replicas = int(replicas)
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, got {replicas}")
    t = model.num_steps
    periods = -(-num_samples // replicas)
    n_in = int(np.prod(model.input_shape))
    enc = model.encoding
    source = SpikeSource(shape=(replicas, n_in), num_steps=t, num_samples=num_samples,
                         spikes=spikes, images=images, sample_ids=sample_ids,
                         max_rate=enc.max_rate, seed=enc.seed, name="imsnn_source")
    net = LavaNetwork(model=model, fixed=fixed, replicas=replicas, num_samples=num_samples,
                      num_periods=periods, source=source)
    port = source.s_out
    for i, layer in enumerate(model.layers):
        syn = _synapse(layer, fixed, replicas, t, periods, f"imsnn_syn{i + 1}_{layer.name}")
        lif = _neuron(layer, fixed, replicas, t, f"imsnn_lif{i + 1}_{layer.name}")
        port.connect(syn.s_in)
        syn.a_out.connect(lif.a_in)
        net.synapses.append(syn)
        net.neurons.append(lif)
        port = lif.s_out
    net.counter = SpikeCounter(shape=(replicas, model.layers[-1].n_out), num_steps=t,
                               num_periods=periods, name="imsnn_counter")
    port.connect(net.counter.s_in)
    if record:
        from lava.proc.io.sink import Read

        steps = net.total_steps
        net.spike_recorders, net.current_recorders, net.voltage_readers = [], [], []
        for proc in [source] + net.neurons:
            rec = Recorder(shape=proc.s_out.shape, num_steps=steps, pack=True)
            proc.s_out.connect(rec.a_in)
            net.spike_recorders.append(rec)
        for syn, lif in zip(net.synapses, net.neurons):
            rec = Recorder(shape=syn.a_out.shape, num_steps=steps, pack=False)
            syn.a_out.connect(rec.a_in)
            net.current_recorders.append(rec)
            reader = Read(buffer=steps)
            reader.connect_var(lif.v)
            net.voltage_readers.append(reader)
    return net
