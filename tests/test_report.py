"""`imsnn report`: HTML + PNG comparison of runs, built from small fixture result files."""

from __future__ import annotations

import argparse
import html
import json
import os
import re
from pathlib import Path

import pytest

from imsnn_lava.analysis import energy as en
from imsnn_lava.analysis.report import build_report, load_result
from imsnn_lava.errors import ImsnnError

FIXTURES = Path(__file__).parent / "fixtures" / "results"
BASELINE = FIXTURES / "baseline_mnist.json"
IMSNN = FIXTURES / "imsnn_mnist.json"
MINIMAL = FIXTURES / "minimal_evaluate.json"  # evaluate-style: input as the first layer row
BARE = FIXTURES / "bare_fashion.json"  # required fields only
ALL = [BASELINE, IMSNN, MINIMAL, BARE]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _fixture_state():
    return sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                  for p in FIXTURES.parent.rglob("*"))


@pytest.fixture(autouse=True)
def _source_tree_untouched():
    before = _fixture_state()
    yield
    assert _fixture_state() == before, "the report wrote into tests/fixtures"


def _images(index: Path) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', index.read_text(encoding="utf-8"))


def _check_png(path: Path) -> None:
    from matplotlib.image import imread
    from PIL import Image

    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 100
    assert imread(str(path)).ndim == 3


def _run_cli(argv: list[str]) -> int:
    from imsnn_lava.commands import report as cmd

    parser = argparse.ArgumentParser(prog="imsnn")
    cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


# ----------------------------------------------------------------------------- full report


def test_full_report_from_fixtures(tmp_path):
    out_dir = tmp_path / "out" / "nested"
    out = build_report(ALL, out_dir)
    index = out_dir / "index.html"
    assert index.is_file()
    images = _images(index)
    assert set(images) == {
        "accuracy.png", "spikes_per_layer.png", "synops_per_layer.png", "energy.png",
        "isi_histograms.png", "raster_00_mnist_baseline.png", "raster_01_mnist_imsnn.png",
        "accuracy_vs_spikes.png", "accuracy_vs_energy.png", "accuracy_vs_synops.png"}
    for name in images:
        assert "/" not in name and not name.startswith(".")  # relative, next to the page
        _check_png(out_dir / name)
    page = index.read_text(encoding="utf-8")
    for run in ("mnist_baseline", "mnist_imsnn", "imsnn", "bare_fashion"):
        assert f"<b>{run}</b>" in page
    assert "<style>" in page and "<link" not in page and "<script" not in page
    assert "Davies" in page and "static (leakage) power" in page  # citation and omissions
    assert (out_dir / "summary.md").is_file() and (out_dir / "summary.json").is_file()
    assert {p.name for p in out.files} == set(images) | {"index.html", "summary.md",
                                                         "summary.json"}
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]  # no temp files left
    assert oct((out_dir / "index.html").stat().st_mode & 0o777) != oct(0o600)


def _with_lowered(src: Path, dst: Path, scale: float) -> Path:
    """A copy of a fixture run with a stock-lowered section: its own layers plus one ISI-unit
    row per layer, `scale` x its spikes."""
    data = json.loads(src.read_text())
    rows = []
    for i, layer in enumerate(data["layers"], start=1):
        rows.append({**layer, "layer": i, "role": "layer"})
        rows.append({"layer": i, "name": f"l{i}_units", "role": "isi-unit",
                     "neurons": 4 * layer["neurons"],
                     "spikes_per_sample": scale * layer["spikes_per_sample"],
                     "synops_per_sample": 2 * scale * layer["spikes_per_sample"],
                     "neuron_updates_per_sample": 4 * layer["neurons"] * 25})
    data["lowered"] = {"format": "stock-lowered", "layers": rows}
    dst.write_text(json.dumps(data))
    return dst


def test_lowered_energy_has_its_own_front_and_columns(tmp_path):
    """Runs with stock-lowered counts get the accuracy-lowered-energy front, and the summary's
    lowered energy is the profile's energy of the lowered rows."""
    runs = [_with_lowered(BASELINE, tmp_path / "base.json", 0.0),
            _with_lowered(IMSNN, tmp_path / "ims.json", 3.0)]
    build_report(runs, tmp_path / "out")
    images = _images(tmp_path / "out" / "index.html")
    assert "accuracy_vs_lowered_energy.png" in images
    _check_png(tmp_path / "out" / "accuracy_vs_lowered_energy.png")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    prof = en.load_profile("loihi")
    for row, path in zip(summary["runs"], runs):
        low = json.loads(path.read_text())["lowered"]["layers"]
        expected = en.energy_per_inference(low, prof)["total_pj"] / 1e6
        assert row["lowered_energy_per_inference_uj"] == pytest.approx(expected)
    # without lowered counts: no such figure, and the page says why
    build_report([BASELINE, IMSNN], tmp_path / "plain")
    assert "accuracy_vs_lowered_energy.png" not in _images(tmp_path / "plain" / "index.html")
    assert "--lowered-counts" in (tmp_path / "plain" / "index.html").read_text()


def test_summary_numbers(tmp_path):
    build_report(ALL, tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = {r["name"]: r for r in summary["runs"]}
    assert list(rows) == ["mnist_baseline", "mnist_imsnn", "imsnn", "bare_fashion"]
    base, ims, minimal, bare = (rows[k] for k in rows)
    assert base["baseline"] and not ims["baseline"] and not minimal["baseline"]
    assert ims["reference_baseline"] == "mnist_baseline"
    assert ims["hidden_spikes_per_sample"] == 66.0 and ims["total_spikes_per_sample"] == 80.0
    assert ims["hidden_spikes_vs_baseline"] == pytest.approx(66 / 464)
    assert ims["synops_per_sample"] == pytest.approx(239520 + 660)
    prof = en.load_profile("loihi")
    expected = en.energy_per_inference(load_result(IMSNN)["layers"], prof)["total_pj"] / 1e3
    assert ims["energy_per_inference_nj"] == pytest.approx(expected)
    base_nj = base["energy_per_inference_nj"]
    assert ims["energy_vs_baseline"] == pytest.approx(expected / base_nj)
    assert ims["ann_macs"] == 784 * 200 + 200 * 10
    # evaluate-style input row: not counted as hidden; fan-in and updates derived with notes
    assert minimal["hidden_spikes_per_sample"] == 58.0
    assert minimal["total_spikes_per_sample"] == 70.0
    assert minimal["input_spikes_per_sample"] == pytest.approx(1197.6)
    assert minimal["name"] == "imsnn"  # the model file's stem
    assert any("inactive" in n for n in minimal["notes"])
    # required fields only: n/a where counts are missing, no baseline for its dataset
    assert bare["energy_per_inference_nj"] is None and bare["synops_per_sample"] is None
    assert bare["reference_baseline"] is None and bare["energy_vs_baseline"] is None
    assert bare["precision"] == "n/a"
    assert base["energy_vs_baseline"] is None  # the baseline itself
    md = (tmp_path / "summary.md").read_text()
    assert "| mnist_imsnn | mnist | fixed | 89.00% |" in md
    assert "0.142x (-86%)" in md and "baseline" in md


def test_report_with_only_required_fields(tmp_path):
    out = build_report([BARE], tmp_path)
    images = _images(tmp_path / "index.html")
    assert set(images) == {"accuracy.png", "spikes_per_layer.png", "accuracy_vs_spikes.png"}
    for name in images:
        _check_png(tmp_path / name)
    page = (tmp_path / "index.html").read_text()
    assert "n/a" in page and "no energy figure" in page and "no raster figure" in page
    assert "bare_fashion" in out.table and "n/a" in out.table


def test_html_escapes_text_from_json(tmp_path):
    data = json.loads(IMSNN.read_text())
    data["name"] = '<script>alert("x")</script> & baseline'
    data["dataset"] = "<b>mnist</b>"
    data["layers"][0]["name"] = "<img src=x>"
    data["raster"]["layers"][1]["name"] = "<img src=x>"
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(data))
    build_report([path], tmp_path / "out")
    page = (tmp_path / "out" / "index.html").read_text()
    assert "<script>" not in page and "<img src=x>" not in page and "<b>mnist</b>" not in page
    assert html.escape(data["name"]) in page
    for name in _images(tmp_path / "out" / "index.html"):
        assert re.fullmatch(r"[A-Za-z0-9_.-]+\.png", name)
        _check_png(tmp_path / "out" / name)


def test_duplicate_names_are_told_apart(tmp_path):
    build_report([IMSNN, IMSNN], tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    names = [r["name"] for r in summary["runs"]]
    assert len(set(names)) == 2
    assert len(set(_images(tmp_path / "index.html"))) == len(_images(tmp_path / "index.html"))


def test_rerun_overwrites_and_relative_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    build_report([BASELINE], "rep")
    build_report([BASELINE, IMSNN], "rep")
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "mnist_imsnn" in page


def test_custom_and_cmos_profiles(tmp_path):
    path = tmp_path / "flat.json"
    path.write_text(json.dumps({
        "name": "flat", "citation": "unit test", "omits": ["all of it"],
        "energies_pj": {"synop": 1.0, "neuron_update_active": 0.0,
                        "neuron_update_idle": 0.0, "spike": 0.0}}))
    out = build_report([IMSNN], tmp_path / "a", profile=str(path))
    row = out.summary["runs"][0]
    assert row["energy_profile"] == "flat"
    assert row["energy_per_inference_nj"] == pytest.approx((239520 + 660) / 1e3)
    assert "flat energy/inference (uJ)" in out.table
    assert "all of it" in (tmp_path / "a" / "index.html").read_text()
    cmos = build_report([IMSNN], tmp_path / "b", profile="cmos45_ann")
    assert cmos.summary["runs"][0]["energy_per_inference_nj"] == pytest.approx(
        (239520 + 660) * 0.9 / 1e3)


def test_profile_without_snn_energies_is_refused_before_work(tmp_path):
    path = tmp_path / "ann_only.json"
    path.write_text(json.dumps({"name": "a", "citation": "c", "omits": [],
                                "energies_pj": {"mac": 1.0}}))
    with pytest.raises(ImsnnError, match=r"ann_only\.json: field 'energies_pj\.synop'"):
        build_report([IMSNN], tmp_path / "out", profile=str(path))
    assert not list((tmp_path / "out").iterdir())
    with pytest.raises(ImsnnError, match="not a built-in energy profile"):
        build_report([IMSNN], tmp_path / "out", profile="no-such-profile")


# ----------------------------------------------------------------------------- bad input


def _bad(tmp_path, name: str, content) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def _good() -> dict:
    return json.loads(IMSNN.read_text())


def _mutated(fn) -> dict:
    data = _good()
    fn(data)
    return data


@pytest.mark.parametrize("content, field", [
    ({"layers": [{"name": "l", "spikes_per_sample": 1}]}, "accuracy"),
    ({"accuracy": 0.5}, "layers"),
    ({"accuracy": 0.5, "layers": []}, "layers"),
    ({"accuracy": 0.5, "layers": {"name": "l"}}, "layers"),
    ({"accuracy": "high", "layers": [{"name": "l", "spikes_per_sample": 1}]}, "accuracy"),
    ({"accuracy": 93.0, "layers": [{"name": "l", "spikes_per_sample": 1}]}, "accuracy"),
    ({"accuracy": 0.5, "layers": [{"name": "l"}]}, "layers[0].spikes_per_sample"),
    ({"accuracy": 0.5, "layers": [{"spikes_per_sample": 1}]}, "layers[0].name"),
    ({"accuracy": 0.5, "layers": [3]}, "layers[0]"),
    (_mutated(lambda d: d["layers"][1].update(synops_per_sample="many")),
     "layers[1].synops_per_sample"),
    (_mutated(lambda d: d["layers"][0].update(isi_histogram=[1, -2])),
     "layers[0].isi_histogram"),
    (_mutated(lambda d: d["raster"]["layers"][0]["t"].pop()), "raster.layers[0].i"),
    (_mutated(lambda d: d.update(fixed_point="yes")), "fixed_point"),
    (_mutated(lambda d: d.update(input=[1])), "input"),
    (_mutated(lambda d: d.update(name=5)), "name"),
])
def test_bad_result_names_file_and_field(tmp_path, content, field):
    path = _bad(tmp_path, "bad_result.json", content)
    with pytest.raises(ImsnnError) as info:
        build_report([IMSNN, path], tmp_path / "out")
    msg = str(info.value)
    assert str(path) in msg and f"field '{field}'" in msg, msg
    assert not list((tmp_path / "out").iterdir())  # nothing written


@pytest.mark.parametrize("content, expected", [
    ("{not json", "not JSON"),
    ("", "not JSON"),
    ("[1, 2, 3]", "must hold a JSON object"),
])
def test_not_a_result_object(tmp_path, content, expected):
    path = _bad(tmp_path, "r.json", content)
    with pytest.raises(ImsnnError, match=re.escape(str(path)) + ".*" + expected):
        build_report([path], tmp_path / "out")


def test_missing_result_file(tmp_path):
    missing = tmp_path / "nowhere.json"
    with pytest.raises(ImsnnError, match=re.escape(str(missing)) + ": no such result file"):
        build_report([missing], tmp_path / "out")
    with pytest.raises(ImsnnError, match="a folder, not a result file"):
        build_report([tmp_path], tmp_path / "out")
    with pytest.raises(ImsnnError, match="no result files"):
        build_report([], tmp_path / "out")


def test_unwritable_output_is_reported_before_any_work(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    # the input does not exist either: the output folder is checked first
    with pytest.raises(ImsnnError, match=re.escape(str(blocker)) + ".*not a folder"):
        build_report([tmp_path / "missing.json"], blocker)
    with pytest.raises(ImsnnError, match="cannot write the report there"):
        build_report([tmp_path / "missing.json"], blocker / "sub")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="permission bits do not bind root")
def test_read_only_output_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ImsnnError, match="cannot write the report there"):
            build_report([IMSNN], ro)
    finally:
        ro.chmod(0o700)


# ----------------------------------------------------------------------------- command


def test_command_prints_table_and_writes(tmp_path, capsys):
    rc = _run_cli(["report", str(BASELINE), str(IMSNN), "-o", str(tmp_path / "r"),
                   "--profile", "loihi"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "mnist_baseline" in out and "mnist_imsnn" in out
    assert "loihi energy/inference (uJ)" in out and "baseline" in out
    assert "Davies" in out and "leaves out: static (leakage) power" in out
    assert f"report: {tmp_path / 'r' / 'index.html'}" in out
    assert (tmp_path / "r" / "index.html").is_file()


def test_command_needs_output_and_results(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _run_cli(["report", str(IMSNN)])
    with pytest.raises(SystemExit):
        _run_cli(["report", "-o", str(tmp_path)])
    capsys.readouterr()


def test_command_bad_input_raises_imsnn_error(tmp_path):
    with pytest.raises(ImsnnError, match="nowhere.json"):
        _run_cli(["report", str(tmp_path / "nowhere.json"), "-o", str(tmp_path / "r")])


def test_rebuilding_a_report_drops_rasters_of_runs_no_longer_in_it(tmp_path):
    from imsnn_lava.analysis.report import build_report

    fixtures = sorted((Path(__file__).parent / "fixtures" / "results").glob("*.json"))
    out = tmp_path / "report"
    build_report(fixtures, out)
    first = {p.name for p in out.glob("raster_*.png")}
    build_report(fixtures[:1], out)
    second = {p.name for p in out.glob("raster_*.png")}
    html = (out / "index.html").read_text()
    assert second <= first and all(name in html for name in second)
    assert all(name in html for name in (p.name for p in out.glob("*.png")))


def test_run_result_is_typed_and_versioned(tmp_path):
    """load_result gives a read-only RunResult (a Mapping with typed accessors); version 1 files
    (no format/version fields) still load; a newer version is refused with an upgrade line."""
    from imsnn_lava.analysis.runresult import RESULT_VERSION, RunResult

    run = load_result(IMSNN)
    assert isinstance(run, RunResult) and run.version in (1, RESULT_VERSION)
    assert run.accuracy == run["accuracy"] and run.layers == run["layers"]
    with pytest.raises(TypeError):
        run["accuracy"] = 0.5  # noqa: B018 - immutable
    data = json.loads(IMSNN.read_text())
    data.update(format="imsnn-result", version=RESULT_VERSION + 1)
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(data))
    with pytest.raises(ImsnnError, match="newer than this imsnn"):
        load_result(newer)
    data.update(format="something-else", version=1)
    newer.write_text(json.dumps(data))
    with pytest.raises(ImsnnError, match="field 'format'"):
        load_result(newer)


def test_a_collapsed_run_is_left_out_of_the_fronts_only(tmp_path):
    """A run at chance accuracy (e.g. an L1 strength that silenced the net) is not drawn in
    the fronts, where it would squeeze the others into a corner; it stays in the table."""
    from imsnn_lava.analysis.report.plots import at_chance
    from imsnn_lava.analysis.report.runs import _make_runs

    data = json.loads(IMSNN.read_text())
    collapsed = tmp_path / "collapsed.json"
    collapsed.write_text(json.dumps({**data, "name": "collapsed", "accuracy": 0.098}))
    paths = [str(IMSNN), str(collapsed)]
    normal, silent = _make_runs(paths, [load_result(p) for p in paths], ())
    assert at_chance(silent) and not at_chance(normal)
    build_report([BASELINE, IMSNN, collapsed], tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "collapsed" in [r["name"] for r in summary["runs"]]
    _check_png(tmp_path / "out" / "accuracy_vs_spikes.png")
