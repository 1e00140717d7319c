"""The model file's content digest: sha256 over every field, in a canonical order
(numpy + hashlib only).

Every field of the file (attributes, text, arrays; the layout is in imsnn_lava.ir.nodes) has
its own digest, sha256 over

    field name, 0, kind ("i" integer, "f" real, "b" boolean, "s" text), 0, shape, 0, data

where integers are hashed as little-endian int64, reals as little-endian float64, booleans as
uint8 and text as its UTF-8 bytes, whatever the HDF5 storage type, chunking or compression.
The total is sha256 over the lines "NAME DIGEST\\n" of all fields in canonical order (the
order the writer writes them). The file keeps both in `/digest`, a JSON text:

    {"algorithm": "sha256", "total": HEX, "fields": [[NAME, HEX], ...]}

The digests are computed from the IR, field by field as the file stores it, so the writer
(from the model it writes) and the reader (from the model it read and validated) hash the
same values; a difference names the first field that differs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import numpy as np

from imsnn_lava.errors import ModelFileError
from imsnn_lava.ir import fixed_point as fp
from imsnn_lava.ir.nodes import FLOAT_NEURON, FORMAT_NAME, NETX_NEURON, ModelFile

ALGORITHM = "sha256"
DIGEST_FIELD = "digest"  # the file's member that holds the digests
HEX_LENGTH = 64
MAX_DIGEST_TEXT = 1 << 20  # a digest record larger than this is refused unparsed
_DTYPES = {"i": np.dtype("<i8"), "f": np.dtype("<f8"), "b": np.dtype("u1")}


def field_digest(name: str, kind: str, value) -> str:
    """sha256 of one field (see the module docstring)."""
    h = hashlib.sha256()
    if kind == "s":
        data, shape = str(value).encode("utf-8"), ()
    else:
        arr = np.ascontiguousarray(np.asarray(value).astype(_DTYPES[kind]))
        data, shape = arr.tobytes(), arr.shape
    for part in (name.encode("utf-8"), kind.encode("ascii"),
                 ",".join(map(str, shape)).encode("ascii")):
        h.update(part)
        h.update(b"\0")
    h.update(data)
    return h.hexdigest()


def total_digest(fields: list[tuple[str, str]]) -> str:
    """sha256 over the lines 'NAME DIGEST' of every field, in order."""
    h = hashlib.sha256()
    for name, hexdigest in fields:
        h.update(f"{name} {hexdigest}\n".encode())
    return h.hexdigest()


def model_fields(m: ModelFile) -> Iterator[tuple[str, str, object]]:
    """(field name, kind, value) of every field the file holds, in canonical order: the
    values exactly as `imsnn_lava.ir.writer` stores them (names as the reader's errors)."""
    yield "@format", "s", FORMAT_NAME
    yield "@version", "i", m.version
    yield "@precision", "s", m.precision
    yield "config", "s", m.config_json
    yield "metrics", "s", m.metrics_json
    yield "encoding@num_steps", "i", m.encoding.num_steps
    yield "encoding@max_rate", "f", m.encoding.max_rate
    yield "encoding@seed", "i", m.encoding.seed
    yield "layer/0/type", "s", "input"
    yield "layer/0/shape", "i", m.input_shape
    for i, layer in enumerate(m.layers, start=1):
        g = f"layer/{i}"
        yield f"{g}/type", "s", layer.type_name
        yield f"{g}/shape", "i", ((layer.n_out,) if layer.kind == "dense" else layer.out_shape)
        yield f"{g}@name", "s", layer.name
        if layer.kind == "conv":
            k = layer.weight.shape[-1]
            yield f"{g}/stride", "i", [layer.stride] * 2
            yield f"{g}/padding", "i", [layer.padding] * 2
            yield f"{g}/dilation", "i", [1, 1]
            yield f"{g}/groups", "i", 1
            yield f"{g}/kernel", "i", [k, k]
        if m.precision == "fixed":
            fx = layer.fixed
            yield f"{g}/neuron/type", "s", NETX_NEURON
            yield f"{g}/neuron/iDecay", "i", fx.du + fp.DU_OFFSET
            yield f"{g}/neuron/vDecay", "i", fx.dv
            yield f"{g}/neuron/vThMant", "i", fx.vth
            yield f"{g}/neuron/refDelay", "i", 1
            yield f"{g}/neuron/gradedSpike", "b", False
            yield f"{g}/scale", "i", fx.scale
            yield f"{g}/table_mant", "i", fx.table.mant
            yield f"{g}/table_exp", "i", fx.table.exp
            if layer.synapse == "plain":
                yield f"{g}/weight", "i", fx.table.weights_int()[0]
            else:
                yield f"{g}/weight", "f", layer.weight
        else:
            yield f"{g}/neuron/type", "s", FLOAT_NEURON
            for key in ("du", "dv", "vth"):
                yield f"{g}/neuron/{key}", "f", getattr(layer, key)
            yield f"{g}/weight", "f", layer.weight
        if layer.synapse == "isi":
            yield f"{g}/mu", "f", layer.mu
            yield f"{g}/sigma", "f", layer.sigma
            yield f"{g}/phi_max", "i", layer.phi_max
            yield f"{g}/c0", "i", layer.c0
    ref = m.reference
    if ref is not None:
        yield "reference/sample_ids", "i", ref.sample_ids
        yield "reference/labels", "i", ref.labels
        yield "reference/spikes", "b", ref.spikes
        yield "reference/layer_counts", "i", ref.layer_counts
        yield "reference/output_counts", "i", ref.output_counts


def compute(m: ModelFile) -> tuple[str, list[tuple[str, str]]]:
    """(total digest, [(field name, field digest), ...]) of a model."""
    fields = [(name, field_digest(name, kind, value)) for name, kind, value in model_fields(m)]
    return total_digest(fields), fields


def encode(m: ModelFile) -> str:
    """The `/digest` text the writer stores."""
    total, fields = compute(m)
    return json.dumps({"algorithm": ALGORITHM, "total": total, "fields": fields},
                      separators=(",", ":"))


def decode(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Parse and validate a `/digest` text; ValueError says what is wrong."""
    if len(text) > MAX_DIGEST_TEXT:
        raise ValueError(f"longer than {MAX_DIGEST_TEXT} characters")
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError("not valid JSON") from None
    if not isinstance(record, dict) or set(record) != {"algorithm", "total", "fields"}:
        raise ValueError("expected an object with algorithm, total and fields")
    if record["algorithm"] != ALGORITHM:
        raise ValueError(f"algorithm {record['algorithm']!r} is not {ALGORITHM!r}")
    fields = record["fields"]
    if not isinstance(fields, list) or not all(
            isinstance(f, list) and len(f) == 2 and isinstance(f[0], str) and _is_hex(f[1])
            for f in fields):
        raise ValueError("fields: expected a list of [name, sha256 hex] pairs")
    if not _is_hex(record["total"]):
        raise ValueError("total: expected a sha256 hex digest")
    return record["total"], [(name, hexdigest) for name, hexdigest in fields]


def _is_hex(value) -> bool:
    return (isinstance(value, str) and len(value) == HEX_LENGTH
            and all(c in "0123456789abcdef" for c in value))


def check(m: ModelFile, text: str, where: str) -> str:
    """Compare a model read from a file with the digest record the file holds. Returns the
    total digest; raises ModelFileError naming `where` and the first field that differs."""
    try:
        stored_total, stored = decode(text)
    except ValueError as exc:
        raise ModelFileError(f"{where}: field '{DIGEST_FIELD}': {exc}") from None
    total, fields = compute(m)
    stored_map = dict(stored)
    for name, hexdigest in fields:
        if name not in stored_map:
            raise ModelFileError(f"{where}: field '{name}': has no digest in "
                                 f"'{DIGEST_FIELD}' (the file was changed after it was written)")
        if stored_map[name] != hexdigest:
            raise ModelFileError(f"{where}: field '{name}': content digest mismatch (sha256 "
                                 f"{hexdigest[:12]}... != stored {stored_map[name][:12]}...): "
                                 "the file is corrupt or was changed after it was written")
    extra = [name for name, _ in stored if name not in {n for n, _ in fields}]
    if extra or len(stored) != len(fields):
        what = f"'{extra[0]}'" if extra else "a field twice"
        raise ModelFileError(f"{where}: field '{DIGEST_FIELD}': lists {what}, which the file "
                             "does not hold")
    if stored_total != total or stored_total != total_digest(stored):
        raise ModelFileError(f"{where}: field '{DIGEST_FIELD}': total digest mismatch "
                             f"(sha256 {total[:12]}... != stored {stored_total[:12]}...)")
    return total


def short(hexdigest: str | None) -> str:
    """How commands print a digest."""
    return f"{ALGORITHM}:{hexdigest}" if hexdigest else "none (written without a digest)"

