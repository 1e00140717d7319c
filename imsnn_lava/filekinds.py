"""What a file is, by its content (never its name), and which command takes it.

Every command that reads a file asks `expect(path, KIND)` first: a file of another known kind
is refused with one line naming what it is and the command that takes it, e.g.
"model.h5 is an imsnn model file; use imsnn simulate or imsnn verify". A file of no known kind
passes, and the command's own reader reports what is wrong with it. Torch-free: a checkpoint is
recognised by its container (a zip with a data.pkl, or a pickle), never unpickled; HDF5 files
are opened with h5py only after ir.h5safe's pre-checks.
"""

from __future__ import annotations

import json
from pathlib import Path

from imsnn_lava.errors import ImsnnError

CHECKPOINT, MODEL, NIR, RESULT, METRICS, CONFIG = (
    "checkpoint", "model", "nir", "result", "metrics", "config")

# kind -> (what it is, which command takes it)
KINDS = {
    CHECKPOINT: ("an imsnn training checkpoint (imsnn train)",
                 "use imsnn evaluate or imsnn export"),
    MODEL: ("an imsnn model file", "use imsnn simulate or imsnn verify"),
    NIR: ("a NIR graph", "use imsnn import to turn it into a model file"),
    RESULT: ("an imsnn results JSON (imsnn simulate/evaluate -o)",
             "use imsnn report (or imsnn merge for the shards of one run)"),
    METRICS: ("the training metrics of an imsnn train run (metrics.json)",
              "no command reads it: evaluate the run's checkpoint.pt with imsnn evaluate -o, "
              "then imsnn report"),
    CONFIG: ("an imsnn training config", "use imsnn train --config"),
}

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
HDF5_USERBLOCK_OFFSETS = (0, 512, 1024, 2048)  # where HDF5 may place its superblock
ZIP_SIGNATURE = b"PK\x03\x04"
PICKLE_PROTOCOLS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
SNIFF_BYTES = 4096
MAX_JSON_SNIFF = 64 << 20  # results of a 10k-sample run are a few MB; larger: not sniffed
RESULT_FORMAT = "imsnn-result"


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(SNIFF_BYTES)
    except OSError:
        return b""


def _is_hdf5(head: bytes) -> bool:
    return any(head[o:o + len(HDF5_SIGNATURE)] == HDF5_SIGNATURE for o in HDF5_USERBLOCK_OFFSETS)


def _hdf5_kind(path: Path) -> str | None:
    try:
        import h5py

        from imsnn_lava.ir.h5safe import check_global_heaps

        check_global_heaps(path)
        with h5py.File(path, "r") as f:
            keys = set(f.keys())  # member names only: no attribute or data is converted
    except Exception:  # noqa: BLE001 - a damaged file: the command's reader says what is wrong
        return None
    if "node" in keys and "version" in keys:
        return NIR
    if "layer" in keys:
        return MODEL
    return None


def json_kind(data) -> str | None:
    """The kind of an already parsed JSON value."""
    if not isinstance(data, dict):
        return None
    if data.get("format") == RESULT_FORMAT or ("accuracy" in data and "layers" in data):
        return RESULT
    if "history" in data and "config" in data:
        return METRICS
    if "model" in data and "train" in data and isinstance(data.get("model"), dict):
        return CONFIG
    return None


def _text_kind(path: Path, head: bytes) -> str | None:
    stripped = head.lstrip()
    if stripped.startswith(b"{"):
        try:
            if path.stat().st_size > MAX_JSON_SNIFF:
                return None
            return json_kind(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, ValueError):
            return None
    try:
        import tomli

        data = tomli.loads(path.read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - not TOML (or no tomli): unknown
        return None
    return CONFIG if isinstance(data.get("model"), dict) or isinstance(
        data.get("train"), dict) else None


def sniff(path: str | Path) -> str | None:
    """The kind of the file at `path` (one of KINDS), or None if it is none of them (or cannot
    be read: the command's reader then says why)."""
    path = Path(path)
    if not path.is_file():
        return None
    head = _head(path)
    if not head:
        return None
    if _is_hdf5(head):
        return _hdf5_kind(path)
    if head.startswith(ZIP_SIGNATURE):
        return CHECKPOINT if b"data.pkl" in head or b"archive/" in head else None
    if head[:2] in PICKLE_PROTOCOLS:
        return CHECKPOINT
    return _text_kind(path, head)


def describe(path: str | Path, kind: str) -> str:
    what, use = KINDS[kind]
    return f"{path} is {what}; {use}"


def expect(path: str | Path, kind: str, error: type[ImsnnError] = ImsnnError) -> None:
    """Raise `error` with one line if the file is of a known kind other than `kind`."""
    found = sniff(path)
    if found is not None and found != kind:
        raise error(describe(path, found))


def refuse_parsed(path: str | Path, data, kind: str,
                  error: type[ImsnnError] = ImsnnError) -> None:
    """`expect` for JSON a command has parsed already."""
    found = json_kind(data)
    if found is not None and found != kind:
        raise error(describe(path, found))
