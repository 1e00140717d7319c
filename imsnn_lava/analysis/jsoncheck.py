"""Checking JSON read from files: one checker whose errors name the file and the field."""

from __future__ import annotations

import math

from imsnn_lava.errors import ImsnnError


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)



def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)



class Checker:
    """Field checks whose errors name the file and the field."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, fld: str, msg: str):
        raise ImsnnError(f"{self.path}: field '{fld}' {msg}")

    def _value(self, obj: dict, key: str, where: str, required: bool, ok, kind: str,
               lo=None, hi=None):
        fld = f"{where}{key}"
        if key not in obj or obj[key] is None:
            if required:
                self.fail(fld, "is missing")
            return None
        v = obj[key]
        if not ok(v):
            self.fail(fld, f"must be {kind}, got {v!r}")
        if lo is not None and v < lo:
            self.fail(fld, f"must be >= {lo}, got {v!r}")
        if hi is not None and v > hi:
            self.fail(fld, f"must be <= {hi}, got {v!r}")
        return v

    def number(self, obj: dict, key: str, where: str, *, required=False, lo=None, hi=None):
        v = self._value(obj, key, where, required, is_number, "a number", lo, hi)
        return None if v is None else float(v)

    def integer(self, obj: dict, key: str, where: str, *, required=False, lo=None):
        return self._value(obj, key, where, required, is_int, "an integer", lo)

    def string(self, obj: dict, key: str, where: str = "", *, required=False):
        if key not in obj or obj[key] is None:
            if required:
                self.fail(f"{where}{key}", "is missing")
            return None
        if not isinstance(obj[key], str):
            self.fail(f"{where}{key}", f"must be a string, got {obj[key]!r}")
        return obj[key]

    def int_list(self, obj: dict, key: str, where: str, *, lo=0):
        v = obj.get(key)
        if v is None:
            return None
        if not isinstance(v, list) or not all(is_int(x) and x >= lo for x in v):
            self.fail(f"{where}{key}", f"must be a list of integers >= {lo}")
        return v


