"""`imsnn sweep`: grid parsing and naming, a tiny grid end to end on real MNIST (train ->
fixed-point export -> Lava with stock-lowered counts -> table, fronts, report), a rerun that
runs nothing, a sweep stopped by SIGTERM during training that resumes from the last epoch
and ends equal to an uninterrupted one, and refusals before any work.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imsnn_train.errors import ConfigError
from imsnn_train.sweep import grid as grids
from imsnn_train.sweep import runner as runners

pytestmark = pytest.mark.timeout(300)

TINY = """name = "tiny"
[model]
synapse = "isi"
layers = [{ kind = "dense", out = 16 }, { kind = "dense", out = 10 }]
[model.isi]
phi_max = 4
[encoding]
num_steps = 6
[train]
epochs = 1
batch_size = 50
lr = 0.005
train_subset = 300
eval_subset = 100
val_size = 100
device = "cpu"
"""


def _cli(*args, timeout=240) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "imsnn_train.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def base(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


# ------------------------------------------------------------------------------ the grid


def test_values_split_at_top_level_commas_only():
    assert grids.split_values("0, 1e-4,3e-4") == ["0", "1e-4", "3e-4"]
    layers = '[{"kind":"dense","out":8},{"kind":"dense","out":10}]'
    assert grids.split_values(f"{layers},[]") == [layers, "[]"]
    assert grids.split_values('"a,b",c') == ['"a,b"', "c"]


def test_points_are_every_combination_named_by_their_values():
    grid = grids.parse_grid(["train.activity_l1=0,1e-4", "model.isi.phi_max=4,8,16"])
    points = grids.expand("mnist", grid)
    assert len(points) == 6 and len({p.name for p in points}) == 6
    assert points[0].name == "mnist__activity_l1=0_phi_max=4"
    assert points[0].overrides == ("train.activity_l1=0", "model.isi.phi_max=4")
    assert points[-1].overrides == ("train.activity_l1=1e-4", "model.isi.phi_max=16")
    assert [p.name for p in grids.expand("m", [])] == ["m"]
    # two keys ending alike keep their full names; a JSON value gets a safe, distinct name
    both = grids.expand("m", grids.parse_grid(["a.seed=1", "b.seed=2"]))
    assert both[0].name == "m__a.seed=1_b.seed=2"
    json_points = grids.expand("m", grids.parse_grid(
        ['model.layers=[{"kind":"dense","out":8}],[{"kind":"dense","out":9}]']))
    names = [p.name for p in json_points]
    assert len(set(names)) == 2 and all(grids.SAFE_CHARS.search(n) is None for n in names)
    long = grids.expand("m", grids.parse_grid([f"k{i}=" + "v" * 30 for i in range(6)]))
    assert len(long[0].name) <= grids.MAX_NAME


@pytest.mark.parametrize("item,words", [
    ("train.epochs", "expected KEY=V1,V2"), ("=1,2", "expected KEY=V1,V2"),
    ("train.epochs=1,,2", "empty value"), ("train.epochs=1,1", "listed twice")])
def test_bad_grid_items_are_named(item, words):
    with pytest.raises(ConfigError, match=words) as exc:
        grids.parse_grid([item])
    assert item in str(exc.value)
    with pytest.raises(ConfigError, match="given twice"):
        grids.parse_grid(["a=1", "a=2"])


def test_an_invalid_point_is_refused_before_anything_runs(base, tmp_path):
    out = tmp_path / "sweep"
    proc = _cli("sweep", "--config", base, "--grid", "model.isi.phi_max=4,0", "-o", out)
    assert proc.returncode == 2
    assert "point tiny__phi_max=0" in proc.stderr and "model.isi.phi_max" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_a_point_with_other_settings_is_refused(base, tmp_path):
    settings = runners.Settings(str(base), ("train.threads=1",), 10, True)
    point = grids.expand("tiny", grids.parse_grid(["train.activity_l1=0"]))[0]
    runners.prepare([point], settings, tmp_path)
    runners.prepare([point], settings, tmp_path)  # the same settings: fine
    other = runners.Settings(str(base), ("train.threads=1", "train.epochs=3"), 10, True)
    with pytest.raises(ConfigError, match="tiny__activity_l1=0 exists with overrides"):
        runners.prepare([point], other, tmp_path)
    # other simulation settings: the simulation is redone, the training kept
    result = runners.points_dir(tmp_path) / f"{point.name}-lava.json"
    result.write_text("{}")
    runners.prepare([point], runners.Settings(str(base), ("train.threads=1",), 20, True),
                    tmp_path)
    assert not result.exists()


# ------------------------------------------------------------------------------ end to end


def test_tiny_grid_end_to_end_then_nothing_to_do(base, tmp_path, mnist_cached):
    out = tmp_path / "sweep"
    args = ("sweep", "--config", base, "--grid", "model.synapse=plain,isi", "-o", out,
            "-n", "40", "--jobs", "2", "--no-progress")
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 point(s), 6 step(s) run, 0 already done, 0 failed" in proc.stdout
    table = json.loads((out / "results.json").read_text())
    rows = {r["point"]: r for r in table["points"]}
    assert set(rows) == {"tiny__synapse=plain", "tiny__synapse=isi"}
    for name, row in rows.items():
        result = json.loads(Path(row["result"]).read_text())
        assert result["name"] == name and result["num_samples"] == 40
        assert result["precision"] == "fixed" and result["agreement_counts"] == 1.0
        assert row["accuracy"] == result["accuracy"]
        assert row["lowered_energy_per_inference_uj"] > 0 and row["energy_per_inference_uj"] > 0
        assert set(row["fronts"]) <= {"spikes", "synops", "energy", "lowered"}
    plain, isi = rows["tiny__synapse=plain"], rows["tiny__synapse=isi"]
    assert plain["synapse"] == "plain" and isi["synapse"] == "isi"
    # the ISI units cost on the chip: the lowered IMSNN costs more than its own events
    assert isi["lowered_energy_per_inference_uj"] > isi["energy_per_inference_uj"]
    # every cost has its front
    for cost in ("spikes", "synops", "energy", "lowered"):
        assert any(cost in r["fronts"] for r in rows.values())
    page = (out / "report" / "index.html").read_text()
    for image in ("accuracy_vs_spikes.png", "accuracy_vs_synops.png",
                  "accuracy_vs_energy.png", "accuracy_vs_lowered_energy.png"):
        assert image in page and (out / "report" / image).is_file()
    assert "tiny__synapse=isi" in (out / "results.md").read_text()
    stamps = {p: p.stat().st_mtime_ns for p in (out / "points").iterdir()
              if p.suffix in (".h5", ".json") and not p.name.endswith(".point.json")}
    again = _cli(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 step(s) run, 6 already done" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,sid="], capture_output=True, text=True)
    rows = [tuple(map(int, line.split())) for line in out.stdout.splitlines() if line.strip()]
    found, frontier = set(), {pid}
    while frontier:
        nxt = {p for p, pp, _ in rows if pp in frontier and p not in found}
        found |= nxt
        frontier = nxt
    return sorted(found)


def test_sigterm_stops_the_sweep_and_the_next_one_resumes_training(base, tmp_path,
                                                                    mnist_cached):
    """Stopped after the point's first epoch checkpoint: exit 143, no step left running, no
    results; the next sweep resumes at the checkpoint, and its training history equals an
    uninterrupted sweep's."""
    grid = ("--grid", "train.seed=7")
    fixed = ("train.epochs=3", "train.train_subset=1500")
    out = tmp_path / "stopped"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    argv = [sys.executable, "-m", "imsnn_train.cli", "sweep", "--config", str(base), *grid,
            "-o", str(out), "-n", "20", "--no-progress", *fixed]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    ckpt = out / "points" / "tiny__seed=7" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert ckpt.exists(), "no checkpoint within 120 s"
    children = _children_of(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    alive = [c for c in children if Path(f"/proc/{c}").exists()]
    assert not alive, f"steps still running: {alive}"
    metrics = out / "points" / "tiny__seed=7" / "metrics.json"
    assert not metrics.exists() and not (out / "points" / "tiny__seed=7-lava.json").exists()
    resumed = _cli(*argv[3:])
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    log = (out / "points" / "tiny__seed=7.log").read_text()
    assert "resuming tiny__seed=7 after epoch" in log
    straight = tmp_path / "straight"
    ref = _cli("sweep", "--config", base, *grid, "-o", straight, "-n", "20", "--no-progress",
               *fixed)
    assert ref.returncode == 0, ref.stdout + ref.stderr

    def history(folder):
        data = json.loads((folder / "points" / "tiny__seed=7" / "metrics.json").read_text())
        return [{k: v for k, v in row.items() if k != "seconds"} for row in data["history"]]

    assert len(history(out)) == 3 and history(out) == history(straight)
    a = json.loads((out / "points" / "tiny__seed=7-lava.json").read_text())
    b = json.loads((straight / "points" / "tiny__seed=7-lava.json").read_text())
    assert a["predictions"] == b["predictions"] and a["layers"] == b["layers"]


def test_dry_run_lists_points_and_runs_nothing(base, tmp_path):
    out = tmp_path / "sweep"
    proc = _cli("sweep", "--config", base, "--grid", "train.activity_l1=0,1e-3", "-o", out,
                "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "2 point(s)" in proc.stdout and "tiny__activity_l1=1e-3" in proc.stdout
    assert "[to do]" in proc.stdout and not out.exists()


def test_the_sweep_itself_imports_no_torch(base, tmp_path):
    """Its steps run in their own processes: planning and the table need no torch."""
    block = ("import importlib.abc, sys\n"
             "class B(importlib.abc.MetaPathFinder):\n"
             "    def find_spec(self, name, path=None, target=None):\n"
             "        if name == 'torch' or name.startswith('torch.'):\n"
             "            raise ImportError('torch is blocked')\n"
             "sys.meta_path.insert(0, B())\n"
             "from imsnn_train.cli import main\n"
             "import imsnn_train.sweep.runner, imsnn_train.sweep.table\n"
             "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", block, "sweep", "--config", str(base),
                           "--grid", "train.activity_l1=0,1e-3", "-o", str(tmp_path / "s"),
                           "--dry-run"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "2 point(s)" in proc.stdout
