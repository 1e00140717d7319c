"""Per-event energy model: counted events x energy per event, from named, cited profiles.

A profile is a JSON file (built-in ones live in `imsnn_lava/analysis/profiles/`) with this schema:

    {"name": str, "citation": str, "omits": [str, ...],
     "energies_pj": {KEY: number >= 0, ...},      # KEY from ENERGY_KEYS below
     "title": str, "schema_version": 1, "source_notes": [str, ...],   # optional
     "reference_pj": {str: number, ...}}           # optional: published, not used by the model

An SNN is costed per inference (one sample) as, for every synapse layer l,

    E_l = synops_l * E[synop]
        + active_updates_l * E[neuron_update_active] + idle_updates_l * E[neuron_update_idle]
        + spikes_l * E[spike]  (+ lookups_l * E[isi_lookup] when the profile has it)

and an equivalent dense ANN as sum_l fan_in_l * neurons_l MACs x E[mac]. Everything a profile
leaves out (static power, routing across tiles and chips, host I/O, ...) is listed in its
"omits", which reports print next to the numbers. numpy-free, torch-free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from imsnn_lava.analysis.jsoncheck import is_number
from imsnn_lava.errors import ImsnnError

ENERGY_KEYS = {
    "synop": "one synaptic event: a presynaptic spike delivered to one synapse",
    "neuron_update_active": "one neuron updated in one step, active (integrating or spiking)",
    "neuron_update_idle": "one neuron updated in one step, inactive",
    "spike": "one spike emitted and delivered (within a tile on Loihi)",
    "isi_lookup": "one ISI table lookup of an IMSNN synapse layer",
    "mac": "one multiply-accumulate of an equivalent ANN",
}
SNN_KEYS = ("synop", "neuron_update_active", "neuron_update_idle", "spike")
ANN_KEYS = ("mac",)
BUILTIN_PACKAGE = "imsnn_lava.analysis.profiles"


@dataclass(frozen=True)
class Profile:
    name: str
    citation: str
    energies_pj: dict[str, float]
    omits: tuple[str, ...]
    source: str
    title: str = ""
    source_notes: tuple[str, ...] = ()
    reference_pj: dict[str, float] = field(default_factory=dict)

    @property
    def can_cost_snn(self) -> bool:
        return all(k in self.energies_pj for k in SNN_KEYS)

    @property
    def can_cost_ann(self) -> bool:
        return all(k in self.energies_pj for k in ANN_KEYS)

    def energy(self, key: str) -> float:
        try:
            return self.energies_pj[key]
        except KeyError:
            raise ImsnnError(
                f"{self.source}: field 'energies_pj.{key}' is missing ({ENERGY_KEYS.get(key, key)})"
            ) from None

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "citation": self.citation,
                "source": self.source, "energies_pj": dict(self.energies_pj),
                "reference_pj": dict(self.reference_pj), "omits": list(self.omits),
                "source_notes": list(self.source_notes)}


# ----------------------------------------------------------------------------- loading


def builtin_profiles() -> list[str]:
    """Names of the built-in profiles (file stems in imsnn_lava/analysis/profiles/)."""
    folder = resources.files(BUILTIN_PACKAGE)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def load_profile(name_or_path: str | Path) -> Profile:
    """A built-in profile by name ("loihi", "cmos45_ann"), or a JSON profile file by path."""
    text = str(name_or_path)
    if text in builtin_profiles():
        resource = resources.files(BUILTIN_PACKAGE) / f"{text}.json"
        return profile_from_dict(_parse_json(resource.read_text(encoding="utf-8"), text),
                                 source=f"built-in profile '{text}'")
    path = Path(text)
    if not path.is_file():
        raise ImsnnError(
            f"{text}: not a built-in energy profile ({', '.join(builtin_profiles())}) "
            "and no such file"
        )
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImsnnError(f"{path}: cannot read the energy profile ({exc})") from None
    return profile_from_dict(_parse_json(raw, str(path)), source=str(path))


def _parse_json(raw: str, source: str):
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImsnnError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def profile_from_dict(data, source: str = "<profile>") -> Profile:
    """Validate a profile's JSON object; errors name `source` and the field."""

    def fail(fld: str, msg: str):
        raise ImsnnError(f"{source}: field '{fld}' {msg}")

    if not isinstance(data, dict):
        raise ImsnnError(f"{source}: an energy profile must be a JSON object")
    for key in ("name", "citation"):
        if key not in data:
            fail(key, "is missing")
        if not isinstance(data[key], str) or not data[key].strip():
            fail(key, "must be a non-empty string")
    for key in ("title",):
        if key in data and not isinstance(data[key], str):
            fail(key, "must be a string")
    if "schema_version" in data and data["schema_version"] != 1:
        fail("schema_version", f"must be 1, got {data['schema_version']!r}")
    if "energies_pj" not in data:
        fail("energies_pj", "is missing")
    energies = data["energies_pj"]
    if not isinstance(energies, dict) or not energies:
        fail("energies_pj", "must be a non-empty object of energies in pJ")
    for key, value in energies.items():
        if key not in ENERGY_KEYS:
            fail(f"energies_pj.{key}", f"is not a known event (known: {', '.join(ENERGY_KEYS)})")
        if not is_number(value) or value < 0:
            fail(f"energies_pj.{key}", f"must be a finite number >= 0 (pJ), got {value!r}")
    has_snn = all(k in energies for k in SNN_KEYS)
    if any(k in energies for k in SNN_KEYS) and not has_snn:
        missing = [k for k in SNN_KEYS if k not in energies][0]
        fail(f"energies_pj.{missing}", f"is missing (an SNN profile needs all of {SNN_KEYS})")
    if not has_snn and "mac" not in energies:
        fail("energies_pj", f"must give either all of {SNN_KEYS} (SNN) or 'mac' (ANN)")
    reference = data.get("reference_pj", {})
    if not isinstance(reference, dict):
        fail("reference_pj", "must be an object")
    for key, value in reference.items():
        if not is_number(value):
            fail(f"reference_pj.{key}", f"must be a finite number, got {value!r}")
    for key in ("omits", "source_notes"):
        if key not in data:
            if key == "omits":
                fail(key, "is missing (list what the model leaves out)")
            continue
        items = data[key]
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            fail(key, "must be a list of strings")
    return Profile(
        name=data["name"], citation=data["citation"],
        energies_pj={k: float(v) for k, v in energies.items()},
        omits=tuple(data["omits"]), source=source, title=data.get("title", ""),
        source_notes=tuple(data.get("source_notes", ())),
        reference_pj={k: float(v) for k, v in reference.items()},
    )


# ----------------------------------------------------------------------------- arithmetic


def split_input(layers: list[dict]) -> tuple[dict | None, list[dict]]:
    """(input row or None, synapse layers). `imsnn evaluate` lists the input as a first layer
    named "input" without synaptic events; `imsnn simulate` gives it separately."""
    if layers and layers[0].get("name") == "input" and "synops_per_sample" not in layers[0]:
        return layers[0], list(layers[1:])
    return None, list(layers)


def _count(layer: dict, key: str) -> float | None:
    value = layer.get(key)
    if value is None:
        return None
    if not is_number(value) or value < 0:
        raise ImsnnError(f"layer '{layer.get('name')}': field '{key}' must be a number >= 0, "
                         f"got {value!r}")
    return float(value)


def _neuron_updates(layer: dict, num_steps: int | None, notes: list[str]) -> tuple[float, float]:
    """(active, idle) neuron updates per sample of one layer, and a note where it is inferred."""
    name = layer.get("name")
    active = _count(layer, "active_updates_per_sample")
    idle = _count(layer, "idle_updates_per_sample")
    total = _count(layer, "neuron_updates_per_sample")
    if active is not None and idle is not None:
        return active, idle
    if active is not None and total is not None:
        return active, max(total - active, 0.0)
    if idle is not None and total is not None:
        return max(total - idle, 0.0), idle
    if total is None:
        neurons = layer.get("neurons")
        if num_steps is None or not isinstance(neurons, int) or isinstance(neurons, bool):
            raise ImsnnError(f"layer '{name}': field 'neuron_updates_per_sample' is missing "
                             "(and neither 'neurons' nor the number of steps to derive it)")
        total = float(neurons * num_steps)
        notes.append("neuron updates not recorded: taken as neurons x steps")
    notes.append("no active/idle split of neuron updates: every update costed as inactive "
                 "(a lower bound on the neuron term)")
    return 0.0, total


def energy_per_inference(layers: list[dict], profile: Profile, *,
                         num_steps: int | None = None) -> dict:
    """Energy of one inference (one sample) of an SNN, per layer and in total, in pJ.

    `layers`: the "layers" list of a results JSON (a leading "input" row is skipped: its spikes
    are paid for as the synaptic events of the first layer). Each layer needs
    `synops_per_sample` and `spikes_per_sample`; neuron updates come from the active/idle split,
    else from `neuron_updates_per_sample` (all costed as idle), else neurons x `num_steps`.
    """
    e_syn, e_act = profile.energy("synop"), profile.energy("neuron_update_active")
    e_idle, e_spk = profile.energy("neuron_update_idle"), profile.energy("spike")
    e_lookup = profile.energies_pj.get("isi_lookup")
    notes: list[str] = []
    rows = []
    for layer in split_input(layers)[1]:
        name = layer.get("name")
        synops = _count(layer, "synops_per_sample")
        if synops is None:
            raise ImsnnError(f"layer '{name}': field 'synops_per_sample' is missing "
                             "(the energy model needs synaptic events)")
        spikes = _count(layer, "spikes_per_sample")
        if spikes is None:
            raise ImsnnError(f"layer '{name}': field 'spikes_per_sample' is missing")
        active, idle = _neuron_updates(layer, num_steps, notes)
        lookups = _count(layer, "lookups_per_sample")
        lookup_pj = 0.0
        if lookups:
            if e_lookup is None:
                notes.append(f"ISI lookups not costed: profile '{profile.name}' has no "
                             "'isi_lookup' energy")
            else:
                lookup_pj = lookups * e_lookup
        row = {"name": name, "synop_pj": synops * e_syn,
               "neuron_pj": active * e_act + idle * e_idle,
               "spike_pj": spikes * e_spk, "lookup_pj": lookup_pj}
        row["total_pj"] = row["synop_pj"] + row["neuron_pj"] + row["spike_pj"] + lookup_pj
        rows.append(row)
    return {"profile": profile.name, "layers": rows,
            "total_pj": float(sum(r["total_pj"] for r in rows)),
            "notes": list(dict.fromkeys(notes))}


def ann_energy(layers: list[dict], profile: Profile, *, input_neurons: int | None = None) -> dict:
    """Energy of one inference of the equivalent ANN: sum_l fan_in_l x neurons_l MACs x E[mac].

    `fan_in` (synapses per neuron) is read from each layer; where it is missing the layer is
    taken as dense on the previous layer (its `neurons`; `input_neurons`, or the "input" row,
    for the first layer), and a note says so.
    """
    e_mac = profile.energy("mac")
    inp, net = split_input(layers)
    if input_neurons is None and inp is not None:
        input_neurons = inp.get("neurons")
    notes: list[str] = []
    rows = []
    previous = input_neurons
    for layer in net:
        name = layer.get("name")
        neurons = layer.get("neurons")
        if not isinstance(neurons, int) or isinstance(neurons, bool) or neurons <= 0:
            raise ImsnnError(f"layer '{name}': field 'neurons' is missing or not a positive "
                             "integer (needed for the ANN comparison)")
        fan_in = layer.get("fan_in")
        if fan_in is None:
            if not isinstance(previous, int) or previous <= 0:
                raise ImsnnError(f"layer '{name}': field 'fan_in' is missing and the previous "
                                 "layer's size is unknown")
            fan_in = previous
            notes.append(f"fan_in of '{name}' not recorded: dense on the previous layer "
                         f"({previous})")
        elif not isinstance(fan_in, int) or isinstance(fan_in, bool) or fan_in <= 0:
            raise ImsnnError(f"layer '{name}': field 'fan_in' must be a positive integer")
        macs = float(fan_in * neurons)
        rows.append({"name": name, "macs": macs, "mac_pj": macs * e_mac, "total_pj": macs * e_mac})
        previous = neurons
    return {"profile": profile.name, "layers": rows,
            "macs": float(sum(r["macs"] for r in rows)),
            "total_pj": float(sum(r["total_pj"] for r in rows)), "notes": notes}


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None where either is unknown or b is 0 (shown as n/a)."""
    if a is None or b is None or not is_number(a) or not is_number(b) or b == 0:
        return None
    return float(a) / float(b)
