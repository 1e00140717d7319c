"""NIR interop (imsnn_lava.interop.nir): a real producer (snnTorch), the discretisation, round
trips, fixed point, and the `imsnn import -> simulate -> report` chain.

snnTorch comparison: the fixture is a 784-64-10 snnTorch network (Leaky, reset_mechanism
"zero", no bias) trained a little on MNIST and exported with snnTorch's own NIR export
(tests/fixtures/nir/make_snntorch_fixture.py). With reset to zero and no bias, snnTorch's Leaky
(mem = beta mem + W s; spike if mem > thr; mem = 0 after a spike) is Lava's LIF with du = 1,
dv = 1 - beta, so the spike trains coincide once Lava's one-step synapse delay is accounted
for: Lava's layer l at step t + l is snnTorch's at step t. What could still differ: the export
rounds tau = dt / (1 - beta) and r = tau / dt to float32, so the imported dv and input gain
differ from snnTorch's 1 - beta and 1 by about 1e-7 relative, and snnTorch computes in float32
where Lava computes in float64. Those move the membrane by far less than its smallest measured
distance to the threshold, which the test measures and asserts, so the trains are identical.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lava_helpers as H  # tests/lava_helpers.py; conftest.py puts tests/ on sys.path
import numpy as np
import pytest

from imsnn_lava import ir as fmt
from imsnn_lava.interop.nir import NIRFileError, from_nir, load_nir, save_nir, to_nir
from imsnn_lava.numerics import reference as R
from imsnn_lava.numerics.encoding import encode

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "nir"
SNNTORCH_NIR = FIXTURES / "snntorch_784_64_10.nir"
INFO = json.loads((FIXTURES / "snntorch_784_64_10.json").read_text())
REFERENCE_SAMPLES = 200  # snnTorch vs the numpy reference (cheap)
LAVA_SAMPLES = 8  # snnTorch vs Lava, and Lava vs the reference (a Lava run each)
FLOAT32_EPS = float(np.finfo(np.float32).eps)


def _snntorch_import(**kw) -> fmt.ModelFile:
    return from_nir(SNNTORCH_NIR, dt=INFO["dt"], num_steps=INFO["num_steps"],
                    max_rate=INFO["max_rate"], **kw)


def _input_spikes(mnist_test, n: int) -> np.ndarray:
    images, _, ids = mnist_test
    return encode(images[:n], ids[:n], num_steps=INFO["num_steps"], max_rate=INFO["max_rate"],
                  seed=INFO["seed"])  # (T, N, 784)


def _snntorch_run(spikes: np.ndarray):
    """snnTorch's own simulation of the fixture network (weights from the file)."""
    pytest.importorskip("snntorch")
    import torch

    sys.path.insert(0, str(FIXTURES))
    import make_snntorch_fixture as fx

    graph = load_nir(SNNTORCH_NIR)
    net = fx.build(INFO["beta"], INFO["threshold"])
    with torch.no_grad():
        for i, name in enumerate(("0", "2")):
            net[2 * i].weight.copy_(torch.from_numpy(graph.nodes[name].weight))
        spk, mem = fx.run(net, torch.from_numpy(spikes.astype(np.float32)))
    return [s.numpy().astype(bool) for s in spk], [m.numpy().astype(np.float64) for m in mem]


def _compare_delayed(ours: list[np.ndarray], theirs: list[np.ndarray]) -> tuple[int, int]:
    """(values compared, mismatches): our layer l (1-based, (T, N, n)) at steps l.. against
    theirs at steps ..T-l; our first l steps must be silent (nothing has arrived yet)."""
    compared = mismatches = 0
    for l, (a, b) in enumerate(zip(ours, theirs), start=1):
        t = a.shape[0]
        assert not a[:l].any(), f"layer {l} spiked before its input arrived"
        compared += a[l:].size
        mismatches += int(np.count_nonzero(a[l:] != b[:t - l]))
    return compared, mismatches


def _parameter_deviation(model: fmt.ModelFile) -> float:
    """Largest relative difference between the imported (dv, gain) and snnTorch's (1 - beta
    in float32, 1): what the export's float32 rounding of tau and r costs."""
    graph = load_nir(SNNTORCH_NIR)
    beta = float(np.float32(INFO["beta"]))
    dev = 0.0
    for layer, name in zip(model.layers, ("0", "2")):
        w = graph.nodes[name].weight.astype(np.float64)
        gain = layer.weight[w != 0] / w[w != 0]
        dev = max(dev, abs(layer.dv - (1 - beta)) / (1 - beta), float(np.abs(gain - 1).max()))
    return dev


def test_interop_needs_neither_torch_nor_the_training_side(tmp_path):
    code = ("import sys; from imsnn_lava.interop.nir import from_nir, save_nir, to_nir; "
            f"m = from_nir({str(SNNTORCH_NIR)!r}, dt=1e-4, num_steps=5, max_rate=0.5, "
            f"fixed_point=True); save_nir(to_nir(m), {str(tmp_path / 'x.nir')!r}); "
            "print(sorted(k for k in sys.modules if k.split('.')[0] in "
            "('torch', 'imsnn_train', 'lava', 'snntorch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_snntorch_fixture_is_snntorch_export_of_its_weights():
    """The committed file is what snnTorch's exporter writes for the network the generator
    builds (so the comparison below simulates the same network)."""
    pytest.importorskip("snntorch")
    pytest.importorskip("nirtorch")
    import torch

    sys.path.insert(0, str(FIXTURES))
    import make_snntorch_fixture as fx

    stored = load_nir(SNNTORCH_NIR)
    net = fx.build(INFO["beta"], INFO["threshold"])
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(stored.nodes["0"].weight))
        net[2].weight.copy_(torch.from_numpy(stored.nodes["2"].weight))
    fresh = fx.export(net)
    assert sorted(fresh.nodes) == sorted(stored.nodes)
    assert sorted(map(tuple, fresh.edges)) == sorted(map(tuple, stored.edges))
    for name, node in stored.nodes.items():
        for field in ("weight", "tau", "r", "v_threshold", "v_leak", "v_reset"):
            if hasattr(node, field):
                assert np.array_equal(getattr(fresh.nodes[name], field), getattr(node, field))


def test_snntorch_import_discretisation():
    model = _snntorch_import()
    assert model.input_shape == (784, 1, 1)
    assert [layer.n_out for layer in model.layers] == INFO["sizes"][1:]
    dev = _parameter_deviation(model)
    assert 0 < dev < 4 * FLOAT32_EPS  # float32 rounding of tau and r, nothing more
    for layer in model.layers:
        assert layer.du == 1.0 and layer.vth == INFO["threshold"]
    from imsnn_lava.interop.nir import import_notes

    assert "one step late" in import_notes(model)[0]


def test_snntorch_spikes_equal_reference(mnist_test):
    spikes = _input_spikes(mnist_test, REFERENCE_SAMPLES)
    spk, mem = _snntorch_run(spikes)
    model = _snntorch_import()
    sim = R.simulate(model, spikes, fixed=False, record=True)
    compared, mismatches = _compare_delayed(sim.spikes[1:], spk)
    expected = sum((INFO["num_steps"] - l) * REFERENCE_SAMPLES * n
                   for l, n in enumerate(INFO["sizes"][1:], start=1))
    assert compared == expected
    # the explanation, measured: at every aligned step without a spike (where ours is already
    # reset), our membrane differs from snnTorch's by less than snnTorch's distance to the
    # threshold there, so the float32 rounding of parameters and arithmetic flips no spike
    t, worst, deviation = INFO["num_steps"], 0.0, 0.0
    for l, (v, m, s) in enumerate(zip(sim.voltages, mem, spk), start=1):
        quiet = ~s[:t - l]
        diff = np.abs(v[l:] - m[:t - l])[quiet]
        deviation = max(deviation, float(diff.max()))
        worst = max(worst, float((diff / np.abs(m[:t - l][quiet] - INFO["threshold"])).max()))
    print(f"snnTorch vs imsnn: {compared} spike values, {mismatches} differ; membrane "
          f"deviation up to {deviation:.3g}, at most {worst:.3g} of the distance to threshold")
    assert 0 < deviation and worst < 1
    assert mismatches == 0, f"{mismatches} of {compared} spike values differ"
    assert sum(int(s.sum()) for s in spk) > 0  # the network is active


@pytest.mark.lava
@pytest.mark.timeout(300)
def test_snntorch_spikes_equal_lava_float(mnist_test):
    from imsnn_lava import runtime as runner

    spikes = _input_spikes(mnist_test, LAVA_SAMPLES)
    spk, _ = _snntorch_run(spikes)
    model = _snntorch_import()
    result = runner.run(model, fixed=False, spikes=spikes.transpose(1, 0, 2),
                        replicas=LAVA_SAMPLES, record=True, timeout_s=240)
    compared, mismatches = _compare_delayed(result.spikes[1:], spk)
    assert compared > 0 and mismatches == 0, f"{mismatches} of {compared} spike values differ"
    ref = R.simulate(model, spikes, fixed=False)
    for a, b in zip(result.spikes[1:], ref.spikes[1:]):
        assert np.array_equal(a, b)


@pytest.mark.lava
@pytest.mark.timeout(300)
def test_fixed_point_import_lava_equals_reference(mnist_test):
    from imsnn_lava import runtime as runner

    model = _snntorch_import(fixed_point=True)
    assert model.precision == "fixed" and all(layer.fixed for layer in model.layers)
    spikes = _input_spikes(mnist_test, LAVA_SAMPLES)
    ref = R.simulate(model, spikes, fixed=True)
    result = runner.run(model, fixed=True, spikes=spikes.transpose(1, 0, 2),
                        replicas=LAVA_SAMPLES, record=True, timeout_s=240)
    assert sum(int(s.sum()) for s in ref.spikes[1:]) > 0
    for a, b in zip(result.spikes[1:], ref.spikes[1:]):
        assert np.array_equal(a, b)


def test_fixed_point_import_uses_the_export_quantisation():
    from imsnn_lava.ir.quantize import (
        DEFAULT_MAX_SCALE_LOG2,
        DEFAULT_NETX_COMPATIBLE,
        quantize_layer,
    )
    from imsnn_train.config import QuantConfig

    assert (QuantConfig().max_scale_log2, QuantConfig().netx_compatible) == (
        DEFAULT_MAX_SCALE_LOG2, DEFAULT_NETX_COMPATIBLE)
    float_model, fixed_model = _snntorch_import(), _snntorch_import(fixed_point=True)
    for f, q in zip(float_model.layers, fixed_model.layers):
        expect = quantize_layer(f, DEFAULT_MAX_SCALE_LOG2, DEFAULT_NETX_COMPATIBLE)
        assert np.array_equal(q.fixed.table.mant, expect.table.mant)
        assert (q.fixed.scale, q.fixed.du, q.fixed.dv, q.fixed.vth) == (
            expect.scale, expect.du, expect.dv, expect.vth)


def _plain_models():
    rng = np.random.default_rng(5)
    c1 = H.conv(rng, "c1", (1, 12, 12), 3, 3, 2, False, gain=3.0)
    d2 = H.dense(rng, "d2", c1.out_shape, 16, False, gain=3.0)
    d3 = H.dense(rng, "d3", (16, 1, 1), 4, False, gain=3.0)
    d3 = d3.replace(du=0.25)  # CubaLIF
    conv = fmt.ModelFile(precision="float", input_shape=(1, 12, 12),
                         encoding=fmt.EncodingSpec(9, 0.4, 11), layers=[c1, d2, d3])
    e1 = H.dense(rng, "e1", (20, 1, 1), 6, False, dv=0.0)  # IF
    e2 = H.dense(rng, "e2", (6, 1, 1), 3, False, dv=0.0)
    integrate = fmt.ModelFile(precision="float", input_shape=(20, 1, 1),
                              encoding=fmt.EncodingSpec(5, 1.0, 2), layers=[e1, e2])
    return {"conv": conv, "integrate": integrate, "snntorch": _snntorch_import()}


def _same(a: fmt.ModelFile, b: fmt.ModelFile) -> None:
    assert (a.precision, a.input_shape, a.encoding) == (b.precision, b.input_shape, b.encoding)
    for x, y in zip(a.layers, b.layers, strict=True):
        assert (x.name, x.kind, x.in_shape, x.out_shape, x.stride, x.padding) == (
            y.name, y.kind, y.in_shape, y.out_shape, y.stride, y.padding)
        assert (x.du, x.dv, x.vth) == (y.du, y.dv, y.vth)
        assert x.weight.dtype == y.weight.dtype and np.array_equal(x.weight, y.weight)


@pytest.mark.parametrize("name", ["conv", "integrate", "snntorch"])
def test_round_trip_imsnn_nir_imsnn_is_identical(tmp_path, name):
    import nir

    model = _plain_models()[name]
    path = tmp_path / f"{name}.nir"
    save_nir(to_nir(model), path)
    graph = nir.read(path)  # nir's own reader, with its type check
    kinds = {type(n).__name__ for n in graph.nodes.values()}
    assert kinds >= {"Input", "Output"} and kinds & {"LIF", "CubaLIF", "IF"}
    _same(model, from_nir(path))
    _same(model, from_nir(graph))
    spikes = H.random_spikes(np.random.default_rng(1), 3, model.num_steps,
                             int(np.prod(model.input_shape))).transpose(1, 0, 2)
    for a, b in zip(R.simulate(model, spikes, fixed=False).spikes,
                    R.simulate(from_nir(path), spikes, fixed=False).spikes):
        assert np.array_equal(a, b)


def test_round_trip_fixed_point_keeps_the_integers(tmp_path):
    model = _snntorch_import(fixed_point=True)
    path = tmp_path / "fixed.nir"
    save_nir(to_nir(model), path)
    back = from_nir(path, fixed_point=True)
    for a, b in zip(model.layers, back.layers, strict=True):
        assert (a.fixed.scale, a.fixed.du, a.fixed.dv, a.fixed.vth) == (
            b.fixed.scale, b.fixed.du, b.fixed.dv, b.fixed.vth)
        assert np.array_equal(a.fixed.table.weights_int(), b.fixed.table.weights_int())


def test_isi_layers_are_refused_by_to_nir():
    with pytest.raises(NIRFileError, match=r"layer d1: an ISI-modulated layer \(isi_dense\)"):
        to_nir(H.tiny_model())


def _euler(graph, spikes: np.ndarray, dt: float) -> list[np.ndarray]:
    """NIR's equations integrated directly (forward Euler, no synaptic delay), independent of
    imsnn: per neuron layer (T, N, n) spikes. Chains of Linear -> CubaLIF|LIF only."""
    out, x = [], spikes.astype(np.float64)
    names = [n for n in graph.nodes if n not in ("input", "output")]
    for syn, neu in zip(names[::2], names[1::2]):
        w, p = graph.nodes[syn].weight, graph.nodes[neu]
        t_steps, r_count, n = x.shape[0], x.shape[1], w.shape[0]
        i_syn, v = np.zeros((r_count, n)), np.zeros((r_count, n))
        s_out = np.zeros((t_steps, r_count, n), dtype=bool)
        for t in range(t_steps):
            drive = x[t] @ w.T
            if type(p).__name__ == "CubaLIF":
                i_syn = i_syn + dt / p.tau_syn * (-i_syn + p.w_in * drive)
                v = v + dt / p.tau_mem * (-v + p.r * i_syn)
            else:
                v = v + dt / p.tau * (-v + p.r * drive)
            s_out[t] = v > p.v_threshold
            v = np.where(s_out[t], 0.0, v)
        out.append(s_out)
        x = s_out.astype(np.float64)
    return out


@pytest.mark.parametrize("neuron", ["LIF", "CubaLIF"])
def test_discretisation_matches_nir_equations(neuron):
    """A hand-made graph with non-trivial tau, tau_syn, r (per neuron) and w_in, integrated by
    `_euler` above, spikes as the imported model does (one step later per layer)."""
    import nir

    rng = np.random.default_rng(3)
    dt, sizes, nodes = 1e-3, (30, 12, 5), {"input": nir.Input(input_type={"input": np.array([30])})}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        nodes[f"w{i}"] = nir.Linear(weight=rng.normal(0, 1.5, (b, a)))
        common = dict(r=rng.uniform(0.5, 2.0, b), v_leak=np.zeros(b),
                      v_threshold=np.full(b, 0.8), v_reset=np.zeros(b))
        if neuron == "LIF":
            nodes[f"n{i}"] = nir.LIF(tau=np.full(b, 7e-3), **common)
        else:
            nodes[f"n{i}"] = nir.CubaLIF(tau_syn=np.full(b, 3e-3), tau_mem=np.full(b, 9e-3),
                                         w_in=rng.uniform(1.0, 4.0, b), **common)
    nodes["output"] = nir.Output(output_type={"output": np.array([sizes[-1]])})
    names = list(nodes)
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])))
    model = from_nir(graph, dt=dt, num_steps=30, max_rate=0.5)
    spikes = rng.random((30, 6, sizes[0])) < 0.3
    ours = R.simulate(model, spikes, fixed=False).spikes[1:]
    theirs = _euler(graph, spikes, dt)
    compared, mismatches = _compare_delayed(ours, theirs)
    assert compared > 0 and mismatches == 0
    assert all(s.any() for s in theirs)


def _imsnn(*args, cwd):
    return subprocess.run([sys.executable, "-m", "imsnn_train.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.lava
@pytest.mark.timeout(300)
def test_cli_import_simulate_report(tmp_path, mnist_test):
    model = tmp_path / "snn.h5"
    out = _imsnn("import", SNNTORCH_NIR, "-o", model, "--fixed-point", "--dt", INFO["dt"],
                 "--num-steps", INFO["num_steps"], "--max-rate", INFO["max_rate"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "fixed point, 2 layers 784-64-10" in out.stdout and "note: " in out.stdout
    assert fmt.read(model).precision == "fixed"
    sim = tmp_path / "lava.json"
    out = _imsnn("simulate", model, "--fixed-point", "-n", "4", "--replicas", "4", "--json",
                 sim, "--no-progress", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(sim.read_text())
    assert result["agreement_counts"] == 1.0 and result["name"] == "snntorch_784_64_10"
    out = _imsnn("report", sim, "-o", tmp_path / "report", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["runs"]
