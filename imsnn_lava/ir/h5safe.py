"""Typed, defensive access to one HDF5 file: every failure names the file and the field.

Nothing is unpickled; sizes are checked on the declared shapes before any data is read;
unknown members and attributes, and soft or external links, are refused; HDF5 type classes
are checked before h5py converts them; a global heap that would hang the HDF5 library is
refused before h5py opens the file. Anything h5py raises becomes ModelFileError.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from imsnn_lava.errors import ModelFileError
from imsnn_lava.ir.nodes import MAX_ELEMENTS


class H5Reader:
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
            found = H5_CLASS_NAMES.get(cls[0] if isinstance(cls, tuple) else cls, str(cls))
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
H5_CLASS_NAMES = {0: "integer", 1: "float", 2: "time", 3: "string", 4: "bitfield",
                   5: "opaque", 6: "compound", 7: "reference", 8: "enum",
                   9: "variable-length sequence", 10: "array"}



def check_global_heaps(path: Path) -> None:
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


