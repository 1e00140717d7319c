"""Per-event energy model: profiles, arithmetic on hand-computed cases, profile validation."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from imsnn_lava.analysis import energy as en
from imsnn_lava.errors import ImsnnError

LOIHI = {"synop": 23.6, "neuron_update_active": 81.0, "neuron_update_idle": 52.0, "spike": 1.7}


def _profile(**energies) -> en.Profile:
    data = {"name": "test", "citation": "hand-made", "omits": ["everything else"],
            "energies_pj": energies or dict(LOIHI)}
    return en.profile_from_dict(data, source="test.json")


# ----------------------------------------------------------------------------- built-ins


def test_builtin_profiles_are_listed_and_load():
    assert {"loihi", "cmos45_ann"} <= set(en.builtin_profiles())
    for name in en.builtin_profiles():
        prof = en.load_profile(name)
        assert prof.name == name
        assert prof.citation and prof.omits


def test_loihi_profile_numbers_and_citation():
    prof = en.load_profile("loihi")
    assert prof.energies_pj == LOIHI
    assert prof.can_cost_snn and not prof.can_cost_ann
    assert "Davies" in prof.citation and "IEEE Micro" in prof.citation
    assert "Table 2" in prof.citation
    assert prof.reference_pj["tile_hop_east_west"] == 3.0
    assert prof.reference_pj["tile_hop_north_south"] == 4.0
    omitted = " ".join(prof.omits)
    for word in ("static", "routing", "host I/O", "learning"):
        assert word in omitted


def test_cmos45_profile_mac_is_add_plus_mult():
    prof = en.load_profile("cmos45_ann")
    assert "Horowitz" in prof.citation and "ISSCC" in prof.citation
    assert "2014" in prof.citation
    ref = prof.reference_pj
    assert prof.energies_pj["mac"] == pytest.approx(ref["fp32_add"] + ref["fp32_mult"])
    assert prof.energies_pj["mac"] == pytest.approx(4.6)
    assert prof.energies_pj["synop"] == pytest.approx(0.9)  # one accumulate per event
    assert prof.can_cost_ann and prof.can_cost_snn


# ----------------------------------------------------------------------------- arithmetic


def test_energy_two_layers_hand_computed():
    layers = [
        {"name": "l1", "neurons": 4, "spikes_per_sample": 10, "synops_per_sample": 1000,
         "active_updates_per_sample": 30, "idle_updates_per_sample": 70},
        {"name": "l2", "neurons": 2, "spikes_per_sample": 2, "synops_per_sample": 100,
         "neuron_updates_per_sample": 50},
    ]
    out = en.energy_per_inference(layers, _profile())
    l1, l2 = out["layers"]
    assert l1["synop_pj"] == pytest.approx(1000 * 23.6)
    assert l1["neuron_pj"] == pytest.approx(30 * 81 + 70 * 52)
    assert l1["spike_pj"] == pytest.approx(10 * 1.7)
    assert l1["total_pj"] == pytest.approx(23600 + 6070 + 17)
    # no active/idle split: every update at the idle energy, and a note says so
    assert l2["neuron_pj"] == pytest.approx(50 * 52)
    assert l2["total_pj"] == pytest.approx(2360 + 2600 + 3.4)
    assert out["total_pj"] == pytest.approx(29687 + 4963.4)
    assert any("inactive" in n for n in out["notes"])
    assert [r["name"] for r in out["layers"]] == ["l1", "l2"]


def test_energy_skips_leading_input_row_and_derives_updates():
    layers = [
        {"name": "input", "neurons": 8, "spikes_per_sample": 99.0},
        {"name": "out", "neurons": 4, "spikes_per_sample": 3, "synops_per_sample": 10},
    ]
    out = en.energy_per_inference(layers, _profile(), num_steps=5)
    (row,) = out["layers"]
    assert row["name"] == "out"
    assert row["neuron_pj"] == pytest.approx(4 * 5 * 52)
    assert out["total_pj"] == pytest.approx(10 * 23.6 + 20 * 52 + 3 * 1.7)
    assert any("neurons x steps" in n for n in out["notes"])


def test_energy_active_with_total_gives_idle_as_the_rest():
    layers = [{"name": "l", "spikes_per_sample": 0, "synops_per_sample": 0,
               "neuron_updates_per_sample": 100, "active_updates_per_sample": 25}]
    out = en.energy_per_inference(layers, _profile())
    assert out["total_pj"] == pytest.approx(25 * 81 + 75 * 52)
    assert out["notes"] == []


def test_energy_isi_lookups_costed_only_when_profile_has_them():
    layers = [{"name": "l", "spikes_per_sample": 1, "synops_per_sample": 2,
               "active_updates_per_sample": 0, "idle_updates_per_sample": 0,
               "lookups_per_sample": 7}]
    plain = en.energy_per_inference(layers, _profile())
    assert plain["layers"][0]["lookup_pj"] == 0.0
    assert any("isi_lookup" in n for n in plain["notes"])
    costed = en.energy_per_inference(layers, _profile(**LOIHI, isi_lookup=0.5))
    assert costed["layers"][0]["lookup_pj"] == pytest.approx(3.5)
    assert costed["total_pj"] == pytest.approx(2 * 23.6 + 1.7 + 3.5)


def test_energy_missing_counts_are_errors_naming_layer_and_field():
    with pytest.raises(ImsnnError, match=r"layer 'l'.*synops_per_sample"):
        en.energy_per_inference([{"name": "l", "spikes_per_sample": 1}], _profile())
    with pytest.raises(ImsnnError, match=r"neuron_updates_per_sample"):
        en.energy_per_inference([{"name": "l", "spikes_per_sample": 1,
                                  "synops_per_sample": 1}], _profile())
    with pytest.raises(ImsnnError, match=r"'synops_per_sample' must be a number"):
        en.energy_per_inference([{"name": "l", "spikes_per_sample": 1,
                                  "synops_per_sample": -1}], _profile())


def test_snn_on_cmos_is_one_accumulate_per_synop():
    prof = en.load_profile("cmos45_ann")
    layers = [{"name": "a", "spikes_per_sample": 5, "synops_per_sample": 1000,
               "neuron_updates_per_sample": 10},
              {"name": "b", "spikes_per_sample": 1, "synops_per_sample": 50,
               "neuron_updates_per_sample": 10}]
    assert en.energy_per_inference(layers, prof)["total_pj"] == pytest.approx(1050 * 0.9)


def test_ann_energy_hand_computed():
    prof = en.load_profile("cmos45_ann")
    layers = [{"name": "l1", "neurons": 200, "fan_in": 784, "spikes_per_sample": 1},
              {"name": "out", "neurons": 10, "spikes_per_sample": 1}]  # fan_in derived
    out = en.ann_energy(layers, prof)
    assert out["layers"][0]["macs"] == 784 * 200
    assert out["layers"][1]["macs"] == 200 * 10
    assert out["macs"] == 158800
    assert out["total_pj"] == pytest.approx(158800 * 4.6)
    assert any("dense" in n for n in out["notes"])
    # the first layer's fan-in from the input size
    first = en.ann_energy([{"name": "l1", "neurons": 3, "spikes_per_sample": 0}], prof,
                          input_neurons=5)
    assert first["macs"] == 15
    with pytest.raises(ImsnnError, match="fan_in"):
        en.ann_energy([{"name": "l1", "neurons": 3, "spikes_per_sample": 0}], prof)
    with pytest.raises(ImsnnError, match="mac"):
        en.ann_energy(layers, _profile())  # an SNN-only profile


def test_ratio():
    assert en.ratio(1.0, 4.0) == 0.25
    assert en.ratio(3, 3) == 1.0
    assert en.ratio(None, 1.0) is None
    assert en.ratio(1.0, None) is None
    assert en.ratio(1.0, 0.0) is None
    assert en.ratio(float("nan"), 1.0) is None


# ----------------------------------------------------------------------------- profiles


def test_custom_profile_file(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({
        "name": "mine", "citation": "my lab notebook, p. 3", "omits": ["leakage"],
        "energies_pj": {"synop": 1.0, "neuron_update_active": 2.0,
                        "neuron_update_idle": 0.5, "spike": 10.0, "mac": 3.0},
    }))
    prof = en.load_profile(str(path))
    assert prof.name == "mine" and prof.source == str(path)
    layers = [{"name": "l", "neurons": 2, "fan_in": 3, "spikes_per_sample": 4,
               "synops_per_sample": 6, "active_updates_per_sample": 1,
               "idle_updates_per_sample": 2}]
    assert en.energy_per_inference(layers, prof)["total_pj"] == pytest.approx(6 + 2 + 1 + 40)
    assert en.ann_energy(layers, prof)["total_pj"] == pytest.approx(6 * 3.0)
    assert en.load_profile(path).name == "mine"  # a Path works too


def test_mac_only_profile_is_valid_but_cannot_cost_snn(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"name": "ann", "citation": "c", "omits": [],
                                "energies_pj": {"mac": 1.0}}))
    prof = en.load_profile(path)
    assert prof.can_cost_ann and not prof.can_cost_snn
    with pytest.raises(ImsnnError, match=r"ann\.json: field 'energies_pj\.synop' is missing"):
        en.energy_per_inference([{"name": "l", "spikes_per_sample": 0,
                                  "synops_per_sample": 0}], prof)


GOOD = {"name": "p", "citation": "c", "omits": ["x"], "energies_pj": dict(LOIHI)}


def _with(**changes):
    data = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if value is ...:
            data.pop(key)
        else:
            data[key] = value
    return data


@pytest.mark.parametrize("data, field", [
    (_with(name=...), "name"),
    (_with(name=""), "name"),
    (_with(citation=...), "citation"),
    (_with(citation=3), "citation"),
    (_with(omits=...), "omits"),
    (_with(omits="none"), "omits"),
    (_with(omits=[1]), "omits"),
    (_with(energies_pj=...), "energies_pj"),
    (_with(energies_pj={}), "energies_pj"),
    (_with(energies_pj=[1, 2]), "energies_pj"),
    (_with(energies_pj={**LOIHI, "synop": -1}), "energies_pj.synop"),
    (_with(energies_pj={**LOIHI, "synop": "23.6"}), "energies_pj.synop"),
    (_with(energies_pj={**LOIHI, "spike": True}), "energies_pj.spike"),
    (_with(energies_pj={**LOIHI, "synops": 1.0}), "energies_pj.synops"),
    (_with(energies_pj={"synop": 1.0, "neuron_update_active": 1.0,
                        "neuron_update_idle": 1.0}), "energies_pj.spike"),
    (_with(reference_pj={"x": "y"}), "reference_pj.x"),
    (_with(schema_version=2), "schema_version"),
    (_with(source_notes="x"), "source_notes"),
])
def test_bad_profile_names_file_and_field(tmp_path, data, field):
    path = tmp_path / "bad_profile.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ImsnnError) as info:
        en.load_profile(str(path))
    msg = str(info.value)
    assert str(path) in msg
    assert f"field '{field}'" in msg


def test_profile_not_json_or_not_object(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("{not json")
    with pytest.raises(ImsnnError, match=r"p\.json: not valid JSON"):
        en.load_profile(str(path))
    path.write_text("[1, 2]")
    with pytest.raises(ImsnnError, match=r"p\.json: an energy profile must be a JSON object"):
        en.load_profile(str(path))


def test_unknown_profile_name_or_missing_file(tmp_path):
    with pytest.raises(ImsnnError, match=r"truenorth: not a built-in energy profile"):
        en.load_profile("truenorth")
    missing = tmp_path / "nope.json"
    with pytest.raises(ImsnnError, match=r"nope\.json"):
        en.load_profile(str(missing))


def test_deployment_modules_import_neither_torch_nor_imsnn_train_nor_matplotlib():
    code = ("import sys, imsnn_lava.analysis.energy, imsnn_lava.analysis.report\n"
            "bad = [m for m in ('torch', 'imsnn_train', 'matplotlib') if m in sys.modules]\n"
            "assert not bad, bad\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
