"""`imsnn import` on malformed NIR files, and `imsnn export --format nir`.

Every bad file must end in one line on stderr that names the file and the node or field,
exit code 2, and no output file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from imsnn_train.cli import main

REPO = Path(__file__).resolve().parents[1]
GOOD = REPO / "tests" / "fixtures" / "nir" / "snntorch_784_64_10.nir"
ENCODING = ["--dt", "1e-4", "--num-steps", "25", "--max-rate", "0.5"]
HUGE = 1 << 20
TINY = ['model.layers=[{"kind":"dense","out":8},{"kind":"dense","out":3}]']


def _replace(f, name: str, data) -> None:
    del f[name]
    f.create_dataset(name, data=data)


def _edges(f, extra: list[tuple[str, str]]) -> None:
    edges = [tuple(x.decode() for x in row) for row in f["node/edges"][()]] + extra
    _replace(f, "node/edges", np.array(edges, dtype=h5py.string_dtype()))


def _add_node(f, name: str, kind: str, **fields) -> None:
    g = f["node/nodes"].create_group(name)
    g.create_dataset("type", data=kind, dtype=h5py.string_dtype())
    for key, value in fields.items():
        g.create_dataset(key, data=value)


def _huge(f, name: str) -> None:
    del f[name]
    f.create_dataset(name, shape=(HUGE, HUGE), dtype="f4", chunks=(64, 64))


def _to_affine(f) -> None:
    _replace(f, "node/nodes/0/type", np.bytes_(b"Affine"))
    f["node/nodes/0"].create_dataset("bias", data=np.ones(64, dtype=np.float32))


def _nested(f) -> None:
    _add_node(f, "rec", "NIRGraph")


def _soft_link(f) -> None:
    del f["node/nodes/0/weight"]
    f["node/nodes/0/weight"] = h5py.SoftLink("/node/nodes/2/weight")


def _scaled(name: str, fn):
    def edit(f):
        data = f[name][()].astype(np.float64)
        _replace(f, name, fn(data))
    return edit


# (case id, edit of a copy of the good file, or raw bytes, fragments the one line must contain)
CASES = [
    ("not-hdf5", b"this is not an HDF5 file\n", ["not a readable HDF5/NIR file"]),
    ("empty", b"", ["not a readable HDF5/NIR file"]),
    ("truncated", "truncate", ["not a readable"]),
    ("not-nir", lambda f: [f.__delitem__(k) for k in list(f.keys())] and None,
     ["field 'node'", "not a NIR file"]),
    ("weight-text", lambda f: _replace(f, "node/nodes/0/weight", np.bytes_(b"oops")),
     ["node '0'", "field 'weight'", "expected numbers"]),
    ("weight-shape", lambda f: _replace(f, "node/nodes/0/weight", np.zeros((64, 700), "f4")),
     ["node '0' (Linear)", "field 'weight'", "784 inputs"]),
    ("tau-nan", _scaled("node/nodes/1/tau", lambda a: np.where(np.arange(a.size) == 3,
                                                                 np.nan, a)),
     ["node '1' (LIF)", "field 'tau'", "NaN"]),
    ("tau-varies", _scaled("node/nodes/1/tau", lambda a: a * np.linspace(1, 2, a.size)),
     ["node '1' (LIF)", "field 'tau'", "varies across the neurons"]),
    ("tau-missing", lambda f: f.__delitem__("node/nodes/1/tau"), ["node '1' (LIF)", "nir"]),
    ("v-leak", _scaled("node/nodes/1/v_leak", lambda a: a + 0.5),
     ["node '1' (LIF)", "field 'v_leak'", "non-zero"]),
    ("v-reset", _scaled("node/nodes/3/v_reset", lambda a: a - 0.5),
     ["node '3' (LIF)", "field 'v_reset'", "resets to 0"]),
    ("bias", _to_affine, ["node '0' (Affine)", "field 'bias'", "non-zero"]),
    ("cycle", lambda f: _edges(f, [("3", "0")]), ["node '0'", "cycle"]),
    ("two-inputs", lambda f: (_add_node(f, "input2", "Input", shape=np.array([784])),
                              _edges(f, [("input2", "0")])), ["2 Input nodes"]),
    ("unknown-node", lambda f: _replace(f, "node/nodes/1/type", np.bytes_(b"Foo")),
     ["node '1'", "node type 'Foo' is not supported"]),
    ("nested-graph", _nested, ["node 'rec'", "nested graph"]),
    ("huge-dataset", lambda f: _huge(f, "node/nodes/0/weight"),
     ["node '0'", "field 'weight'", "exceed the limit"]),
    ("huge-input-shape", lambda f: _replace(f, "node/nodes/input/shape",
                                            np.array([10**12])),
     ["node 'input' (Input)", "field 'shape'", "exceeds the limit"]),
    ("soft-link", _soft_link, ["node '0'", "field 'weight'", "links are not allowed"]),
    ("edge-to-nowhere", lambda f: _edges(f, [("3", "ghost")]), ["no node 'ghost'"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_nir_file_is_one_clear_line(tmp_path, capsys, case):
    name, edit, fragments = case
    bad = tmp_path / f"{name}.nir"
    if isinstance(edit, bytes):
        bad.write_bytes(edit)
    elif edit == "truncate":
        bad.write_bytes(GOOD.read_bytes()[:4096])
    else:
        shutil.copy(GOOD, bad)
        with h5py.File(bad, "a") as f:
            edit(f)
    out = tmp_path / "model.h5"
    rc = main(["import", str(bad), "-o", str(out), *ENCODING])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"imsnn import: error: {bad}: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert not out.exists()


def test_missing_encoding_names_the_option(tmp_path, capsys):
    out = tmp_path / "model.h5"
    rc = main(["import", str(GOOD), "-o", str(out), "--num-steps", "25", "--max-rate", "0.5"])
    err = capsys.readouterr().err
    assert rc == 2 and "dt is neither given nor in the graph's metadata; pass --dt" in err
    assert not out.exists()


def test_fixed_point_refusal_names_file_and_layer(tmp_path, capsys):
    bad = tmp_path / "big-threshold.nir"
    shutil.copy(GOOD, bad)
    with h5py.File(bad, "a") as f:
        _scaled("node/nodes/3/v_threshold", lambda a: a * 2.0**31)(f)
    out = tmp_path / "model.h5"
    assert main(["import", str(bad), "-o", str(out), *ENCODING]) == 0  # float: fine
    capsys.readouterr()
    out.unlink()
    assert main(["import", str(bad), "-o", str(out), "--fixed-point", *ENCODING]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"imsnn import: error: {bad}: layer 2: ")
    assert not out.exists()


def _checkpoint(tmp_path: Path, config: str) -> tuple[Path, object, object]:
    from imsnn_train import checkpoint
    from imsnn_train import config as C
    from imsnn_train.network import Network

    cfg = C.load(REPO / "deploy" / "configs" / config, TINY)
    net = Network(cfg.model)
    path = tmp_path / f"{cfg.name}.pt"
    checkpoint.save(path, cfg, 0, net.state_dict(), None, [])
    return path, net, cfg


def test_export_format_nir_round_trips(tmp_path, capsys):
    import nir

    from imsnn_lava.interop.nir import from_nir
    from imsnn_train.export import to_model_file

    ckpt, net, cfg = _checkpoint(tmp_path, "demo_baseline.toml")
    out = tmp_path / "baseline.nir"
    assert main(["export", str(ckpt), "--format", "nir", "-o", str(out)]) == 0
    assert "NIR, 2 layers" in capsys.readouterr().out
    graph = nir.read(out)
    assert {type(n).__name__ for n in graph.nodes.values()} == {
        "Input", "Flatten", "Linear", "LIF", "Output"}
    expected, back = to_model_file(net, cfg, fixed=False), from_nir(out)
    assert back.encoding == expected.encoding and back.input_shape == expected.input_shape
    for a, b in zip(expected.layers, back.layers, strict=True):
        assert np.array_equal(a.weight, b.weight) and (a.du, a.dv, a.vth) == (b.du, b.dv, b.vth)


def test_export_format_nir_refuses_isi_layers(tmp_path, capsys):
    ckpt, _, _ = _checkpoint(tmp_path, "demo_imsnn.toml")
    out = tmp_path / "imsnn.nir"
    assert main(["export", str(ckpt), "--format", "nir", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "an ISI-modulated layer (isi_dense) has no NIR form" in err[0]
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# fuzzing: bench/fuzz.py's NIR cases (its `--target nir --cases N` run is the long version)

NIR_FUZZ_EXAMPLES = 100


def _fuzz_module():
    import importlib.util
    import sys

    name = "imsnn_bench_fuzz"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "bench" / "fuzz.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def fuzz_seeds(tmp_path_factory):
    return _fuzz_module().write_seeds(tmp_path_factory.mktemp("seeds"))


@pytest.mark.timeout(180)
def test_fuzzed_nir_files_raise_only_imsnn_errors(fuzz_seeds, tmp_path_factory):
    from hypothesis import HealthCheck, given, note, settings
    from hypothesis import strategies as st

    fuzz, work = _fuzz_module(), tmp_path_factory.mktemp("work")

    @settings(max_examples=NIR_FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data):
        def draw(lo: int, hi: int) -> int:
            if hi - lo < 64:
                return data.draw(st.sampled_from(range(lo, hi + 1)))
            return data.draw(st.integers(lo, hi))

        path = work / "fuzzed.nir"
        try:
            what = fuzz.make_model_case(fuzz.nir_case(draw), fuzz_seeds, path)
        except Exception:  # noqa: BLE001 - the mutation itself failed: not a finding
            return
        note(what)
        # 'ok' graphs were imported and simulated; 'rejected' ones named the file
        assert fuzz.check_nir_file(path)[0] in ("ok", "rejected")

    run()
