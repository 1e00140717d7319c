"""Read and validate a model file (HDF5 -> IR); the layout is in imsnn_lava.ir.nodes."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from imsnn_lava import filekinds
from imsnn_lava.errors import ModelFileError
from imsnn_lava.ir import consistency, digest
from imsnn_lava.ir import fixed_point as fp
from imsnn_lava.ir.h5safe import H5Reader, check_global_heaps
from imsnn_lava.ir.nodes import (
    FLOAT_NEURON,
    FORMAT_NAME,
    FORMAT_VERSION,
    LAYER_TYPES,
    MAX_ELEMENTS,
    MAX_LAYERS,
    MAX_PHI,
    MAX_STEPS,
    NETX_NEURON,
    PRECISIONS,
    EncodingSpec,
    FixedLayer,
    LayerSpec,
    ModelFile,
    ReferenceData,
    conv_out_hw,
)


def read(path: str | Path) -> ModelFile:
    """Read and validate a model file. Raises ModelFileError naming the file and field."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    filekinds.expect(path, filekinds.MODEL, ModelFileError)  # a checkpoint, a NIR graph, ...
    check_global_heaps(path)
    try:
        f = h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt HDF5
        raise ModelFileError(f"{path}: not a readable HDF5 model file ({exc})") from None
    with f:
        r = H5Reader(f, str(path))
        try:
            return _read(r)
        except ModelFileError as exc:
            if str(exc).startswith(str(path)):
                raise
            raise ModelFileError(f"{path}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - h5py/HDF5 errors on corrupt structure
            raise ModelFileError(f"{path}: field '{r.at}': unreadable "
                                 f"({type(exc).__name__}: {exc})") from None



log = logging.getLogger(__name__)

_TOP_KEYS = {"config", "metrics", "encoding", "layer", "reference", digest.DIGEST_FIELD}
_TOP_ATTRS = {"format", "version", "precision"}
_ENCODING_ATTRS = {"num_steps", "max_rate", "seed"}
_LAYER_KEYS = {"type", "shape", "weight", "neuron", "stride", "padding", "dilation", "groups",
               "kernel", "mu", "sigma", "phi_max", "c0", "scale", "table_mant", "table_exp"}
_NEURON_KEYS = {"float": {"type", "du", "dv", "vth"},
                "fixed": {"type", "iDecay", "vDecay", "vThMant", "refDelay", "gradedSpike"}}
_REFERENCE_KEYS = {"sample_ids", "labels", "spikes", "layer_counts", "output_counts"}


def _read(r: H5Reader) -> ModelFile:
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
    model = ModelFile(precision=precision, input_shape=input_shape, encoding=encoding,
                      layers=layers, config_json=config_json, metrics_json=metrics_json,
                      reference=reference, version=version)
    # every field is valid on its own: now the content digest, then the fixed-point tables
    # against the real values they were derived from
    if r.has(digest.DIGEST_FIELD):
        text = r.text(digest.DIGEST_FIELD)
        model = model.replace(digest=digest.check(model, text, r.path))
    else:
        log.warning("%s: warning: no content digest (written before imsnn stored one); "
                    "corruption of this file cannot be detected", r.path)
    consistency.check_layers(model, r.path)
    return model


def _read_layer(r: H5Reader, g: str, index: int, in_shape: tuple, precision: str) -> LayerSpec:
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
    fields = dict(name=name, kind=kind, synapse=synapse, in_shape=tuple(in_shape),
                  out_shape=out_shape, stride=stride, padding=padding)
    if synapse == "isi":
        phi_max = r.scalar(f"{g}/phi_max", "i", 1, MAX_PHI)
        fields.update(phi_max=phi_max, c0=r.scalar(f"{g}/c0", "i", 1, phi_max),
                      mu=r.array(f"{g}/mu", "f", shape=wshape),
                      sigma=r.array(f"{g}/sigma", "f", shape=wshape))
        if np.any(fields["sigma"] <= 0):
            raise r.fail(f"{g}/sigma", "values must be > 0")
    if precision == "float":
        ntype = r.text(f"{g}/neuron/type")
        if ntype != FLOAT_NEURON:
            raise r.fail(f"{g}/neuron/type", f"expected '{FLOAT_NEURON}' in a float file")
        return LayerSpec(**fields, du=r.scalar(f"{g}/neuron/du", "f", 1e-12, 1.0),
                         dv=r.scalar(f"{g}/neuron/dv", "f", 0.0, 1.0),
                         vth=r.scalar(f"{g}/neuron/vth", "f", 1e-12, 1e12),
                         weight=r.array(f"{g}/weight", "f", shape=wshape))
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
    k = fields.get("phi_max", 1)
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
        weight = weight_int.astype(np.float64) / scale
    else:
        weight = r.array(f"{g}/weight", "f", shape=wshape)
    return LayerSpec(**fields, weight=weight,
                     fixed=FixedLayer(scale=scale, table=table, du=du, dv=dv, vth=vth),
                     du=fp.int_to_decay(du, fp.DU_OFFSET), dv=fp.int_to_decay(dv, fp.DV_OFFSET),
                     vth=vth / scale)


def _pair(r: H5Reader, name: str, lo: int, hi: int) -> int:
    data = r.array(name, "i")
    flat = data.reshape(-1)
    if flat.size not in (1, 2) or flat.min() != flat.max():
        raise r.fail(name, f"expected one value or an equal pair, found {data.tolist()}")
    value = int(flat[0])
    if not lo <= value <= hi:
        raise r.fail(name, f"{value} outside [{lo}, {hi}]")
    return value


def _read_reference(r: H5Reader, enc: EncodingSpec, input_shape, layers) -> ReferenceData:
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


