"""Resources of a deployed network against a target chip's limits (numpy-free).

Input: one row per layer (fused) or per stock population (lowered), each with neurons,
synapses (stored weights), synaptic memory in bits (weights + delays), axons in and out,
fan-in, fan-out, largest delay and weight bits. A target profile (JSON in
imsnn_lava/analysis/targets/, or a file) gives the limits, each cited or marked as an
assumption. The core estimate packs each row onto cores of its own by the per-core neuron
and synapse limits (no sharing of a core between rows: an upper bound on what a mapper needs).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources as pkg
from pathlib import Path

from imsnn_lava.analysis.jsoncheck import is_number
from imsnn_lava.errors import ImsnnError

BUILTIN_PACKAGE = "imsnn_lava.analysis.targets"
ROW_KEYS = ("neurons", "synapses", "synaptic_memory_bits", "axons_in", "axons_out", "fan_in",
            "fan_out", "max_delay", "weight_bits")
REQUIRED_LIMITS = ("neurons_per_core", "synapses_per_core", "cores_per_chip", "weight_bits",
                   "max_delay")


@dataclass(frozen=True)
class Target:
    name: str
    title: str
    citation: str
    limits: dict  # name -> {"value": number, "source": str}
    source: str

    def limit(self, key: str) -> float:
        return float(self.limits[key]["value"])


def load_target(name_or_path: str | Path) -> Target:
    """A built-in target by name (e.g. "loihi2") or a JSON file; ImsnnError names the field."""
    text = str(name_or_path)
    if not text.endswith(".json") and "/" not in text:
        try:
            raw = pkg.files(BUILTIN_PACKAGE).joinpath(f"{text}.json").read_text("utf-8")
        except FileNotFoundError:
            known = sorted(p.name[:-5] for p in pkg.files(BUILTIN_PACKAGE).iterdir()
                           if p.name.endswith(".json"))
            raise ImsnnError(f"target '{text}': no such built-in target (known: {known})"
                             ) from None
        source = f"built-in {text}"
    else:
        try:
            raw = Path(text).read_text("utf-8")
        except OSError as exc:
            raise ImsnnError(f"{text}: cannot read the target profile ({exc})") from None
        source = text
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImsnnError(f"{source}: not JSON ({exc.msg} at line {exc.lineno})") from None
    limits = data.get("limits") if isinstance(data, dict) else None
    if not isinstance(limits, dict):
        raise ImsnnError(f"{source}: field 'limits' must be an object")
    for key in REQUIRED_LIMITS:
        entry = limits.get(key)
        if not isinstance(entry, dict) or not is_number(entry.get("value")) \
                or entry["value"] <= 0 or not isinstance(entry.get("source"), str):
            raise ImsnnError(f"{source}: field 'limits.{key}' must be an object with a "
                             "positive 'value' and a 'source' (a citation or 'assumption: ...')")
    return Target(name=str(data.get("name", text)), title=str(data.get("title", "")),
                  citation=str(data.get("citation", "")), limits=limits, source=source)


def cores_of(row: dict, target: Target) -> int:
    """Cores one row needs on its own: by neurons and by synapses, whichever is more."""
    by_neurons = math.ceil(row["neurons"] / target.limit("neurons_per_core"))
    by_synapses = math.ceil(row["synapses"] / target.limit("synapses_per_core"))
    return max(1, by_neurons, by_synapses)


def check(rows: list[dict], target: Target, where: str) -> list[str]:
    """Hard-limit violations, each naming the row, the quantity and the limit (empty: fits)."""
    errors = []
    for row in rows:
        if row["weight_bits"] > target.limit("weight_bits"):
            errors.append(f"{where}: {row['name']}: weight bits {row['weight_bits']} exceed "
                          f"{target.name}'s {target.limit('weight_bits'):g}")
        if row["max_delay"] > target.limit("max_delay"):
            errors.append(f"{where}: {row['name']}: delay {row['max_delay']} exceeds "
                          f"{target.name}'s maximum of {target.limit('max_delay'):g} steps")
    cores = sum(cores_of(r, target) for r in rows)
    if cores > target.limit("cores_per_chip"):
        errors.append(f"{where}: needs {cores} cores, more than {target.name}'s "
                      f"{target.limit('cores_per_chip'):g} per chip")
    return errors


def table(rows: list[dict], target: Target, title: str) -> str:
    """The printed per-row table with a total line."""
    head = (f"{'part':<22}{'neurons':>9}{'synapses':>11}{'mem (kbit)':>12}{'ax in':>8}"
            f"{'ax out':>8}{'fan-in':>8}{'fan-out':>8}{'delay':>6}{'bits':>5}{'cores':>6}")
    lines = [title, head]
    for r in rows:
        lines.append(f"{r['name'][:21]:<22}{r['neurons']:>9,}{r['synapses']:>11,}"
                     f"{r['synaptic_memory_bits'] / 1e3:>12,.1f}{r['axons_in']:>8,}"
                     f"{r['axons_out']:>8,}{r['fan_in']:>8,}{r['fan_out']:>8,}"
                     f"{r['max_delay']:>6}{r['weight_bits']:>5}{cores_of(r, target):>6}")
    tot = {k: sum(r[k] for r in rows) for k in ("neurons", "synapses", "synaptic_memory_bits")}
    lines.append(f"{'total':<22}{tot['neurons']:>9,}{tot['synapses']:>11,}"
                 f"{tot['synaptic_memory_bits'] / 1e3:>12,.1f}{'':>46}"
                 f"{sum(cores_of(r, target) for r in rows):>6}")
    lines.append(f"target {target.name}: {target.title}; {target.citation}")
    for key, entry in target.limits.items():
        lines.append(f"  {key} = {entry['value']:,} ({entry['source']})")
    return "\n".join(lines)


def fused_rows(model) -> list[dict]:
    """Per layer of the fused network: what the chip would store for it (the ISI layers'
    per-bin tables in full). The fused ISI synapse itself is a CPU-only process."""
    from imsnn_lava.numerics.synapse import fan_out

    rows = []
    for layer in model.layers:
        k = layer.phi_max if layer.synapse == "isi" else 1
        stored = k * int(layer.weight.size)
        bits = int(layer.fixed.table.mant.dtype.itemsize * 8) if layer.fixed else 32
        bits = min(bits, 8) if layer.fixed else bits
        rows.append({"name": layer.name, "role": layer.type_name, "neurons": layer.n_out,
                     "synapses": stored, "synaptic_memory_bits": stored * bits,
                     "axons_in": layer.n_in, "axons_out": layer.n_out,
                     "fan_in": int(layer.weight[0].size), "fan_out": int(fan_out(layer).max()),
                     "max_delay": 0, "weight_bits": bits})
    return rows
