"""The stock lowering (imsnn_lava.backends.stock.lower) without Lava: the numpy model of the
lowered graph (graphsim) against reference.simulate(fixed=True), its count model, a broken
construction, and bad inputs."""

from __future__ import annotations

import dataclasses

import lava_helpers as H  # tests/lava_helpers.py; conftest.py puts tests/ on sys.path
import numpy as np
import pytest
import scipy.sparse as sp

from imsnn_lava import ir as F
from imsnn_lava.backends.stock import counts as C
from imsnn_lava.backends.stock import graphsim as G
from imsnn_lava.backends.stock import lower as L
from imsnn_lava.errors import ModelFileError
from imsnn_lava.numerics import isi
from imsnn_lava.numerics import reference as R

PHI_MAX = (1, 2, 3, 5, 8, 16)
SAMPLES = 7  # streamed through one run
P_SPIKE = 0.35
MIN_BINS_USED = 8  # the inputs reach at least this many ISI bins (all of them up to 8)


def net(seed: int, phi_max: int, t: int, *, conv: bool, c0: int = 1, plain_last=False,
        layers: int = 2) -> F.ModelFile:
    """A small random fixed-point network: dense 12 -> 8 -> 6, or conv 2x7x7 -> 3x3x3 -> 5."""
    rng = np.random.default_rng(seed)
    if conv:
        shape = (2, 7, 7)
        specs = [H.conv(rng, "c1", shape, 3, 3, 2, True, gain=4.0, phi_max=phi_max)]
    else:
        shape = (12, 1, 1)
        specs = [H.dense(rng, "d1", shape, 8, True, gain=4.0, phi_max=phi_max)]
    if layers > 1:
        specs.append(H.dense(rng, "d2", specs[0].out_shape, 6 if not conv else 5,
                             not plain_last, gain=4.0, phi_max=phi_max))
    specs = [layer.replace(c0=c0) if layer.synapse == "isi" else layer for layer in specs]
    return H.quantize(F.ModelFile(precision="float", input_shape=shape,
                                  encoding=F.EncodingSpec(t, 0.5, 0), layers=specs))


def inputs(rng, n: int, t: int, n_in: int, phi_max: int) -> np.ndarray:
    """(N, T, n_in) spikes: random, plus fixed patterns on the first inputs: silent, always
    on (back-to-back), only at local step 0, only at T-1, adjacent pairs, and spikes further
    apart than phi_max (saturated counters)."""
    x = rng.random((n, t, n_in)) < P_SPIKE
    x[:, :, :6] = False
    x[:, :, 1] = True
    x[:, 0, 2] = True
    x[:, t - 1, 3] = True
    x[:, 0:2, 4] = True
    x[:, ::phi_max + 1, 5] = True
    return x


def stock_layers(model, x, replicas: int, **kw):
    graph = L.lower(model, replicas=replicas, **kw)
    periods = -(-x.shape[0] // replicas)
    run = G.simulate(graph, G.input_stream(x, replicas, graph.total_steps(periods)))
    return graph, run, G.layer_windows(graph, run.spikes, x.shape[0])


def _compare(model, x, replicas: int, **kw) -> tuple[int, list[int]]:
    ref = R.simulate(model, x.transpose(1, 0, 2), fixed=True)
    _, _, got = stock_layers(model, x, replicas, **kw)
    for i, (a, b) in enumerate(zip(got, ref.spikes)):
        bad = np.argwhere(a != b)
        assert bad.size == 0, f"layer {i}: (t, sample, neuron) {bad[:5].tolist()}"
    return sum(s.size for s in ref.spikes), [int(s.sum()) for s in ref.spikes]


@pytest.mark.parametrize("phi_max", PHI_MAX)
@pytest.mark.parametrize("conv", [False, True])
def test_numpy_model_of_lowered_graph_equals_reference(phi_max, conv):
    """For T in {phi_max, phi_max + 1, 20}, c0 in {1, phi_max // 2, phi_max}, R in {1, 3},
    a plain last layer on one seed: every layer's spikes at every step of 7 streamed samples
    equal reference.simulate(fixed=True); the networks are not silent and the inputs reach
    the first, the saturated and at least 8 ISI bins."""
    compared, spiking = 0, np.zeros(3, np.int64)
    for seed in range(2):
        for t in sorted({phi_max, phi_max + 1, 20}):
            for c0 in sorted({1, max(1, phi_max // 2), phi_max}):
                model = net(seed, phi_max, t, conv=conv, c0=c0, plain_last=seed == 1)
                rng = np.random.default_rng(1000 * seed + t)
                x = inputs(rng, SAMPLES, t, int(np.prod(model.input_shape)), phi_max)
                for replicas in (1, 3):
                    n, counts = _compare(model, x, replicas)
                    compared += n
                    spiking += counts
        bins = set(isi.isi_bins(_counter_at_spikes(x, 1, phi_max), phi_max).tolist())
        assert {0, phi_max - 1} <= bins and len(bins) >= min(phi_max, MIN_BINS_USED)
    assert np.all(spiking > 0), spiking
    assert compared > 10_000


def _counter_at_spikes(x: np.ndarray, c0: int, k: int) -> np.ndarray:
    c = np.full(x.shape[::2], c0)
    used = []
    for t in range(x.shape[1]):
        used.append(c[x[:, t]])
        c = np.where(x[:, t], 1, np.minimum(c + 1, k))
    return np.concatenate(used)


def test_dense_and_sparse_kinds_and_long_phi_max_agree():
    """Every connection as Dense or as Sparse gives the same spikes; phi_max 70 (beyond
    Lava's delay cap of 63) lowers and is exact too: this construction uses no delays."""
    for prefer in L.KINDS:
        model = net(3, 5, 20, conv=True, c0=2)
        x = inputs(np.random.default_rng(3), 5, 20, 98, 5)
        graph = L.lower(model, prefer=prefer)
        assert {c.kind for c in graph.connections} == {prefer}
        _compare(model, x, 2, prefer=prefer)
    model = net(4, 70, 80, conv=False, layers=1)
    x = inputs(np.random.default_rng(4), 3, 80, 12, 70)
    graph = L.lower(model)
    assert all(c.delay == 0 for c in graph.connections)
    _compare(model, x, 1)


def test_removing_any_connection_breaks_the_comparison():
    """The comparison can fail: the lowered graph minus any one connection (a weight group,
    a wiring connection, a bin group) no longer equals the reference."""
    model = net(0, 5, 20, conv=False)
    x = inputs(np.random.default_rng(0), 6, 20, 12, 5)
    ref = R.simulate(model, x.transpose(1, 0, 2), fixed=True)
    graph = L.lower(model, replicas=2)
    stream = G.input_stream(x, 2, graph.total_steps(3))
    assert sum(c.role == "bins" for c in graph.connections) >= 2
    for conn in graph.connections:
        run = G.simulate(graph, stream, drop=(conn.name,))
        got = G.layer_windows(graph, run.spikes, 6)
        wrong = sum(int((a != b).sum()) for a, b in zip(got, ref.spikes))
        assert wrong > 0, conn.name


def test_count_model_equals_counts_of_the_simulated_streams():
    """counts.count_model (from the original layers' spikes only) gives the same per-sample,
    per-period and whole-run events as counting the numpy simulation's own spikes of every
    population; its active updates equal the non-zero inputs the simulation delivered."""
    for conv, phi_max, t, c0, replicas in ((False, 5, 12, 1, 2), (True, 3, 3, 3, 1),
                                           (False, 1, 6, 1, 3), (True, 8, 20, 4, 2)):
        model = net(5, phi_max, t, conv=conv, c0=c0)
        x = inputs(np.random.default_rng(t), 5, t, int(np.prod(model.input_shape)), phi_max)
        graph = L.lower(model, replicas=replicas)
        periods = -(-5 // replicas)
        run = G.simulate(graph, G.input_stream(x, replicas, graph.total_steps(periods)),
                         record_inputs=True)
        measured = C.count_streams(graph, {k: sp.csr_matrix(v) for k, v in
                                           run.spikes.items()}, 5)
        layer_spikes = G.layer_windows(graph, run.spikes, 5)
        model_ev = C.count_model(graph, model, layer_spikes)
        assert model_ev.equals(measured) == []
        for pop in graph.populations:
            if pop.model != "SpikeSource":
                assert model_ev.totals["active_updates"][pop.name] == \
                    int(np.count_nonzero(run.inputs[pop.name]))
        # the detectors fire once per delivered presynaptic spike (not at a sample's end)
        for index in range(1, len(model.layers) + 1):
            d = sum(v.sum() for k, v in model_ev.spikes.items()
                    if graph.population(k).layer == index and "_D" in k)
            assert d == layer_spikes[index - 1][:-1].sum()
        total_steps = graph.total_steps(periods)
        for pop in graph.populations:
            assert model_ev.totals["neuron_updates"].get(pop.name, total_steps * pop.size) \
                == total_steps * pop.size


def test_count_model_by_hand():
    """1 input -> ISI dense 8 (phi_max 3, c0 1), T 4, one sample, R 1, all mantissas 100
    (one exponent: one detector population D0 with bins 1..3); input spikes at local steps 0
    and 2. Counters 1, 1, 2, 1 -> bins 1 (t=0) and 2 (t=2). Z(0, 1) fires where c == 1
    (t = 0, 1, 3) and at the run's tail step 4 (V set the state of the next, empty period),
    Z(0, 2) where c == 2 (t = 2): 5 spikes; D(0, 1) fires at t = 1, D(0, 2) at t = 3. The ring
    (4 shared neurons) fires once per step over the 5 steps of the run (T + 1 latency)."""
    model = net(0, 3, 4, conv=False, layers=1)
    layer = model.layers[0]
    layer = layer.replace(in_shape=(1, 1, 1), weight=layer.weight[:, :1], mu=layer.mu[:, :1],
                          sigma=layer.sigma[:, :1],
                          fixed=dataclasses.replace(layer.fixed, table=type(layer.fixed.table)(
                              mant=np.full((3, 8, 1), 100, np.int16), exp=np.zeros(3, np.int8))))
    model = model.replace(input_shape=(1, 1, 1), layers=[layer])
    x = np.zeros((1, 4, 1), bool)
    x[0, [0, 2], 0] = True
    graph = L.lower(model)
    ref = R.simulate(model, x.transpose(1, 0, 2), fixed=True)
    ev = C.count_model(graph, model, ref.spikes)
    z, d = "l1_d1_Z", "l1_d1_D0"
    assert ev.spikes[z].tolist() == [5] and ev.shared_spikes[z].tolist() == [5]
    assert ev.spikes[d].tolist() == [2]
    # P -> Z: 2 synapses per input spike (Z(0,1) +4, Z(0,2) -4); P -> D: 3 (one per bin);
    # bins: a Dense 8 x 3 matrix, 8 entries per detector spike
    assert ev.synops["l1_d1_P->Z"].tolist() == [4]
    assert ev.synops["l1_d1_P->D0"].tolist() == [6]
    assert ev.synops[f"{d}->l1_d1"].tolist() == [2 * 8]
    assert ev.neuron_updates[d].tolist() == [5 * 3]


def test_bad_inputs_are_clear_errors(monkeypatch):
    model = net(0, 3, 6, conv=False)
    with monkeypatch.context() as m:  # a Dense matrix too large to allocate: refused
        m.setattr(L, "DENSE_MAX_ENTRIES", 100)
        with pytest.raises(ValueError, match="connection l1_d1_.*Dense .* more than 100"):
            L.lower(model, prefer="Dense")
    float_model = dataclasses.replace(model, precision="float")
    with pytest.raises(ModelFileError, match="fixed-point"):
        L.lower(float_model)
    # the IR's frozen nodes refuse these on construction: only a corruption in memory gets
    # them to the lowering pass, which refuses them again
    broken = net(0, 3, 6, conv=False)
    object.__setattr__(broken.layers[1], "fixed", None)
    with pytest.raises(ModelFileError, match="layer d2.*fixed-point"):
        L.lower(broken)
    bad_c0 = net(0, 3, 6, conv=False)
    object.__setattr__(bad_c0.layers[0], "c0", 4)
    with pytest.raises(ModelFileError, match="layer d1: c0 = 4"):
        L.lower(bad_c0)
    odd = net(0, 3, 6, conv=False)
    odd.layers[0].fixed.table.mant[0, 0, 0] = 3
    with pytest.raises(ModelFileError, match="layer d1: mantissas must be even"):
        L.lower(odd)
    with pytest.raises(ValueError, match="replicas"):
        L.lower(model, replicas=0)
    with pytest.raises(ValueError, match="prefer"):
        L.lower(model, prefer="Conv")


def test_lower_imports_neither_lava_nor_torch():
    import subprocess
    import sys

    code = ("import sys; import imsnn_lava.backends.stock.lower, imsnn_lava.backends.stock"
            ".counts, imsnn_lava.backends.stock.graphsim; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lava', 'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": ":".join(sys.path)})
    assert out.stdout.strip() == "[]", out.stdout
