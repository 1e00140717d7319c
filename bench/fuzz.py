"""Fuzz the readers of untrusted files: model files (imsnn_lava.ir.read), IDX dataset
files (imsnn_lava.data.idx.read_idx / datasets.load_pair) and NIR graphs
(imsnn_lava.interop.nir.from_nir, the `--target nir` cases).

Every case takes a small valid seed file and mutates it, then reads it back:

- model files: random byte flips, truncations, zeroed or spliced ranges and appended bytes
  of the HDF5 bytes, and structured edits made with h5py (change a dataset's dtype, shape or
  values, set or delete attributes, delete/add/rename/copy keys, turn a dataset into a group
  and back, declare huge chunked datasets, put odd text in text fields), one or two per case;
- IDX files (plain and .gz): byte flips, truncations, appended bytes, and edits of the header
  (magic, dtype and ndim bytes, dimensions).

The only outcomes allowed are a clean read or the documented error (ModelFileError, whose
message names the file; DataError for IDX, naming the file; for NIR any ImsnnError, naming
the file), raised without a chained traceback. A model file that reads must be internally
consistent: the numpy reference (`reference.simulate`) runs one sample through it (float, and
fixed point for fixed files). NIR cases mutate a small NIR file written by `to_nir` (conv,
dense and CubaLIF nodes) with the model-file mutations; an accepted one is imported in float
and fixed point and simulated the same way. Anything else is an escape.

A case is a list of integers drawn by `model_case` / `idx_case` from a `draw(lo, hi)`
callable: the test suite draws them with hypothesis (tests/test_robustness_model_files.py),
this script with a seeded random.Random per case, so `--case I` replays case I exactly.
Cases run in a worker subprocess; a case that crashes the interpreter or hangs is recorded
(and the worker restarted) instead of ending the run.

    python bench/fuzz.py --cases 5000 [--seed 0] [--case I] [--timeout 30] [--target all]

Writes bench/results/fuzz.json: cases run per target and outcome, escapes with their case
number, mutation and error, and the time taken.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib.util
import io
import json
import platform
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from imsnn_lava.outputs import write_json_atomic

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "fuzz.json"
Draw = Callable[[int, int], int]
BIG = 1 << 20  # range of "any position / any index" draws (taken modulo the real size)

# ---------------------------------------------------------------------------------------------
# seed files


def _helpers():
    name = "imsnn_test_lava_helpers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tests" / "lava_helpers.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def seed_models() -> dict:
    """{'float': ModelFile, 'fixed': ModelFile}: conv ISI -> dense ISI -> dense plain, small
    enough that a byte flip often lands in a field, with 2 reference samples."""
    from imsnn_lava import ir as fmt
    from imsnn_lava.numerics import reference

    h = _helpers()
    rng = np.random.default_rng(11)
    l1 = h.conv(rng, "c1", (1, 6, 6), 2, 3, 1, True, gain=3.0, phi_max=4)
    l2 = h.dense(rng, "d2", l1.out_shape, 6, True, gain=4.0, phi_max=4)
    l3 = h.dense(rng, "d3", (6, 1, 1), 3, False, gain=3.0)
    base = fmt.ModelFile(precision="float", input_shape=(1, 6, 6),
                         encoding=fmt.EncodingSpec(6, 0.5, 7), layers=[l1, l2, l3],
                         config_json='{"train": {"dataset": "mnist"}}',
                         metrics_json='{"history": []}')
    models = {"float": base, "fixed": h.quantize(base)}
    for key, model in list(models.items()):
        spikes = h.random_spikes(np.random.default_rng(5), 2, model.num_steps, 36, 0.4)
        res = reference.simulate(model, spikes.transpose(1, 0, 2),
                                 fixed=model.precision == "fixed")
        models[key] = model.replace(reference=fmt.ReferenceData(
            sample_ids=np.arange(2), labels=np.array([3, 1]), spikes=spikes,
            layer_counts=res.layer_counts(), output_counts=res.output_counts()))
    return models


def seed_nir():
    """A small plain model for the NIR seed: conv -> dense -> dense with a current filter
    (CubaLIF), so Conv2d, Flatten, Linear, LIF and CubaLIF nodes are all in the file."""
    from imsnn_lava import ir as fmt

    h = _helpers()
    rng = np.random.default_rng(13)
    l1 = h.conv(rng, "c1", (1, 6, 6), 2, 3, 1, False, gain=3.0)
    l2 = h.dense(rng, "d2", l1.out_shape, 6, False, gain=4.0)
    l3 = h.dense(rng, "d3", (6, 1, 1), 3, False, gain=3.0)
    l3 = l3.replace(du=0.5)
    return fmt.ModelFile(precision="float", input_shape=(1, 6, 6),
                         encoding=fmt.EncodingSpec(6, 0.5, 7), layers=[l1, l2, l3])


IDX_SEEDS = ("images", "labels", "images.gz", "labels.gz")


def write_seeds(folder: str | Path) -> dict[str, Path]:
    """Write the seed files into `folder`: model-float.h5, model-fixed.h5, model.nir and the
    four IDX files (3 images of 28x28 and their labels, plain and gzip)."""
    from imsnn_lava import ir as fmt
    from imsnn_lava.data.idx import write_idx

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, model in seed_models().items():
        out[f"model-{name}"] = folder / f"model-{name}.h5"
        fmt.write(model, out[f"model-{name}"])
    from imsnn_lava.interop.nir import save_nir, to_nir

    out["model-nir"] = folder / "model.nir"
    save_nir(to_nir(seed_nir()), out["model-nir"])
    rng = np.random.default_rng(3)
    arrays = {"images": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
              "labels": np.array([7, 0, 9], dtype=np.uint8)}
    for name in IDX_SEEDS:
        kind = name.split(".")[0]
        path = folder / f"seed-{kind}-idx-ubyte{'.gz' if name.endswith('.gz') else ''}"
        out[name] = write_idx(path, arrays[kind])
    return out


# ---------------------------------------------------------------------------------------------
# byte-level mutations (shared by both targets)

BYTE_OPS = ("flip", "truncate", "zero", "splice", "append", "flip-head")


def byte_case(draw: Draw) -> list[int]:
    op = draw(0, len(BYTE_OPS) - 1)
    if BYTE_OPS[op] in ("flip", "flip-head"):
        n = draw(1, 6)
        return [op, n] + [v for _ in range(n) for v in (draw(0, BIG), draw(1, 255))]
    return [op, draw(0, BIG), draw(1, 4096)]


def mutate_bytes(data: bytes, case: list[int]) -> bytes:
    op, args = BYTE_OPS[case[0]], case[1:]
    buf = bytearray(data)
    size = max(len(buf), 1)
    if op in ("flip", "flip-head"):
        span = min(size, 2048) if op == "flip-head" else size  # superblock + root header
        for i in range(args[0]):
            pos, xor = args[1 + 2 * i] % span, args[2 + 2 * i]
            if pos < len(buf):
                buf[pos] ^= xor
        return bytes(buf)
    pos, length = args[0] % size, args[1]
    if op == "truncate":
        return bytes(buf[:pos])
    if op == "zero":
        buf[pos:pos + length] = bytes(len(buf[pos:pos + length]))
        return bytes(buf)
    if op == "splice":  # copy a block of the file over another place
        src = (pos * 7919 + length) % size
        block = buf[src:src + length]
        buf[pos:pos + len(block)] = block
        return bytes(buf)
    return bytes(buf) + bytes((pos + i * 31) % 256 for i in range(length))  # append


# ---------------------------------------------------------------------------------------------
# structured model-file mutations (h5py)

H5_OPS = ("dtype", "shape", "value", "attr", "delete", "add", "swap", "rename", "copy",
          "bomb", "text", "link")
DTYPES = ("int8", "uint8", "int16", "int32", "int64", "uint64", "float16", "float32",
          "float64", "bool", "complex128", "S4", "vlen-str")
SPECIALS = (np.nan, np.inf, -np.inf, 0, -1, 1, 2, 3, 255, 256, -255, 4097, 2**16, 2**21,
            2**31, 2**32, 2**62, -(2**63), 1e300, 0.5, -0.5, 1e-300)
ATTR_VALUES = ("x", "", 0, -1, 1, 2, 99, 2**62, "uint64-max", np.nan, np.inf, 0.5,
               "array", "bytes", "empty", True, "long", "imsnn-model", "fixed", "float")
TEXTS = ("deep-json", "bad-utf8", "vlen", "array", "empty", "long", "not-json", "input",
         "isi_dense", "conv", "LIF_FLOAT", "CUBA")


def model_case(draw: Draw) -> dict:
    """A model-file fuzz case: which seed, then byte mutations or 1-2 h5py edits."""
    case = {"seed": ("float", "fixed")[draw(0, 1)]}
    if draw(0, 2) == 0:
        case["bytes"] = byte_case(draw)
    else:
        n = draw(1, 2)
        case["h5"] = [[draw(0, len(H5_OPS) - 1), draw(0, BIG), draw(0, BIG), draw(0, BIG)]
                      for _ in range(n)]
    return case


#: the nodes each edit applies to: d datasets, g groups (not the root), r the root group,
#: a attributes (of any node)
_APPLIES_TO = {"dtype": "da", "shape": "da", "value": "da", "attr": "dgra", "delete": "dga",
               "add": "gr", "swap": "dg", "rename": "dg", "copy": "d", "bomb": "d",
               "text": "d", "link": "dg"}


def _targets(f, kinds: str) -> list[tuple[str, str | None]]:
    """(path, None) for the nodes of `kinds` and (path, attribute) if 'a' in kinds, sorted;
    the root is ''."""
    import h5py

    names: list[str] = []
    f.visit(names.append)
    out = [("", None)] if "r" in kinds else []
    if "a" in kinds:
        out.extend(("", key) for key in sorted(f.attrs.keys()))
    for name in sorted(names):
        obj = f[name]
        is_ds = isinstance(obj, h5py.Dataset)
        if ("d" in kinds and is_ds) or ("g" in kinds and not is_ds):
            out.append((name, None))
        if "a" in kinds:
            out.extend((name, key) for key in sorted(obj.attrs.keys()))
    return out


def _cast(data: np.ndarray, dtype: str) -> np.ndarray:
    import h5py

    if dtype == "vlen-str":
        flat = [str(x) for x in np.asarray(data).reshape(-1)]
        return np.array(flat, dtype=h5py.string_dtype()).reshape(np.shape(data))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return np.asarray(data).astype(dtype)
        except (ValueError, TypeError, OverflowError):
            return np.zeros(np.shape(data), dtype=dtype)


def _reshape(data: np.ndarray, v: int, idx: int):
    import h5py

    a = np.asarray(data)
    variants = [
        lambda: a.reshape(-1)[:1].reshape(()) if a.size else np.int64(0),  # scalar
        lambda: a.reshape(-1),
        lambda: a[None],
        lambda: a[..., None],
        lambda: a[:-1] if a.ndim else a[None][:0],
        lambda: np.concatenate([a, a[:1]]) if a.ndim else a[None].repeat(2),
        lambda: a.T.copy(),
        lambda: np.zeros((0,), dtype=a.dtype),
        lambda: h5py.Empty(a.dtype if a.dtype.kind in "iufb" else "f8"),
        lambda: np.concatenate([a, a]) if a.ndim else a[None].repeat(3),
        lambda: a.reshape(-1)[::2] if a.size > 1 else a,
        lambda: np.zeros((idx % 5 + 1,) * (idx % 4 + 1), dtype=a.dtype),
    ]
    return variants[v % len(variants)]()


def _values(data: np.ndarray, v: int, idx: int) -> np.ndarray:
    a = np.array(data)
    special = SPECIALS[v % len(SPECIALS)]
    if a.dtype.kind not in "iufb" or a.size == 0:
        return np.full(a.shape if a.size else (1,), special)
    exact = a.dtype.kind in "iub" and isinstance(special, int)
    target = a.astype(np.int64) if exact else a.astype(np.float64)
    mode = (v // len(SPECIALS)) % 3
    with np.errstate(all="ignore"):
        if mode == 0:
            target[...] = special
        elif mode == 1:
            target.reshape(-1)[idx % a.size] = special
        else:
            target = target + special if np.isfinite(special) else target * special
    return target


def _attr_value(v: int):
    import h5py

    value = ATTR_VALUES[v % len(ATTR_VALUES)]
    return {"uint64-max": np.uint64(2**64 - 1), "array": np.array([1, 2]),
            "bytes": np.bytes_(b"\xff\xfe"), "empty": h5py.Empty("f8"),
            "long": "y" * 70000}.get(value, value)


def _text_value(v: int):
    import h5py

    value = TEXTS[v % len(TEXTS)]
    return {"deep-json": np.bytes_(b"[" * 200_000), "bad-utf8": np.bytes_(b"\xff\xfe{}"),
            "vlen": np.array("{}", dtype=h5py.string_dtype()),
            "array": np.array([b"{}", b"{}"]), "empty": np.bytes_(b""),
            "long": np.bytes_(b" " * 3_000_000 + b"{}"), "not-json": np.bytes_(b"{nope")
            }.get(value, np.bytes_(str(value).encode()))


def _replace(f, name: str, data, **kw) -> None:
    del f[name]
    f.create_dataset(name, data=data, **kw)


def apply_h5(f, op: int, t: int, v: int, idx: int) -> str:
    """One structured edit of the open file `f`; returns what it did, for the report."""
    import h5py

    opname = H5_OPS[op % len(H5_OPS)]
    targets = _targets(f, _APPLIES_TO[opname])
    if not targets:
        return "noop"
    name, attr = targets[t % len(targets)]
    obj = f[name] if name else f
    is_ds = isinstance(obj, h5py.Dataset)
    where = f"{name or '/'}" + (f"@{attr}" if attr is not None else "")
    if attr is not None:
        if opname == "delete":
            del obj.attrs[attr]
        else:
            obj.attrs[attr] = _attr_value(v)
        return f"{opname} {where} -> attr variant {v % len(ATTR_VALUES)}"
    if opname == "attr":
        obj.attrs[("name", "extra", "version", "format")[v % 4]] = _attr_value(idx)
        return f"attr {where} {v % 4} <- {idx % len(ATTR_VALUES)}"
    if opname == "delete":
        del f[name]
        return f"delete {where}"
    if opname == "add":
        group = obj if isinstance(obj, h5py.Group) else obj.parent
        key = ("extra", "surprise", "9", str(len(group)), "neuron", "weight")[v % 6]
        if key in group:
            key = f"{key}_x"
        if idx % 2:
            group.create_group(key)
        else:
            group.create_dataset(key, data=np.arange(idx % 4))
        return f"add {group.name}/{key}"
    if opname == "swap":
        if is_ds:
            del f[name]
            f.create_group(name)
        else:
            del f[name]
            f.create_dataset(name, data=np.int64(v % 7))
        return f"swap {where}"
    if opname == "rename":
        parent = obj.parent
        new = ("9", "0", "1", "2", "3", "x", "weight", "type")[v % 8]
        dest = f"{parent.name.rstrip('/')}/{new}"
        if dest.lstrip("/") == name:
            return "noop"
        if dest in f:
            del f[dest]
        f.move(name, dest)
        return f"rename {where} -> {dest}"
    if opname == "copy":
        datasets = [n for n, _ in targets if (f[n].size or 0) <= 1 << 16]
        if not datasets:
            return "noop"
        src = datasets[v % len(datasets)]
        data = f[src][()]
        _replace(f, name, data)
        return f"copy {src} -> {where}"
    if opname == "link":  # replace the node by a soft, external or hard link
        # not the node itself nor anything inside it (deleted with it just below)
        others = [n for n, _ in _targets(f, "dg") if n != name and not n.startswith(name + "/")]
        other = others[v % len(others)] if others else "nowhere"
        del f[name]
        kind = idx % 4
        if kind == 0:
            f[name] = h5py.SoftLink("/" + other)
        elif kind == 1:
            f[name] = h5py.SoftLink("/does/not/exist")
        elif kind == 2:
            f[name] = h5py.ExternalLink(f.filename, "/" + other)
        else:
            f[name] = f[other]  # a second hard link to another object
        return f"link {where} -> {('soft', 'dangling', 'external', 'hard')[kind]} {other}"
    if opname == "bomb":
        shapes = [(2**40,), (2**20, 2**20), (1 << 26, 2), (1, 1 << 27), (3, 2**31)]
        shape = shapes[v % len(shapes)]
        del f[name]
        f.create_dataset(name, shape=shape, dtype=("f8", "i8", "u1")[idx % 3],
                         chunks=(1,) * len(shape))
        return f"bomb {where} {shape}"
    if not is_ds or obj.size is None or obj.size > 1 << 16:  # never read a bomb back
        return "noop"
    data = obj[()]
    if opname == "text":
        _replace(f, name, _text_value(v))
        return f"text {where} <- {TEXTS[v % len(TEXTS)]}"
    if opname == "dtype":
        dtype = DTYPES[v % len(DTYPES)]
        _replace(f, name, _cast(data, dtype))
        return f"dtype {where} -> {dtype}"
    if opname == "shape":
        new = _reshape(data, v, idx)
        _replace(f, name, new)
        return f"shape {where} -> {getattr(new, 'shape', None)}"
    new = _values(data, v, idx)
    _replace(f, name, new)
    return f"value {where} variant {v % (3 * len(SPECIALS))}"


def make_model_case(case: dict, seeds: dict[str, Path], out: Path) -> str:
    """Write the mutated file of `case` to `out`; returns a description of the mutation."""
    import h5py

    src = seeds[f"model-{case['seed']}"]
    if "bytes" in case:
        out.write_bytes(mutate_bytes(src.read_bytes(), case["bytes"]))
        return f"{case['seed']}: bytes {BYTE_OPS[case['bytes'][0]]} {case['bytes'][1:]}"
    shutil.copyfile(src, out)
    done = []
    with h5py.File(out, "r+") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for op, t, v, idx in case["h5"]:
            done.append(apply_h5(f, op, t, v, idx))
    return f"{case['seed']}: " + "; ".join(done)


# ---------------------------------------------------------------------------------------------
# checking


class Escape(AssertionError):
    """A case ended in something other than a clean read or the documented error."""


def _chained(exc: BaseException) -> bool:
    return exc.__cause__ is not None or (exc.__context__ is not None
                                         and not exc.__suppress_context__)


def check_model_file(path: Path) -> tuple[str, str]:
    """('ok', '') or ('rejected', message); raises Escape for anything else."""
    from imsnn_lava import ir as fmt
    from imsnn_lava.errors import ModelFileError
    from imsnn_lava.numerics import reference

    try:
        model = fmt.read(path)
    except ModelFileError as exc:
        if str(path) not in str(exc):
            raise Escape(f"ModelFileError does not name the file: {exc}") from None
        if _chained(exc):
            raise Escape(f"ModelFileError carries a chained traceback: {exc!r} <- "
                         f"{exc.__cause__ or exc.__context__!r}") from None
        return "rejected", str(exc)
    except Exception as exc:  # noqa: BLE001 - that is what we look for
        raise Escape(f"read raised {type(exc).__name__}: {exc}\n"
                     f"{traceback.format_exc(limit=-4)}") from None
    try:
        n_in = int(np.prod(model.input_shape))
        t = min(model.num_steps, 32)
        spikes = np.random.default_rng(0).random((t, 1, n_in)) < 0.3
        for fixed in (False, True) if model.precision == "fixed" else (False,):
            with np.errstate(all="ignore"):
                res = reference.simulate(model, spikes, fixed=fixed)
            assert res.output_counts().shape == (1, model.layers[-1].n_out)
    except Exception as exc:  # noqa: BLE001
        raise Escape(f"read accepted an inconsistent file: simulate raised "
                     f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-4)}") from None
    return "ok", ""


def nir_case(draw: Draw) -> dict:
    """A NIR fuzz case: the model-file mutations, applied to the NIR seed."""
    return {**model_case(draw), "seed": "nir"}


def check_nir_file(path: Path) -> tuple[str, str]:
    """('ok', '') or ('rejected', message); raises Escape for anything else."""
    from imsnn_lava.errors import ImsnnError
    from imsnn_lava.interop.nir import from_nir
    from imsnn_lava.numerics import reference

    models = []
    for fixed in (False, True):
        try:
            models.append(from_nir(path, fixed_point=fixed))
        except ImsnnError as exc:
            if str(path) not in str(exc):
                raise Escape(f"{type(exc).__name__} does not name the file: {exc}") from None
            if _chained(exc):
                raise Escape(f"{type(exc).__name__} carries a chained traceback: {exc!r} <- "
                             f"{exc.__cause__ or exc.__context__!r}") from None
            if not models:
                return "rejected", str(exc)
        except Exception as exc:  # noqa: BLE001 - that is what we look for
            raise Escape(f"from_nir raised {type(exc).__name__}: {exc}\n"
                         f"{traceback.format_exc(limit=-4)}") from None
    try:
        for model in models:
            n_in = int(np.prod(model.input_shape))
            spikes = np.random.default_rng(0).random((min(model.num_steps, 32), 1, n_in)) < 0.3
            with np.errstate(all="ignore"):
                res = reference.simulate(model, spikes, fixed=model.precision == "fixed")
            assert res.output_counts().shape == (1, model.layers[-1].n_out)
    except Exception as exc:  # noqa: BLE001
        raise Escape(f"from_nir accepted an inconsistent graph: simulate raised "
                     f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-4)}") from None
    return "ok", ""


# ---------------------------------------------------------------------------------------------
# IDX

IDX_HEADER_VALUES = (0, 1, 2, 3, 27, 28, 29, 255, 2**16, 2**31, 2**32 - 1)


def idx_case(draw: Draw) -> dict:
    case = {"seed": IDX_SEEDS[draw(0, len(IDX_SEEDS) - 1)]}
    kind = draw(0, 2)
    if kind == 0:
        case["bytes"] = byte_case(draw)  # of the payload (uncompressed)
    elif kind == 1:
        case["header"] = [draw(0, 7), draw(0, BIG)]  # byte k (0..3) or dim k-4 (0..3)
    else:
        case["gzbytes"] = byte_case(draw)  # of the file as stored (.gz: compressed bytes)
    return case


def make_idx_case(case: dict, seeds: dict[str, Path], out_dir: Path) -> tuple[Path, str]:
    src = seeds[case["seed"]]
    gz = src.name.endswith(".gz")
    out = out_dir / src.name.replace("seed-", "fuzz-")
    stored = src.read_bytes()
    payload = gzip.decompress(stored) if gz else stored
    if "gzbytes" in case:
        out.write_bytes(mutate_bytes(stored, case["gzbytes"]))
        return out, f"{case['seed']}: stored bytes {case['gzbytes']}"
    if "bytes" in case:
        payload = mutate_bytes(payload, case["bytes"])
        what = f"payload bytes {BYTE_OPS[case['bytes'][0]]} {case['bytes'][1:]}"
    else:
        k, v = case["header"]
        buf = bytearray(payload)
        if k < 4:
            buf[k] = v % 256
            what = f"header byte {k} = {v % 256}"
        else:
            value = IDX_HEADER_VALUES[v % len(IDX_HEADER_VALUES)]
            pos = 4 + 4 * (k - 4)
            buf[pos:pos + 4] = struct.pack(">I", value)
            what = f"header dim {k - 4} = {value}"
        payload = bytes(buf)
    out.write_bytes(gzip.compress(payload, mtime=0) if gz else payload)
    return out, f"{case['seed']}: {what}"


def check_idx_file(path: Path, seeds: dict[str, Path]) -> tuple[str, str]:
    """('ok', '') or ('rejected', message) of read_idx, then load_pair; raises Escape for
    anything else."""
    from imsnn_lava.data.datasets import load_pair
    from imsnn_lava.data.idx import read_idx
    from imsnn_train.errors import DataError

    kind = "images" if "images" in path.name else "labels"
    try:
        arr = read_idx(path, kind=kind)
        if arr.dtype != np.uint8 or not arr.flags.writeable or arr.ndim < 1:
            raise Escape(f"read_idx returned {arr.dtype} {arr.shape}")
        pair = (path, seeds["labels"]) if kind == "images" else (seeds["images"], path)
        images, labels = load_pair(*pair)
        if images.shape[1:] != (28, 28) or labels.shape != (len(images),) or \
                (labels.size and labels.max() > 9):
            raise Escape(f"load_pair returned images {images.shape}, labels {labels.shape}")
    except DataError as exc:
        if path.name not in str(exc):
            raise Escape(f"DataError does not name the file: {exc}") from None
        if _chained(exc):
            raise Escape(f"DataError carries a chained traceback: {exc!r}") from None
        return "rejected", str(exc)
    except Escape:
        raise
    except Exception as exc:  # noqa: BLE001
        raise Escape(f"IDX read raised {type(exc).__name__}: {exc}\n"
                     f"{traceback.format_exc(limit=-4)}") from None
    return "ok", ""


# ---------------------------------------------------------------------------------------------
# one case, by number (the bench's unit of work)


def rng_draw(seed: int, target: str, i: int) -> Draw:
    rng = random.Random(f"{seed}:{target}:{i}")
    return rng.randint


def run_case(target: str, i: int, seed: int, seeds: dict[str, Path], work: Path) -> dict:
    draw = rng_draw(seed, target, i)
    t0 = time.perf_counter()
    what, error, message = None, None, ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if target == "model":
                case = model_case(draw)
                path = work / f"case{i}.h5"
                what = make_model_case(case, seeds, path)
                outcome, message = check_model_file(path)
            elif target == "nir":
                case = nir_case(draw)
                path = work / f"case{i}.nir"
                what = make_model_case(case, seeds, path)
                outcome, message = check_nir_file(path)
            else:
                case = idx_case(draw)
                path, what = make_idx_case(case, seeds, work)
                outcome, message = check_idx_file(path, seeds)
    except Escape as exc:
        outcome, error = "escaped", str(exc)
    except Exception as exc:  # noqa: BLE001 - the mutation itself failed: not a finding
        outcome, error = "not-made", f"{type(exc).__name__}: {exc}"
    finally:
        for p in work.iterdir():
            if p.name.startswith(("case", "fuzz-")):
                p.unlink()
    found = re.search(r"field '([^']*)'", message)
    field = re.sub(r"\d+", "N", found.group(1)) if found else None
    return {"target": target, "case": i, "outcome": outcome, "mutation": what, "error": error,
            "field": field, "seconds": round(time.perf_counter() - t0, 4)}


def _worker(seed: int, cases: list[tuple[str, int]]) -> None:
    """Run cases, one JSON line each; 'start' lines let the parent name a crashing case."""
    with tempfile.TemporaryDirectory(prefix="imsnn-fuzz-") as tmp:
        tmp = Path(tmp)
        seeds = write_seeds(tmp / "seeds")
        work = tmp / "work"
        work.mkdir()
        out = sys.stdout
        for target, i in cases:
            print(json.dumps({"start": [target, i]}), file=out, flush=True)
            with contextlib.redirect_stdout(io.StringIO()):
                result = run_case(target, i, seed, seeds, work)
            print(json.dumps(result), file=out, flush=True)


def _supervise(seed: int, cases: list[tuple[str, int]], timeout_s: float) -> list[dict]:
    """Run `cases` in worker subprocesses; a worker that dies or stalls ends its case as a
    crash or hang and a new worker takes the remaining cases."""
    import selectors

    results: list[dict] = []
    todo = list(cases)
    while todo:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", "--seed", str(seed)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        proc.stdin.write(json.dumps(todo))
        proc.stdin.close()
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        current = None
        done_here = 0
        stalled = False
        while True:
            if not sel.select(timeout=timeout_s):
                stalled = True
                proc.kill()
                break
            line = proc.stdout.readline()
            if not line:
                break
            msg = json.loads(line)
            if "start" in msg:
                current = tuple(msg["start"])
            else:
                results.append(msg)
                current = None
                done_here += 1
        proc.wait()
        sel.close()
        proc.stdout.close()
        todo = todo[done_here:]
        if current is None:
            if todo and proc.returncode != 0:
                raise RuntimeError(f"fuzz worker exited {proc.returncode} between cases")
            continue
        target, i = current
        outcome = "hang" if stalled else f"crash (exit {proc.returncode})"
        results.append({"target": target, "case": i, "outcome": "escaped",
                        "mutation": None, "error": outcome, "seconds": timeout_s})
        todo = todo[1:]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2000, help="cases per target")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", choices=("model", "idx", "nir", "both", "all"),
                        default="both", help="both: model and idx; all: model, idx and nir")
    parser.add_argument("--case", type=int, help="run one case in-process and print it")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds one case may take before it counts as a hang")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.seed, [tuple(c) for c in json.loads(sys.stdin.read())])
        return 0
    targets = {"both": ("model", "idx"), "all": ("model", "idx", "nir")}.get(
        args.target, (args.target,))
    if args.case is not None:
        with tempfile.TemporaryDirectory(prefix="imsnn-fuzz-") as tmp:
            seeds = write_seeds(Path(tmp) / "seeds")
            work = Path(tmp) / "work"
            work.mkdir()
            for target in targets:
                print(json.dumps(run_case(target, args.case, args.seed, seeds, work), indent=2))
        return 0
    t0 = time.time()
    cases = [(t, i) for i in range(args.cases) for t in targets]
    results = _supervise(args.seed, cases, args.timeout)
    wall = time.time() - t0
    summary = {}
    for target in targets:
        rows = [r for r in results if r["target"] == target]
        outcomes = Counter(r["outcome"] for r in rows)
        summary[target] = {
            "cases": len(rows), "ok": outcomes["ok"], "rejected": outcomes["rejected"],
            "escaped": outcomes["escaped"], "mutation_not_made": outcomes["not-made"],
            "documented_error": {"model": "ModelFileError", "idx": "DataError",
                                 "nir": "ImsnnError"}[target],
            "fields_named": len({r.get("field") for r in rows} - {None}),
            "slowest_case_s": max((r["seconds"] for r in rows), default=0.0),
            "mean_case_ms": round(1000 * sum(r["seconds"] for r in rows) / max(len(rows), 1),
                                  2),
        }
    escapes = [r for r in results if r["outcome"] == "escaped"]
    report = {
        "cases_per_target": args.cases, "seed": args.seed,
        "cases_run": len(results), "escaped": len(escapes),
        "no_undocumented_errors": not escapes, "targets": summary,
        "escapes": escapes[:50], "wall_s": round(wall, 1),
        "python": platform.python_version(), "machine": platform.machine(),
        "command": "python bench/fuzz.py " + " ".join(argv if argv is not None
                                                      else sys.argv[1:]),
    }
    write_json_atomic(args.out, report)
    print(json.dumps({k: v for k, v in report.items() if k != "escapes"}, indent=2))
    for r in escapes[:10]:
        print(f"ESCAPE {r['target']} case {r['case']}: {r['mutation']}\n  {r['error']}",
              file=sys.stderr)
    return 1 if escapes else 0


if __name__ == "__main__":
    sys.exit(main())
