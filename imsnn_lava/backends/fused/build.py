"""The fused backend: an imsnn model as a network of Lava processes (Lava imported inside).

    SpikeSource -> [ISIDense | ISIConv -> LIFReset] per layer -> SpikeCounter

Every process has a leading replica dimension R: one network simulates R independent samples
at once; sample j plays on replica j % R during sample period j // R. Each period lasts T steps
(T = model.num_steps) and starts with an exact reset: the LIFReset neurons zero u and v at the
period's first step (Lava's time_step % T == 1) and the synapses send zeros and restart their
ISI counters then, so nothing of one sample reaches the next. The output equals
reference.simulate(model, spikes, fixed=...) step for step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from imsnn_lava.backends.host.wire import get_ints, per_sample, unpack_counts, unpack_words
from imsnn_lava.ir.nodes import LayerSpec, ModelFile
from imsnn_lava.numerics.events import EventCounts
from imsnn_lava.numerics.reference import predict
from imsnn_lava.runtime.guard import lava_logging_guard


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
    def period_steps(self) -> int:
        """Lava steps per sample period (T: the fused network adds no latency)."""
        return self.num_steps

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

    def collect(self, n: int, run_s: float, raster: bool = False):
        """Read the counters (and recorders) after a run: a runtime.run.LavaResult."""
        from imsnn_lava.runtime.run import LavaResult

        c = self.counter
        out = unpack_counts(c.packed_counts.get(), c.s_in.shape[-1], c.proc_params["bits"],
                            c.proc_params["per"])[:n]
        pre = [get_ints(s.spike_counts, n) for s in self.synapses]
        layer_counts = np.stack(pre[1:] + [out.sum(axis=1)], axis=1)
        layers = self.model.layers
        isi = [layer.synapse == "isi" for layer in layers]
        events = EventCounts(
            input_spikes=pre[0], spikes=layer_counts, spikes_in=np.stack(pre, axis=1),
            synops=np.stack([get_ints(s.synops, n) for s in self.synapses], axis=1),
            active_updates=np.stack([get_ints(s.active_updates, n) for s in self.synapses],
                                    axis=1),
            neuron_updates=np.array([self.num_steps * layer.n_out for layer in layers],
                                    np.int64),
            isi=isi, isi_histograms=[get_ints(s.isi_histogram) if k else None
                                     for s, k in zip(self.synapses, isi)])
        result = LavaResult(output_counts=out, layer_counts=layer_counts, input_counts=pre[0],
                            predictions=predict(out), num_steps=self.num_steps,
                            replicas=self.replicas, fixed=self.fixed, steps=self.total_steps,
                            wall_s=0.0, run_s=run_s, events=events)
        if raster:
            result.raster = [unpack_words(s.raster.get(), s.s_in.shape[-1])
                             for s in self.synapses]
            result.raster.append(unpack_words(c.raster.get(), c.s_in.shape[-1]))
        if self.spike_recorders is not None:
            dtype = np.int64 if self.fixed else np.float64
            shape = (self.num_periods, self.num_steps, self.replicas)
            result.spikes = [per_sample(unpack_words(rec.data.get(), rec.a_in.shape[-1]),
                                        shape, n) for rec in self.spike_recorders]
            result.currents = [per_sample(_as(rec.data.get(), dtype), shape, n)
                               for rec in self.current_recorders]
            result.voltages = [per_sample(_as(np.moveaxis(rd.data.get(), -1, 0), dtype),
                                          shape, n) for rd in self.voltage_readers]
        return result


def _as(values: np.ndarray, dtype) -> np.ndarray:
    return np.rint(values).astype(dtype) if dtype is np.int64 else values.astype(dtype)


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
        from imsnn_lava.backends.fused.proc.isi_synapse.process import ISIConv as cls
    else:
        from imsnn_lava.backends.fused.proc.isi_synapse.process import ISIDense as cls
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
    isi_histogram; imsnn_lava.numerics.events has the definitions) and keeps the first sample's
    incoming spikes (Var raster); the output counter keeps the output layer's.
    """
    with lava_logging_guard():
        return _build(model, fixed=fixed, replicas=replicas, num_samples=num_samples,
                      images=images, spikes=spikes, sample_ids=sample_ids, record=record)


def _build(model: ModelFile, *, fixed: bool, replicas: int, num_samples: int,
           images, spikes, sample_ids, record: bool) -> LavaNetwork:
    from imsnn_lava.backends.host.proc.counter.process import SpikeCounter
    from imsnn_lava.backends.host.proc.recorder.process import Recorder
    from imsnn_lava.backends.host.proc.source.process import SpikeSource
    from imsnn_lava.runtime.run import check_inputs

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
