"""Sweep points: the cartesian product of `--grid KEY=V1,V2,...` lists over one base config.

A point is the base config plus its overrides; its name (the run name in every result) is the
config's name followed by the grid values, so points of several sweeps can share one folder.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass

from imsnn_train.errors import ConfigError

NAME_SEPARATOR = "__"  # between the base config's name and the point's values
SAFE_CHARS = re.compile(r"[^A-Za-z0-9._=+-]+")
MAX_NAME = 120  # longer names are cut and get a hash of the whole
HASH_CHARS = 8
JSON_NAME_CHARS = 40  # of a JSON value's safe form, before its hash


@dataclass(frozen=True)
class Point:
    name: str
    values: tuple[tuple[str, str], ...]  # (dotted key, value) of the grid, in grid order

    @property
    def overrides(self) -> tuple[str, ...]:
        return tuple(f"{k}={v}" for k, v in self.values)


def split_values(text: str) -> list[str]:
    """V1,V2,... split at top-level commas (a JSON list or table value keeps its commas)."""
    values, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(text[start:i])
            start = i + 1
    values.append(text[start:])
    return [v.strip() for v in values]


def parse_grid(items: list[str] | tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """[(key, values)] of `--grid KEY=V1,V2` items; an error names the item at fault."""
    grid: list[tuple[str, list[str]]] = []
    for item in items:
        key, eq, rest = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ConfigError(f"--grid {item!r}: expected KEY=V1,V2,... e.g. "
                              "train.activity_l1=0,1e-4,3e-4")
        values = split_values(rest)
        if any(v == "" for v in values):
            raise ConfigError(f"--grid {item!r}: an empty value; expected KEY=V1,V2,...")
        if len(set(values)) != len(values):
            raise ConfigError(f"--grid {item!r}: a value is listed twice")
        if key in (k for k, _ in grid):
            raise ConfigError(f"--grid {key}: given twice; list all its values in one --grid")
        grid.append((key, values))
    return grid


def _label(key: str, grid_keys: list[str]) -> str:
    """The last part of a dotted key, or the whole key where two grid keys share that part."""
    short = key.rsplit(".", 1)[-1]
    same = [k for k in grid_keys if k.rsplit(".", 1)[-1] == short]
    return key if len(same) > 1 else short


def _safe(text: str) -> str:
    clean = SAFE_CHARS.sub("-", text)
    if clean != text:  # a JSON value: keep names distinct though their safe forms may not be
        short = clean.strip("-")[:JSON_NAME_CHARS]
        clean = f"{short}-{hashlib.sha1(text.encode()).hexdigest()[:HASH_CHARS]}"
    return clean


def point_name(base: str, values: tuple[tuple[str, str], ...], grid_keys: list[str]) -> str:
    if not values:
        return base
    tail = "_".join(f"{_label(k, grid_keys)}={_safe(v)}" for k, v in values)
    name = f"{base}{NAME_SEPARATOR}{tail}"
    if len(name) > MAX_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:HASH_CHARS]
        name = f"{name[:MAX_NAME - HASH_CHARS - 1]}-{digest}"
    return name


def expand(base_name: str, grid: list[tuple[str, list[str]]]) -> list[Point]:
    """Every combination of the grid's values (the first key varies slowest)."""
    keys = [k for k, _ in grid]
    points = []
    for combo in itertools.product(*(values for _, values in grid)):
        values = tuple(zip(keys, combo))
        points.append(Point(point_name(base_name, values, keys), values))
    return points
