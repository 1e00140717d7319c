"""Untrusted input: model files and IDX files are fuzzed; only the documented errors escape.

- A hypothesis fuzz test mutates valid model files (byte flips, truncations, zeroed, spliced
  and appended bytes of the HDF5 file; h5py edits of dtypes, shapes, values, attributes,
  keys, links, huge declared sizes, odd text) and IDX files (bytes and header fields). Only
  ModelFileError (naming the file) or DataError (naming the file) may escape, without a
  chained traceback, and a model file that reads is internally consistent: the numpy
  reference simulates a sample through it. The mutation engine is bench/fuzz.py (its
  `--cases N` run is the long version); here hypothesis draws the cases, derandomized.
- Regression tests for what the fuzzer found (h5py RuntimeError/AttributeError on corrupt or
  mistyped groups), and for the holes closed with them (int64 overflow in shape products,
  deeply nested JSON, links, unknown attributes and members, unchecked netx fields).
- No pickle anywhere: no module of the package unpickles, every torch.load is weights_only.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from imsnn_lava import ir as fmt
from imsnn_lava.errors import ModelFileError

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(60)  # the fuzz tests set their own


def _load(name: str, path: Path):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


FUZZ = _load("imsnn_bench_fuzz", REPO / "bench" / "fuzz.py")


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, Path]:
    return FUZZ.write_seeds(tmp_path_factory.mktemp("seeds"))


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("work")


FUZZ_SETTINGS = settings(max_examples=500, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck), print_blob=True)


def _drawer(data):
    """draw(lo, hi) for the fuzz engine: small ranges (which mutation, which seed) uniformly,
    big ones (positions, indices) with hypothesis' integers."""
    def draw(lo: int, hi: int) -> int:
        if hi - lo < 64:
            return data.draw(st.sampled_from(range(lo, hi + 1)))
        return data.draw(st.integers(lo, hi))
    return draw


# ---------------------------------------------------------------------------------------------
# the fuzz tests


@pytest.mark.timeout(120)
@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzzed_model_files_raise_only_model_file_error(seeds, work, data):
    case = FUZZ.model_case(_drawer(data))
    path = work / "fuzzed.h5"
    what = FUZZ.make_model_case(case, seeds, path)
    note(what)
    # 'ok' files were simulated; 'rejected' ones named the file. Anything else raises Escape.
    assert FUZZ.check_model_file(path)[0] in ("ok", "rejected")


@pytest.mark.timeout(60)
@settings(FUZZ_SETTINGS, max_examples=500)
@given(data=st.data())
def test_fuzzed_idx_files_raise_only_data_error(seeds, work, data):
    case = FUZZ.idx_case(_drawer(data))
    path, what = FUZZ.make_idx_case(case, seeds, work)
    note(what)
    assert FUZZ.check_idx_file(path, seeds)[0] in ("ok", "rejected")


def test_seed_files_read_and_simulate(seeds):
    """The fuzzer starts from files that are valid (else every case would be 'rejected')."""
    for name in ("model-float", "model-fixed"):
        assert FUZZ.check_model_file(seeds[name]) == ("ok", "")
    for name in FUZZ.IDX_SEEDS:
        assert FUZZ.check_idx_file(seeds[name], seeds) == ("ok", "")


# ---------------------------------------------------------------------------------------------
# regressions: what the fuzzer found, and the holes closed with it


def _copy(seeds, tmp_path, which: str = "float") -> Path:
    path = tmp_path / f"{which}.h5"
    path.write_bytes(seeds[f"model-{which}"].read_bytes())
    return path


def _edit(path: Path, fn) -> None:
    with h5py.File(path, "r+") as f:
        fn(f)


def _error(path: Path) -> str:
    with pytest.raises(ModelFileError) as info:
        fmt.read(path)
    exc = info.value
    assert str(path) in str(exc)
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)
    return str(exc)


def _swap_for_dataset(name: str):
    def fn(f):
        del f[name]
        f.create_dataset(name, data=np.int64(1))
    return fn


def _swap_for_group(name: str):
    def fn(f):
        del f[name]
        f.create_group(name)
    return fn


def _set(name: str, data):
    def fn(f):
        del f[name]
        f.create_dataset(name, data=data)
    return fn


def _vlen() -> np.ndarray:
    data = np.empty(1, dtype=object)
    data[0] = np.arange(3)
    return data


REGRESSIONS = {
    # AttributeError: 'Dataset' object has no attribute 'keys' (fuzz case 285)
    "layer group is a dataset": (_swap_for_dataset("layer/3"), "field 'layer/3'"),
    "top layer group is a dataset": (_swap_for_dataset("layer"), "field 'layer'"),
    "neuron group is a dataset": (_swap_for_dataset("layer/1/neuron"), "layer/1/neuron"),
    "reference group is a dataset": (_swap_for_dataset("reference"), "field 'reference'"),
    # accepted before: netx fields never looked at
    "refDelay is a group": (_swap_for_group("layer/1/neuron/refDelay"), "refDelay"),
    "gradedSpike true": (_set("layer/2/neuron/gradedSpike", np.bool_(True)), "gradedSpike"),
    # json.loads raised RecursionError, not ValueError
    "deeply nested JSON": (_set("config", np.bytes_(b"[" * 200_000)), "field 'config'"),
    # int64 overflow: 2**32 * 2**32 * 1 wrapped to 0 and passed the size check
    "input shape overflow": (_set("layer/0/shape", np.array([2**32, 2**32, 1])),
                             "layer/0/shape"),
    # soft and external links: a model file is one self-contained tree
    "soft link": (lambda f: (f.__delitem__("metrics"),
                             f.__setitem__("metrics", h5py.SoftLink("/config"))),
                  "field 'metrics': is a SoftLink"),
    "external link": (lambda f: (f.__delitem__("layer/2/mu"), f.__setitem__(
        "layer/2/mu", h5py.ExternalLink("/etc/hostname", "/x"))),
        "field 'layer/2/mu': is a ExternalLink"),
    # unknown members and attributes anywhere
    "unknown attribute on a dataset": (lambda f: f["layer/1/weight"].attrs.__setitem__("x", 1),
                                       "layer/1/weight@x"),
    "unknown root attribute": (lambda f: f.attrs.__setitem__("created_by", "me"),
                               "@created_by"),
    "unknown encoding member": (lambda f: f.create_dataset("encoding/extra", data=1),
                                "encoding/extra"),
    "unknown neuron member": (lambda f: f.create_dataset("layer/2/neuron/bias", data=1),
                              "layer/2/neuron/bias"),
    "unknown reference member": (lambda f: f.create_dataset("reference/notes", data=1),
                                 "reference/notes"),
    "unknown input-layer member": (lambda f: f.create_dataset("layer/0/weight", data=1),
                                   "layer/0/weight"),
    # a variable-length sequence where text belongs: reading one from a corrupt file crashed
    # HDF5 (SIGSEGV); such types are now refused before h5py reads them
    "attribute is a vlen sequence": (lambda f: f.attrs.create("precision", _vlen(),
                                                              dtype=h5py.vlen_dtype("i8")),
                                     "field '@precision': expected text, found HDF5 "
                                     "variable-length sequence"),
    "dataset is a vlen sequence": (lambda f: (f.__delitem__("config"), f.create_dataset(
        "config", data=_vlen(), dtype=h5py.vlen_dtype("i8"))),
        "field 'config': expected text, found HDF5 variable-length sequence"),
    "number stored as text": (_set("layer/1/phi_max", np.bytes_(b"4")),
                              "field 'layer/1/phi_max': expected integers, found HDF5 string"),
    # versions other than 1
    "version 0": (lambda f: f.attrs.__setitem__("version", 0), "@version"),
    "version as text": (lambda f: f.attrs.__setitem__("version", "1"), "@version"),
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("which", ["float", "fixed"])
def test_regressions_name_the_field(seeds, tmp_path, which):
    for label, (fn, needle) in REGRESSIONS.items():
        if which == "float" and label in ("refDelay is a group", "gradedSpike true"):
            continue  # netx neuron fields exist in fixed-point files only
        path = tmp_path / f"{label.replace(' ', '_')}.h5"
        path.write_bytes(seeds[f"model-{which}"].read_bytes())
        _edit(path, fn)
        msg = _error(path)
        assert needle in msg, f"{label}: {msg}"


# byte-level mutations of the seed files that made h5py raise RuntimeError out of read()
# ("bad symbol table node signature", "Link iteration failed (bad heap free list)", ...)
FOUND_BY_FUZZING = [
    {"seed": "fixed", "bytes": [2, 52244, 2038]},
    {"seed": "fixed", "bytes": [3, 484088, 2750]},
    {"seed": "float", "bytes": [3, 78109, 937]},
    {"seed": "fixed", "bytes": [0, 4, 584075, 129, 74332, 132, 299749, 233, 65249, 13]},
    {"seed": "float", "bytes": [5, 5, 889336, 128, 531127, 87, 807229, 133, 875151, 222,
                                966538, 243]},
    {"seed": "float", "bytes": [5, 4, 628594, 105, 507347, 154, 534007, 114, 890836, 170]},
    {"seed": "float", "bytes": [2, 928716, 963]},
]
# cases that crashed or hung the HDF5 library itself: checked in a child process, so that a
# regression fails the test instead of killing or hanging pytest
CRASHED_OR_HUNG = [
    # flips the 'precision' attribute's type class from string to variable-length sequence:
    # h5py reading it crashed the interpreter (SIGSEGV in HDF5); bench/fuzz.py seed 0, case 3053
    {"seed": "fixed", "bytes": [5, 6, 594546, 158, 243595, 240, 448523, 18, 887254, 220,
                                738265, 22, 568809, 84]},
    # zeroes bytes of the global heap (where text attributes live): HDF5 looped forever
    # loading it; bench/fuzz.py seed 2, case 449
    {"seed": "float", "bytes": [2, 671271, 1389]},
]


@pytest.mark.timeout(30)
def test_cases_found_by_fuzzing(seeds, tmp_path):
    for i, case in enumerate(FOUND_BY_FUZZING):
        path = tmp_path / f"case{i}.h5"
        FUZZ.make_model_case(case, seeds, path)
        assert FUZZ.check_model_file(path)[0] in ("ok", "rejected")


def _read_in_child(path: Path) -> str:
    code = ("import sys\nfrom imsnn_lava import ir as fmt\nfrom imsnn_lava.errors import "
            "ModelFileError\ntry:\n    fmt.read(sys.argv[1])\nexcept ModelFileError as e:\n"
            "    print('ModelFileError', e)\nelse:\n    print('ok')\n")
    try:
        proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                              text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{path}: reading hung") from None
    assert proc.returncode == 0, f"{path}: the reader crashed ({proc.returncode}): " \
                                 f"{proc.stderr[-2000:]}"
    return proc.stdout.strip()


def _zero_first_global_heap_object(path: Path) -> None:
    data = bytearray(path.read_bytes())
    pos = data.find(b"GCOL")
    assert pos > 0 and data[pos + 4] == 1
    data[pos + 16:pos + 32] = bytes(16)  # index 0, size 0: HDF5's walk never advances
    path.write_bytes(bytes(data))


@pytest.mark.timeout(90)
def test_inputs_that_crashed_or_hung_hdf5(seeds, tmp_path):
    paths = []
    for i, case in enumerate(CRASHED_OR_HUNG):
        paths.append(tmp_path / f"case{i}.h5")
        FUZZ.make_model_case(case, seeds, paths[-1])
    for which in ("float", "fixed"):  # the global-heap hang, made on purpose
        paths.append(_copy(seeds, tmp_path, which))
        _zero_first_global_heap_object(paths[-1])
    for path in paths:
        out = _read_in_child(path)
        assert out.startswith("ModelFileError") and str(path) in out, out
    assert "global heap" in _read_in_child(paths[-1])


@pytest.mark.timeout(30)
def test_hdf5_errors_inside_read_name_the_file_and_field(seeds, tmp_path, monkeypatch):
    """Whatever h5py raises on a corrupt structure (RuntimeError from the C library, here
    injected where listing a group or reading a dataset's shape) becomes ModelFileError
    naming the field being read."""
    path = _copy(seeds, tmp_path)
    real_keys = h5py.Group.keys

    def broken_keys(self):
        if self.name == "/layer/2":
            raise RuntimeError("Link iteration failed (bad heap free list)")
        return real_keys(self)

    monkeypatch.setattr(h5py.Group, "keys", broken_keys)
    msg = _error(path)
    assert "field 'layer/2'" in msg and "bad heap free list" in msg
    monkeypatch.setattr(h5py.Group, "keys", real_keys)

    real_shape = h5py.Dataset.shape

    def broken_shape(self):
        if self.name == "/layer/1/mu":
            raise RuntimeError("Unable to get dataspace (bad object header version)")
        return real_shape.fget(self)

    monkeypatch.setattr(h5py.Dataset, "shape", property(broken_shape))
    msg = _error(path)
    assert "field 'layer/1/mu'" in msg and "bad object header" in msg


@pytest.mark.timeout(30)
def test_absurd_sizes_are_refused_before_allocating(seeds, tmp_path):
    """Datasets that declare 2**40 values (stored as empty chunks, a few KB on disk) are
    refused from their declared shape: reading never allocates more than a few MB."""
    cases = {
        "layer/1/mu": ((2**40,), "f8"),
        "reference/spikes": ((2, 2**20, 2**20), "u1"),
        "layer/3/weight": ((1 << 26, 2), "i4"),
        "config": ((2**36,), "S1"),
    }
    for name, (shape, dtype) in cases.items():
        path = tmp_path / f"{name.replace('/', '_')}.h5"
        path.write_bytes(seeds["model-fixed"].read_bytes())

        def bomb(f, name=name, shape=shape, dtype=dtype):
            del f[name]
            f.create_dataset(name, shape=shape, dtype=dtype, chunks=(1,) * len(shape))

        _edit(path, bomb)
        assert path.stat().st_size < 1 << 20
        tracemalloc.start()
        try:
            msg = _error(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert name in msg and "exceed the limit" in msg, msg
        assert peak < 16 << 20, f"{name}: read allocated {peak} bytes"


@pytest.mark.timeout(30)
def test_cli_prints_one_line_for_a_corrupt_model_file(seeds, tmp_path, capsys):
    from imsnn_train import cli

    path = tmp_path / "corrupt.h5"
    FUZZ.make_model_case(FOUND_BY_FUZZING[0], seeds, path)
    assert cli.main(["verify", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("imsnn verify: error: ") and str(path) in err[0]


# ---------------------------------------------------------------------------------------------
# IDX


@pytest.mark.timeout(30)
def test_gzip_bomb_is_refused(tmp_path, monkeypatch):
    """A .gz IDX file that decompresses to more than MAX_GZIP_BYTES is refused while
    decompressing (here with the limit lowered to 1 MB), naming the file."""
    import gzip

    from imsnn_lava.data import idx
    from imsnn_train.errors import DataError

    monkeypatch.setattr(idx, "MAX_GZIP_BYTES", 1 << 20)
    path = tmp_path / "bomb-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 3]) + (4096).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    path.write_bytes(gzip.compress(header + bytes(4096 * 28 * 28)))
    assert path.stat().st_size < 10_000
    with pytest.raises(DataError, match="bomb-idx3-ubyte.gz: decompresses to more than"):
        idx.read_idx(path, kind="images")


# ---------------------------------------------------------------------------------------------
# no pickle anywhere


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            base = func.value.id if isinstance(func, ast.Attribute) and isinstance(
                func.value, ast.Name) else ""
            yield node, base, name


def test_no_pickle_anywhere():
    """No module of the package imports pickle-like loaders or calls a loader that
    unpickles; every torch.load passes weights_only=True; np.load never allows pickle."""
    offenders = []
    files = sorted((REPO / "imsnn_train").rglob("*.py")) + sorted(
        (REPO / "imsnn_lava").rglob("*.py"))
    assert len(files) > 20
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        rel = path.relative_to(REPO)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n.split(".")[0] in ("pickle", "cPickle", "dill", "joblib", "shelve",
                                           "marshal", "cloudpickle") for n in names):
                    offenders.append(f"{rel}:{node.lineno}: imports {names}")
        for node, base, name in _calls(tree):
            kw = {k.arg: k.value for k in node.keywords}
            if base == "torch" and name == "load":
                ok = isinstance(kw.get("weights_only"), ast.Constant) and \
                    kw["weights_only"].value is True
                if not ok:
                    offenders.append(f"{rel}:{node.lineno}: torch.load without "
                                     "weights_only=True")
            if name == "load" and base in ("np", "numpy"):
                allow = kw.get("allow_pickle")
                if isinstance(allow, ast.Constant) and allow.value is True:
                    offenders.append(f"{rel}:{node.lineno}: np.load(allow_pickle=True)")
            if base in ("yaml",) and name in ("load", "unsafe_load"):
                offenders.append(f"{rel}:{node.lineno}: yaml.{name}")
    assert offenders == []


def test_object_references_in_text_fields_are_refused(seeds, tmp_path):
    """A text field stored as an HDF5 object reference (dtype 'O'; h5py never unpickles)
    is refused as not being JSON text."""
    path = _copy(seeds, tmp_path)

    def ref(f):
        target = f["layer/1/weight"].ref
        del f["metrics"]
        f.create_dataset("metrics", data=target, dtype=h5py.ref_dtype)

    _edit(path, ref)
    msg = _error(path)
    assert "field 'metrics'" in msg
    json.loads(fmt.read(seeds["model-float"]).metrics_json)  # the seed's text is JSON
