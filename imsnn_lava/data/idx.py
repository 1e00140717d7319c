"""Read and write IDX files (the MNIST file format), plain or gzip-compressed.

An IDX file is a 4-byte magic number ``0x00 0x00 <dtype> <ndim>``, then ``ndim`` big-endian
uint32 dimensions, then the data in C order. Only dtype 0x08 (unsigned byte) is supported,
which is what MNIST and FashionMNIST use: images have magic 0x00000803 (N x 28 x 28) and
labels 0x00000801 (N). Every problem raises :class:`DataError` naming the file.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from imsnn_lava.errors import DataError
from imsnn_lava.outputs import atomic_file

__all__ = ["IMAGES_MAGIC", "LABELS_MAGIC", "UBYTE", "read_idx", "read_raw", "write_idx"]

UBYTE = 0x08
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_KIND_MAGIC = {"images": IMAGES_MAGIC, "labels": LABELS_MAGIC}
#: Most bytes a .gz file may decompress to (a gzip bomb is refused, not held in memory).
#: MNIST's largest file is 47 MB.
MAX_GZIP_BYTES = 1 << 30


def _is_gz(path: Path) -> bool:
    return path.name.endswith(".gz")


def read_raw(path: str | os.PathLike) -> bytes:
    """The uncompressed bytes of ``path`` (gunzipped if the name ends in ``.gz``, at most
    :data:`MAX_GZIP_BYTES`)."""
    path = Path(path)
    try:
        if _is_gz(path):
            chunks, total = [], 0
            with gzip.open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    total += len(chunk)
                    if total > MAX_GZIP_BYTES:
                        raise DataError(f"{path}: decompresses to more than {MAX_GZIP_BYTES} "
                                        "bytes (refused)")
                    chunks.append(chunk)
            return b"".join(chunks)
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt gzip data ({exc or 'truncated'})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_idx(path: str | os.PathLike, kind: str | None = None) -> np.ndarray:
    """Read an unsigned-byte IDX file into a writable uint8 array of its dimensions.

    ``kind`` (``"images"`` or ``"labels"``) additionally requires that kind's magic number
    (0x00000803 or 0x00000801). Raises DataError naming the file when it is missing, its
    header or data is truncated (or has trailing bytes), the magic or dtype byte is wrong,
    or the dimensions do not match the data length.
    """
    if kind is not None and kind not in _KIND_MAGIC:
        raise ValueError(f"kind must be 'images', 'labels' or None, not {kind!r}")
    path = Path(path)
    raw = read_raw(path)
    if len(raw) < 4:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes, need at least 4)")
    zero0, zero1, dtype, ndim = raw[0], raw[1], raw[2], raw[3]
    magic = int.from_bytes(raw[:4], "big")
    if zero0 != 0 or zero1 != 0:
        raise DataError(f"{path}: not an IDX file (magic 0x{magic:08x})")
    if dtype != UBYTE:
        raise DataError(
            f"{path}: unsupported IDX dtype byte 0x{dtype:02x} (magic 0x{magic:08x}); "
            f"expected 0x{UBYTE:02x} (unsigned byte)"
        )
    if kind is not None and magic != _KIND_MAGIC[kind]:
        raise DataError(
            f"{path}: wrong magic 0x{magic:08x} for {kind}; expected 0x{_KIND_MAGIC[kind]:08x}"
        )
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(
            f"{path}: truncated IDX header ({len(raw)} bytes, need {header_len} for {ndim} dims)"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header_len])
    expected = math.prod(dims)  # Python ints: no overflow on absurd dims
    actual = len(raw) - header_len
    if actual < expected:
        raise DataError(
            f"{path}: truncated IDX data ({actual} bytes after the header, dims {dims} "
            f"need {expected})"
        )
    if actual > expected:
        raise DataError(
            f"{path}: IDX dims {dims} describe {expected} bytes but the file has {actual} "
            "bytes of data"
        )
    buf = bytearray(raw)  # writable backing store without a second copy of the data
    del raw
    return np.frombuffer(buf, dtype=np.uint8, offset=header_len).reshape(dims)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` (uint8, 1-255 dims) as an IDX file; gzip it if the name ends in ``.gz``.

    Atomic: the bytes go to a temp file in the same folder, then os.replace, so ``path`` is
    either the old file or the complete new one."""
    path = Path(path)
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"write_idx supports uint8 arrays only, not {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx needs 1..255 dims, not {array.ndim}")
    header = bytes([0, 0, UBYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array).tobytes()
    with atomic_file(path) as f:
        if _is_gz(path):
            with gzip.GzipFile(filename=path.name, mode="wb", fileobj=f) as gz:
                gz.write(payload)
        else:
            f.write(payload)
    return path
