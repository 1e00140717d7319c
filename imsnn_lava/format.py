"""The imsnn model file: a small, typed, versioned HDF5 schema (numpy + h5py only).

Layout (a superset of lava-dl netx's: a fixed-point dense baseline file whose weights have
exponent 0, the default export, loads in `lava.lib.dl.netx.hdf5.Network` unchanged; netx reads
dense weights as 8-bit values and ignores exponents, and it skips unknown layer types such as
isi_dense without an error, so ISI files are for imsnn_lava only):

    /                      attrs: format="imsnn-model", version, precision ("float"|"fixed")
    /config                JSON text of the experiment config (provenance)
    /metrics               JSON text of the training metrics
    /encoding              attrs: num_steps, max_rate, seed
    /layer/0               type="input", shape=[C, H, W]
    /layer/i (i >= 1)      type="dense"|"conv"|"isi_dense"|"isi_conv", shape=[out shape],
                           weight, (conv: stride, padding, dilation, groups, kernel),
                           neuron/{type="CUBA", iDecay, vDecay, vThMant, refDelay, gradedSpike}
                           in fixed files, or neuron/{type="LIF_FLOAT", du, dv, vth} in float;
                           ISI layers: mu, sigma, phi_max, c0; fixed ISI layers: table_mant
                           (K, *weight.shape), table_exp (K,), and `weight` holds the trained
                           float w; fixed plain layers: `weight` holds the integer weights
                           (mantissa << exponent) netx expects, plus table_mant/table_exp.
                           fixed layers: scale (real -> integer factor).
    /reference             sample_ids, labels, spikes (n, T, n_in) uint8, layer_counts (n, L),
                           output_counts (n, n_out): what the exporting model computed, so a
                           deployment can prove it reproduces training (`imsnn verify`).

`read` validates every field (type, shape, range, version) before building arrays and raises
ModelFileError naming the file and the field. Nothing is unpickled. Sizes are checked on the
declared shapes before any data is read; unknown members and attributes, and soft or external
links, are refused; anything h5py raises on a corrupt file becomes ModelFileError too.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imsnn_lava import fixed_point as fp
from imsnn_lava.errors import ModelFileError

FORMAT_NAME = "imsnn-model"
FORMAT_VERSION = 1
PRECISIONS = ("float", "fixed")
LAYER_TYPES = {"dense": ("dense", "plain"), "conv": ("conv", "plain"),
               "isi_dense": ("dense", "isi"), "isi_conv": ("conv", "isi")}
MAX_ELEMENTS = 1 << 26  # refuse any array larger than this before reading it (64 Mi values)
MAX_PHI = 4096
MAX_LAYERS = 64
MAX_STEPS = 100_000
NETX_NEURON = "CUBA"
FLOAT_NEURON = "LIF_FLOAT"


@dataclass(frozen=True)
class EncodingSpec:
    num_steps: int
    max_rate: float
    seed: int


@dataclass
class FixedLayer:
    scale: int
    table: fp.QuantizedTable
    du: int
    dv: int
    vth: int


@dataclass
class LayerSpec:
    name: str
    kind: str  # "dense" | "conv"
    synapse: str  # "isi" | "plain"
    in_shape: tuple[int, int, int]  # (C, H, W); a dense layer after a dense one has (n, 1, 1)
    out_shape: tuple[int, int, int]
    weight: np.ndarray  # float64 (n_out, n_in) or (C_out, C_in, k, k)
    du: float
    dv: float
    vth: float
    stride: int = 1
    padding: int = 0
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None
    phi_max: int = 1
    c0: int = 1
    fixed: FixedLayer | None = None

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def type_name(self) -> str:
        return ("isi_" if self.synapse == "isi" else "") + self.kind


@dataclass
class ReferenceData:
    sample_ids: np.ndarray  # (n,) int64
    labels: np.ndarray  # (n,) int64
    spikes: np.ndarray  # (n, T, n_in) bool
    layer_counts: np.ndarray  # (n, L) int64, spikes per layer per sample (hidden + output)
    output_counts: np.ndarray  # (n, n_out) int64


@dataclass
class ModelFile:
    precision: str
    input_shape: tuple[int, int, int]
    encoding: EncodingSpec
    layers: list[LayerSpec]
    config_json: str = "{}"
    metrics_json: str = "{}"
    reference: ReferenceData | None = None
    version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)

    @property
    def num_steps(self) -> int:
        return self.encoding.num_steps


def conv_out_hw(h: int, w: int, kernel: int, stride: int, padding: int) -> tuple[int, int]:
    return ((h + 2 * padding - kernel) // stride + 1, (w + 2 * padding - kernel) // stride + 1)


# ---------------------------------------------------------------------------------------------
# writing


def write(model: ModelFile, path: str | Path) -> None:
    """Write atomically: a temp file in the target folder, then os.replace."""
    import h5py

    path = Path(path)
    check(model, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            _write(f, model)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _str(group, name: str, text: str) -> None:
    group.create_dataset(name, data=np.bytes_(text.encode("utf-8")))


def _write(f, m: ModelFile) -> None:
    f.attrs["format"] = FORMAT_NAME
    f.attrs["version"] = m.version
    f.attrs["precision"] = m.precision
    _str(f, "config", m.config_json)
    _str(f, "metrics", m.metrics_json)
    enc = f.create_group("encoding")
    enc.attrs["num_steps"] = m.encoding.num_steps
    enc.attrs["max_rate"] = m.encoding.max_rate
    enc.attrs["seed"] = m.encoding.seed
    layers = f.create_group("layer")
    g0 = layers.create_group("0")
    _str(g0, "type", "input")
    g0.create_dataset("shape", data=np.asarray(m.input_shape, dtype=np.int64))
    for i, layer in enumerate(m.layers, start=1):
        g = layers.create_group(str(i))
        _str(g, "type", layer.type_name)
        g.create_dataset("shape", data=np.asarray(_netx_shape(layer), dtype=np.int64))
        g.attrs["name"] = layer.name
        if layer.kind == "conv":
            k = layer.weight.shape[-1]
            for key, val in (("stride", layer.stride), ("padding", layer.padding),
                             ("dilation", 1), ("groups", 1), ("kernel", k)):
                g.create_dataset(key, data=np.asarray([val, val] if key != "groups" else val))
        neuron = g.create_group("neuron")
        if m.precision == "fixed":
            fx = layer.fixed
            _str(neuron, "type", NETX_NEURON)
            neuron.create_dataset("iDecay", data=np.int64(fx.du + fp.DU_OFFSET))
            neuron.create_dataset("vDecay", data=np.int64(fx.dv))
            neuron.create_dataset("vThMant", data=np.int64(fx.vth))
            neuron.create_dataset("refDelay", data=np.int64(1))
            neuron.create_dataset("gradedSpike", data=np.bool_(False))
            g.create_dataset("scale", data=np.int64(fx.scale))
            g.create_dataset("table_mant", data=fx.table.mant, compression="gzip")
            g.create_dataset("table_exp", data=fx.table.exp)
            if layer.synapse == "plain":
                g.create_dataset("weight", data=fx.table.weights_int()[0].astype(np.int32))
            else:
                g.create_dataset("weight", data=layer.weight, compression="gzip")
        else:
            _str(neuron, "type", FLOAT_NEURON)
            for key in ("du", "dv", "vth"):
                neuron.create_dataset(key, data=np.float64(getattr(layer, key)))
            g.create_dataset("weight", data=layer.weight, compression="gzip")
        if layer.synapse == "isi":
            g.create_dataset("mu", data=layer.mu, compression="gzip")
            g.create_dataset("sigma", data=layer.sigma, compression="gzip")
            g.create_dataset("phi_max", data=np.int64(layer.phi_max))
            g.create_dataset("c0", data=np.int64(layer.c0))
    if m.reference is not None:
        r = f.create_group("reference")
        r.create_dataset("sample_ids", data=m.reference.sample_ids.astype(np.int64))
        r.create_dataset("labels", data=m.reference.labels.astype(np.int64))
        r.create_dataset("spikes", data=m.reference.spikes.astype(np.uint8), compression="gzip")
        r.create_dataset("layer_counts", data=m.reference.layer_counts.astype(np.int64))
        r.create_dataset("output_counts", data=m.reference.output_counts.astype(np.int64))


def _netx_shape(layer: LayerSpec) -> tuple[int, ...]:
    return (layer.n_out,) if layer.kind == "dense" else tuple(layer.out_shape)


# ---------------------------------------------------------------------------------------------
# reading


class _Reader:
    """Typed access to one HDF5 file; every failure names the file and the field."""

    def __init__(self, f, path: str):
        self.f = f
        self.path = path
        self.at = "/"  # the field being read, for errors h5py raises outside the checks

    def fail(self, field_name: str, msg: str) -> ModelFileError:
        return ModelFileError(f"{self.path}: field '{field_name}': {msg}")

    def node(self, name: str):
        self.at = name
        try:
            return self.f[name]
        except KeyError:
            raise self.fail(name, "missing") from None
        except Exception as exc:  # noqa: BLE001 - h5py raises many types on corrupt files
            raise self.fail(name, f"unreadable ({type(exc).__name__}: {exc})") from None

    def group(self, name: str):
        import h5py

        obj = self.node(name) if name else self.f
        if not isinstance(obj, h5py.Group):
            raise self.fail(name, "expected a group, found a dataset")
        return obj

    def keys(self, name: str, allowed: set[str] | None, attrs: set[str] = frozenset()
             ) -> list[str]:
        """The member names of group `name`. Members not in `allowed`, attributes not in
        `attrs`, and soft or external links (a model file is one self-contained tree) are
        errors."""
        import h5py

        group = self.group(name)
        self.attr_names(name, attrs)
        try:
            keys = list(group.keys())
            links = [group.get(k, getlink=True) for k in keys]
        except Exception as exc:  # noqa: BLE001 - corrupt group index
            raise self.fail(name or "/", f"unreadable ({type(exc).__name__}: {exc})") from None
        unknown = sorted(set(keys) - allowed) if allowed is not None else []
        if unknown:
            where = f"{name}/{unknown[0]}" if name else unknown[0]
            raise self.fail(where, f"unknown field (known: {sorted(allowed)})")
        for key, link in zip(keys, links):
            if not isinstance(link, h5py.HardLink):
                where = f"{name}/{key}" if name else key
                raise self.fail(where, f"is a {type(link).__name__}; links are not allowed")
        return keys

    def attr_names(self, name: str, allowed: set[str]) -> list[str]:
        obj = self.node(name) if name else self.f
        try:
            keys = list(obj.attrs.keys())
        except Exception as exc:  # noqa: BLE001
            raise self.fail(f"{name}@", f"unreadable attributes ({type(exc).__name__}: "
                            f"{exc})") from None
        unknown = sorted(set(keys) - allowed)
        if unknown:
            known = f"known: {sorted(allowed)}" if allowed else "this field has none"
            raise self.fail(f"{name}@{unknown[0]}", f"unknown attribute ({known})")
        return keys

    def check_type(self, name: str, obj_id, kind: str) -> None:
        """Refuse a dataset or attribute whose HDF5 type class does not fit `kind`, before
        h5py reads or converts it: a corrupt file can turn a string into a variable-length
        sequence of garbage, and reading that crashes the HDF5 library (found by fuzzing)."""
        from h5py import h5t

        try:
            type_id = obj_id.get_type()
            cls = type_id.get_class()
            if cls == h5t.ENUM:
                cls = (h5t.ENUM, type_id.get_super().get_class())
        except Exception as exc:  # noqa: BLE001
            raise self.fail(name, f"unreadable type ({type(exc).__name__}: {exc})") from None
        allowed = {"i": [h5t.INTEGER], "f": [h5t.INTEGER, h5t.FLOAT],
                   "b": [h5t.INTEGER, (h5t.ENUM, h5t.INTEGER)], "s": [h5t.STRING]}[kind]
        if cls not in allowed:
            found = _H5_CLASS_NAMES.get(cls[0] if isinstance(cls, tuple) else cls, str(cls))
            raise self.fail(name, f"expected {_KIND_NAMES[kind]}, found HDF5 {found} data")

    def has(self, name: str) -> bool:
        try:
            return name in self.f
        except Exception:  # noqa: BLE001
            return False

    def array(self, name: str, kind: str, ndim: int | None = None,
              shape: tuple | None = None) -> np.ndarray:
        """kind: 'i' integer, 'f' real (int accepted), 'b' bool/uint8, 's' bytes."""
        import h5py

        ds = self.node(name)
        if not isinstance(ds, h5py.Dataset):
            raise self.fail(name, "expected a dataset, found a group")
        self.check_type(name, ds.id, kind)  # before h5py converts the type: see check_type
        if ds.shape is None:
            raise self.fail(name, "empty dataset")
        self.attr_names(name, set())
        size = math.prod(ds.shape)
        if size > MAX_ELEMENTS:
            raise self.fail(name, f"{size} values exceed the limit of {MAX_ELEMENTS}")
        dk = ds.dtype.kind
        ok = {"i": dk in "iu", "f": dk in "fiu", "b": dk in "biu", "s": dk in "SO"}[kind]
        if not ok:
            raise self.fail(name, f"expected {_KIND_NAMES[kind]}, found dtype {ds.dtype}")
        if ndim is not None and len(ds.shape) != ndim:
            raise self.fail(name, f"expected {ndim} dimensions, found shape {ds.shape}")
        if shape is not None and tuple(ds.shape) != tuple(shape):
            raise self.fail(name, f"expected shape {tuple(shape)}, found {tuple(ds.shape)}")
        try:
            data = ds[()]
        except Exception as exc:  # noqa: BLE001
            raise self.fail(name, f"unreadable ({type(exc).__name__}: {exc})") from None
        data = np.asarray(data)
        if kind == "f":
            data = data.astype(np.float64)
            if not np.all(np.isfinite(data)):
                raise self.fail(name, "contains NaN or Inf")
        elif kind == "i":
            data = data.astype(np.int64)
        return data

    def text(self, name: str) -> str:
        data = self.array(name, "s")
        if data.ndim == 1 and data.size == 1:
            data = data[0]
        if data.ndim != 0:
            raise self.fail(name, "expected a text scalar")
        raw = data.item()
        try:
            return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        except UnicodeDecodeError:
            raise self.fail(name, "not UTF-8 text") from None

    def scalar(self, name: str, kind: str, lo: float, hi: float) -> int | float:
        data = self.array(name, kind)
        if data.size != 1:
            raise self.fail(name, f"expected a scalar, found shape {data.shape}")
        value = data.reshape(()).item()
        if not lo <= value <= hi:
            raise self.fail(name, f"{value} outside [{lo}, {hi}]")
        return int(value) if kind == "i" else float(value)

    def attr(self, obj_name: str, key: str, kind: str, lo=None, hi=None):
        obj = self.node(obj_name) if obj_name else self.f
        name = f"{obj_name}@{key}" if obj_name else f"@{key}"
        self.at = name
        if key not in obj.attrs:
            raise self.fail(name, "missing")
        try:
            import h5py

            attr_id = h5py.h5a.open(obj.id, key.encode("utf-8"))
        except Exception as exc:  # noqa: BLE001
            raise self.fail(name, f"unreadable ({type(exc).__name__}: {exc})") from None
        self.check_type(name, attr_id, kind)
        if attr_id.shape is None or math.prod(attr_id.shape) != 1:
            raise self.fail(name, f"expected a single value, found shape {attr_id.shape}")
        try:
            value = obj.attrs[key]
        except Exception as exc:  # noqa: BLE001 - unreadable or unsupported attribute type
            raise self.fail(name, f"unreadable ({type(exc).__name__}: {exc})") from None
        if kind == "s":
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            if not isinstance(value, str):
                raise self.fail(name, f"expected text, found {type(value).__name__}")
            return value
        arr = np.asarray(value)
        if arr.size != 1 or arr.dtype.kind not in ("iu" if kind == "i" else "fiu"):
            raise self.fail(name, f"expected a {_KIND_NAMES[kind]} scalar, found {value!r}")
        value = arr.reshape(()).item()
        if isinstance(value, float) and not np.isfinite(value):
            raise self.fail(name, "NaN or Inf")
        if lo is not None and not lo <= value <= hi:
            raise self.fail(name, f"{value} outside [{lo}, {hi}]")
        return int(value) if kind == "i" else float(value)


_KIND_NAMES = {"i": "integers", "f": "numbers", "b": "booleans", "s": "text"}
_H5_CLASS_NAMES = {0: "integer", 1: "float", 2: "time", 3: "string", 4: "bitfield",
                   5: "opaque", 6: "compound", 7: "reference", 8: "enum",
                   9: "variable-length sequence", 10: "array"}


def read(path: str | Path) -> ModelFile:
    """Read and validate a model file. Raises ModelFileError naming the file and field."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    _check_global_heaps(path)
    try:
        f = h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt HDF5
        raise ModelFileError(f"{path}: not a readable HDF5 model file ({exc})") from None
    with f:
        r = _Reader(f, str(path))
        try:
            return _read(r)
        except ModelFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - h5py/HDF5 errors on corrupt structure
            raise ModelFileError(f"{path}: field '{r.at}': unreadable "
                                 f"({type(exc).__name__}: {exc})") from None


def _check_global_heaps(path: Path) -> None:
    """Refuse a file whose HDF5 global heap would hang the HDF5 library.

    Variable-length strings (h5py's text attributes) live in global heap collections. HDF5
    (up to 2.0 at least) loads a collection by walking its object list, and an object of size
    0, which zeroed or corrupt bytes produce, makes that walk loop forever (found by
    fuzzing). Each collection ("GCOL", version 1, 8-byte size, then objects of a 16-byte
    header: index u16, refs u16, reserved, size u64) is walked here first, the same way.
    """
    import mmap

    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < 16:
            return  # h5py refuses it
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            pos = mm.find(b"GCOL")
            while pos != -1:
                if pos + 16 <= size and mm[pos + 4] == 1:
                    end = pos + int.from_bytes(mm[pos + 8:pos + 16], "little")
                    p = pos + 16
                    while end <= size and p + 16 <= end:
                        index = int.from_bytes(mm[p:p + 2], "little")
                        length = int.from_bytes(mm[p + 8:p + 16], "little")
                        step = 16 + (length + 7) // 8 * 8 if index else length
                        if step == 0:
                            raise ModelFileError(
                                f"{path}: corrupt HDF5 global heap at byte {pos} (an object "
                                f"of size 0 at byte {p}); not a readable model file")
                        p += step
                pos = mm.find(b"GCOL", pos + 4)


_TOP_KEYS = {"config", "metrics", "encoding", "layer", "reference"}
_TOP_ATTRS = {"format", "version", "precision"}
_ENCODING_ATTRS = {"num_steps", "max_rate", "seed"}
_LAYER_KEYS = {"type", "shape", "weight", "neuron", "stride", "padding", "dilation", "groups",
               "kernel", "mu", "sigma", "phi_max", "c0", "scale", "table_mant", "table_exp"}
_NEURON_KEYS = {"float": {"type", "du", "dv", "vth"},
                "fixed": {"type", "iDecay", "vDecay", "vThMant", "refDelay", "gradedSpike"}}
_REFERENCE_KEYS = {"sample_ids", "labels", "spikes", "layer_counts", "output_counts"}


def _read(r: _Reader) -> ModelFile:
    fmt = r.attr("", "format", "s")
    if fmt != FORMAT_NAME:
        raise r.fail("@format", f"expected '{FORMAT_NAME}', found '{fmt}'")
    version = r.attr("", "version", "i")
    if version > FORMAT_VERSION:
        raise r.fail("@version", f"file version {version} is newer than this imsnn "
                     f"(reads up to {FORMAT_VERSION}); upgrade imsnn")
    if version < 1:
        raise r.fail("@version", f"{version} is not a valid version (expected 1..{FORMAT_VERSION})")
    precision = r.attr("", "precision", "s")
    if precision not in PRECISIONS:
        raise r.fail("@precision", f"expected one of {PRECISIONS}, found '{precision}'")
    r.keys("", _TOP_KEYS, _TOP_ATTRS)
    config_json = r.text("config")
    metrics_json = r.text("metrics")
    for name, text in (("config", config_json), ("metrics", metrics_json)):
        try:
            json.loads(text)
        except (ValueError, RecursionError):
            raise r.fail(name, "not valid JSON") from None
    r.keys("encoding", set(), _ENCODING_ATTRS)
    encoding = EncodingSpec(
        num_steps=r.attr("encoding", "num_steps", "i", 1, MAX_STEPS),
        max_rate=r.attr("encoding", "max_rate", "f", 0.0, 1.0),
        seed=r.attr("encoding", "seed", "i", 0, 2**63 - 1),
    )
    keys = r.keys("layer", None)
    if sorted(keys, key=lambda k: (len(k), k)) != [str(i) for i in range(len(keys))]:
        raise r.fail("layer", f"expected groups 0..{len(keys) - 1}, found {sorted(keys)}")
    if not 2 <= len(keys) <= MAX_LAYERS + 1:
        raise r.fail("layer", f"expected an input and 1..{MAX_LAYERS} layers, found {len(keys)}")
    r.keys("layer/0", {"type", "shape"})
    if r.text("layer/0/type") != "input":
        raise r.fail("layer/0/type", "expected 'input'")
    in_shape = r.array("layer/0/shape", "i", shape=(3,))
    if np.any(in_shape < 1) or math.prod(in_shape.tolist()) > MAX_ELEMENTS:
        raise r.fail("layer/0/shape", f"invalid input shape {in_shape.tolist()}")
    input_shape = tuple(int(x) for x in in_shape)
    layers = []
    prev = input_shape
    for i in range(1, len(keys)):
        layer = _read_layer(r, f"layer/{i}", i, prev, precision)
        layers.append(layer)
        prev = layer.out_shape
    reference = _read_reference(r, encoding, input_shape, layers) if r.has("reference") else None
    return ModelFile(precision=precision, input_shape=input_shape, encoding=encoding,
                     layers=layers, config_json=config_json, metrics_json=metrics_json,
                     reference=reference, version=version)


def _read_layer(r: _Reader, g: str, index: int, in_shape: tuple, precision: str) -> LayerSpec:
    r.keys(g, _LAYER_KEYS, {"name"})
    r.keys(f"{g}/neuron", _NEURON_KEYS[precision])
    type_name = r.text(f"{g}/type")
    if type_name not in LAYER_TYPES:
        raise r.fail(f"{g}/type", f"expected one of {sorted(LAYER_TYPES)}, found '{type_name}'")
    kind, synapse = LAYER_TYPES[type_name]
    name = r.attr(g, "name", "s") if "name" in r.node(g).attrs else f"layer{index}"
    shape = r.array(f"{g}/shape", "i", ndim=1)
    n_in = math.prod(in_shape)
    stride = padding = 0
    if kind == "dense":
        if shape.shape != (1,) or shape[0] < 1:
            raise r.fail(f"{g}/shape", f"expected [n_out >= 1], found {shape.tolist()}")
        n_out = int(shape[0])
        if n_out * n_in > MAX_ELEMENTS:
            raise r.fail(f"{g}/shape", f"{n_out}x{n_in} weights exceed the size limit")
        out_shape = (n_out, 1, 1)
        wshape = (n_out, n_in)
        stride, padding = 1, 0
    else:
        if shape.shape != (3,) or np.any(shape < 1):
            raise r.fail(f"{g}/shape", f"expected [C, H, W] >= 1, found {shape.tolist()}")
        kernel = _pair(r, f"{g}/kernel", 1, 64)
        stride = _pair(r, f"{g}/stride", 1, 64)
        padding = _pair(r, f"{g}/padding", 0, 64)
        if _pair(r, f"{g}/dilation", 1, 1) != 1:
            raise r.fail(f"{g}/dilation", "only dilation 1 is supported")
        if r.scalar(f"{g}/groups", "i", 1, 1) != 1:
            raise r.fail(f"{g}/groups", "only groups 1 is supported")
        c_in, h, w = in_shape
        oh, ow = conv_out_hw(h, w, kernel, stride, padding)
        if oh < 1 or ow < 1 or (int(shape[1]), int(shape[2])) != (oh, ow):
            raise r.fail(f"{g}/shape", f"expected [C, {oh}, {ow}] for input {list(in_shape)}, "
                         f"kernel {kernel}, stride {stride}, padding {padding}; "
                         f"found {shape.tolist()}")
        out_shape = (int(shape[0]), oh, ow)
        wshape = (int(shape[0]), c_in, kernel, kernel)
    if math.prod(wshape) > MAX_ELEMENTS:
        raise r.fail(f"{g}/weight", "too many weights")
    layer = LayerSpec(name=name, kind=kind, synapse=synapse, in_shape=tuple(in_shape),
                      out_shape=out_shape, weight=np.zeros(wshape), du=1.0, dv=0.0, vth=1.0,
                      stride=stride, padding=padding)
    if synapse == "isi":
        layer.phi_max = r.scalar(f"{g}/phi_max", "i", 1, MAX_PHI)
        layer.c0 = r.scalar(f"{g}/c0", "i", 1, layer.phi_max)
        layer.mu = r.array(f"{g}/mu", "f", shape=wshape)
        layer.sigma = r.array(f"{g}/sigma", "f", shape=wshape)
        if np.any(layer.sigma <= 0):
            raise r.fail(f"{g}/sigma", "values must be > 0")
    if precision == "float":
        ntype = r.text(f"{g}/neuron/type")
        if ntype != FLOAT_NEURON:
            raise r.fail(f"{g}/neuron/type", f"expected '{FLOAT_NEURON}' in a float file")
        layer.du = r.scalar(f"{g}/neuron/du", "f", 1e-12, 1.0)
        layer.dv = r.scalar(f"{g}/neuron/dv", "f", 0.0, 1.0)
        layer.vth = r.scalar(f"{g}/neuron/vth", "f", 1e-12, 1e12)
        layer.weight = r.array(f"{g}/weight", "f", shape=wshape)
        return layer
    ntype = r.text(f"{g}/neuron/type")
    if ntype != NETX_NEURON:
        raise r.fail(f"{g}/neuron/type", f"expected '{NETX_NEURON}' in a fixed-point file")
    du = r.scalar(f"{g}/neuron/iDecay", "i", fp.DU_OFFSET, fp.DECAY_MAX + fp.DU_OFFSET)
    du -= fp.DU_OFFSET
    dv = r.scalar(f"{g}/neuron/vDecay", "i", 0, fp.DECAY_MAX)
    vth = r.scalar(f"{g}/neuron/vThMant", "i", 1, fp.VTH_MAX)
    r.scalar(f"{g}/neuron/refDelay", "i", 1, 1)  # netx fields (imsnn's LIF ignores them)
    r.scalar(f"{g}/neuron/gradedSpike", "b", 0, 0)
    scale = r.scalar(f"{g}/scale", "i", 1, 1 << 30)
    k = layer.phi_max if synapse == "isi" else 1
    mant = r.array(f"{g}/table_mant", "i", shape=(k,) + wshape)
    if np.any(np.abs(mant) > fp.WEIGHT_MANT_MAX) or np.any(mant % fp.WEIGHT_MANT_STEP):
        raise r.fail(f"{g}/table_mant", f"mantissas must be even and within "
                     f"[-{fp.WEIGHT_MANT_MAX}, {fp.WEIGHT_MANT_MAX}]")
    exp = r.array(f"{g}/table_exp", "i", shape=(k,))
    if np.any(exp < fp.WEIGHT_EXP_MIN) or np.any(exp > fp.WEIGHT_EXP_MAX):
        raise r.fail(f"{g}/table_exp", f"exponents must be within "
                     f"[{fp.WEIGHT_EXP_MIN}, {fp.WEIGHT_EXP_MAX}]")
    table = fp.QuantizedTable(mant=mant.astype(np.int16), exp=exp.astype(np.int8))
    if synapse == "plain":
        weight_int = r.array(f"{g}/weight", "i", shape=wshape)
        if not np.array_equal(weight_int, table.weights_int()[0]):
            raise r.fail(f"{g}/weight", "does not equal table_mant << table_exp")
        layer.weight = weight_int.astype(np.float64) / scale
    else:
        layer.weight = r.array(f"{g}/weight", "f", shape=wshape)
    layer.fixed = FixedLayer(scale=scale, table=table, du=du, dv=dv, vth=vth)
    layer.du = fp.int_to_decay(du, fp.DU_OFFSET)
    layer.dv = fp.int_to_decay(dv, fp.DV_OFFSET)
    layer.vth = vth / scale
    return layer


def _pair(r: _Reader, name: str, lo: int, hi: int) -> int:
    data = r.array(name, "i")
    flat = data.reshape(-1)
    if flat.size not in (1, 2) or flat.min() != flat.max():
        raise r.fail(name, f"expected one value or an equal pair, found {data.tolist()}")
    value = int(flat[0])
    if not lo <= value <= hi:
        raise r.fail(name, f"{value} outside [{lo}, {hi}]")
    return value


def _read_reference(r: _Reader, enc: EncodingSpec, input_shape, layers) -> ReferenceData:
    r.keys("reference", _REFERENCE_KEYS)
    ids = r.array("reference/sample_ids", "i", ndim=1)
    n = ids.shape[0]
    labels = r.array("reference/labels", "i", shape=(n,))
    n_in = math.prod(input_shape)
    spikes = r.array("reference/spikes", "b", shape=(n, enc.num_steps, n_in))
    if np.any((spikes != 0) & (spikes != 1)):
        raise r.fail("reference/spikes", "values must be 0 or 1")
    counts = r.array("reference/layer_counts", "i", shape=(n, len(layers)))
    out = r.array("reference/output_counts", "i", shape=(n, layers[-1].n_out))
    if np.any(counts < 0) or np.any(out < 0):
        raise r.fail("reference", "counts must be >= 0")
    return ReferenceData(sample_ids=ids, labels=labels, spikes=spikes.astype(bool),
                         layer_counts=counts, output_counts=out)


def check(model: ModelFile, where: str = "model") -> None:
    """Consistency checks before writing (the same invariants `read` enforces)."""
    if model.precision not in PRECISIONS:
        raise ModelFileError(f"{where}: precision {model.precision!r} not in {PRECISIONS}")
    prev = tuple(model.input_shape)
    for layer in model.layers:
        if tuple(layer.in_shape) != prev:
            raise ModelFileError(f"{where}: layer {layer.name}: input shape {layer.in_shape} "
                                 f"does not match the previous output {prev}")
        if model.precision == "fixed" and layer.fixed is None:
            raise ModelFileError(f"{where}: layer {layer.name}: fixed-point data missing")
        prev = tuple(layer.out_shape)
