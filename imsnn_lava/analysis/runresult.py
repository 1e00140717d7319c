"""RunResult: the typed, versioned results JSON of one run, read and validated once; and the
JSON helpers around it (numpy-free)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from imsnn_lava import filekinds
from imsnn_lava.analysis.jsoncheck import Checker
from imsnn_lava.errors import ImsnnError

RESULT_FORMAT = "imsnn-result"
RESULT_VERSION = 2  # 1: the same fields without "format" and "version" (still read)
_LAYER_NUMBERS = ("spikes_per_sample_std", "spikes_per_neuron", "synops_per_sample",
                  "lookups_per_sample", "neuron_updates_per_sample", "active_updates_per_sample",
                  "idle_updates_per_sample")




class RunResult(Mapping):
    """The result of one run (`imsnn simulate --json`, `imsnn evaluate --json`, `imsnn merge`),
    read and validated once (`RunResult.read`), versioned (RESULT_VERSION), immutable. It reads
    as the JSON object it is (a Mapping), with typed accessors for what every consumer needs."""

    def __init__(self, data: dict, source: str = "<result>"):
        self._data = data
        self.source = source

    # Mapping
    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    @classmethod
    def read(cls, path: str | Path) -> RunResult:
        return load_result(path)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(self._data))

    @property
    def version(self) -> int:
        return int(self._data.get("version", 1))

    @property
    def name(self) -> str:
        return str(self._data.get("name") or Path(self.source).stem)

    @property
    def accuracy(self) -> float:
        return float(self._data["accuracy"])

    @property
    def layers(self) -> list[dict]:
        return list(self._data["layers"])

    @property
    def backend(self) -> str:
        return str(self._data.get("backend", "fused"))


def load_result(path: str | Path) -> RunResult:
    """Read and check one results JSON; errors (ImsnnError) name the file and the field."""
    path = str(path)
    try:
        with open(path, encoding="utf-8") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise ImsnnError(f"{path}: no such result file") from None
    except IsADirectoryError:
        raise ImsnnError(f"{path}: a folder, not a result file") from None
    except UnicodeDecodeError:
        filekinds.expect(path, filekinds.RESULT)  # a model file, a checkpoint, ...
        raise ImsnnError(f"{path}: cannot read the result file (not UTF-8 text)") from None
    except OSError as exc:
        raise ImsnnError(f"{path}: cannot read the result file ({exc})") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        filekinds.expect(path, filekinds.RESULT)  # a training config (TOML), ...
        raise ImsnnError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    filekinds.refuse_parsed(path, data, filekinds.RESULT)  # training metrics, a config
    c = Checker(path)
    if not isinstance(data, dict):
        raise ImsnnError(f"{path}: a result file must hold a JSON object")
    if "format" in data and data["format"] != RESULT_FORMAT:
        c.fail("format", f"expected '{RESULT_FORMAT}', found {data['format']!r}")
    c.integer(data, "version", "", lo=1)
    if int(data.get("version", 1)) > RESULT_VERSION:
        c.fail("version", f"{data['version']} is newer than this imsnn (reads up to "
               f"{RESULT_VERSION}); upgrade imsnn")
    c.number(data, "accuracy", "", required=True, lo=0.0, hi=1.0)
    for key in ("reference_accuracy", "agreement_counts", "agreement_predictions"):
        c.number(data, key, "", lo=0.0, hi=1.0)
    for key in ("wall_s", "ms_per_step"):
        c.number(data, key, "", lo=0.0)
    for key in ("num_samples", "num_steps"):
        c.integer(data, key, "", lo=0)
    for key in ("model", "name", "synapse", "dataset", "split", "precision"):
        c.string(data, key)
    if "fixed_point" in data and not isinstance(data["fixed_point"], bool):
        c.fail("fixed_point", "must be true or false")
    if "layers" not in data:
        c.fail("layers", "is missing")
    layers = data["layers"]
    if not isinstance(layers, list) or not layers:
        c.fail("layers", "must be a non-empty list of layer objects")
    for k, layer in enumerate(layers):
        where = f"layers[{k}]."
        if not isinstance(layer, dict):
            c.fail(f"layers[{k}]", "must be an object")
        if not c.string(layer, "name", where, required=True):
            c.fail(f"{where}name", "must not be empty")
        c.number(layer, "spikes_per_sample", where, required=True, lo=0.0)
        c.integer(layer, "neurons", where, lo=1)
        c.integer(layer, "fan_in", where, lo=1)
        for key in _LAYER_NUMBERS:
            c.number(layer, key, where, lo=0.0)
        c.int_list(layer, "isi_histogram", where)
        dist = layer.get("synops_per_sample_distribution")
        if dist is not None:
            if not isinstance(dist, dict):
                c.fail(f"{where}synops_per_sample_distribution", "must be an object")
            for key in dist:
                c.number(dist, key, f"{where}synops_per_sample_distribution.")
    inp = data.get("input")
    if inp is not None:
        if not isinstance(inp, dict):
            c.fail("input", "must be an object")
        c.integer(inp, "neurons", "input.", lo=1)
        c.number(inp, "spikes_per_sample", "input.", lo=0.0)
    raster = data.get("raster")
    if raster is not None:
        if not isinstance(raster, dict) or not isinstance(raster.get("layers"), list):
            c.fail("raster", "must be an object with a 'layers' list")
        for k, rl in enumerate(raster["layers"]):
            where = f"raster.layers[{k}]."
            if not isinstance(rl, dict):
                c.fail(f"raster.layers[{k}]", "must be an object")
            c.string(rl, "name", where, required=True)
            t = c.int_list(rl, "t", where)
            i = c.int_list(rl, "i", where)
            if t is None or i is None:
                c.fail(f"{where}{'t' if t is None else 'i'}", "is missing")
            if len(t) != len(i):
                c.fail(f"{where}i", f"must be as long as 't' ({len(i)} != {len(t)})")
            c.integer(rl, "neurons", where, lo=1)
    return RunResult(data, path)


def read_json_object(path: str | Path, what: str) -> dict:
    """One JSON object from a file; ImsnnError naming the file otherwise."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImsnnError(f"{path}: no such result file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        filekinds.expect(path, filekinds.RESULT)  # a model file, a checkpoint, ...
        raise ImsnnError(f"{path}: not a readable JSON result ({exc})") from None
    filekinds.refuse_parsed(path, data, filekinds.RESULT)
    if not isinstance(data, dict):
        raise ImsnnError(f"{path}: not {what}")
    return data


def dumps(obj, level: int = 0) -> str:
    """JSON with objects and nested lists indented, lists of plain values on one line (the
    per-sample arrays stay compact)."""
    pad, inner = "  " * level, "  " * (level + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {dumps(v, level + 1)}"
                 for k, v in sorted(obj.items())]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(obj, list) and any(isinstance(x, (dict, list)) for x in obj):
        return "[\n" + ",\n".join(f"{inner}{dumps(x, level + 1)}" for x in obj) + f"\n{pad}]"
    return json.dumps(obj)
