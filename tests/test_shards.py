"""Replicas, shards and `imsnn merge`: a sample's result depends neither on the replica nor on
the shard that ran it, and merged shard results equal the unsharded run."""

from __future__ import annotations

import json

import lava_helpers as H  # tests/lava_helpers.py; conftest.py puts tests/ on sys.path
import numpy as np
import pytest

from imsnn_lava import ir as F
from imsnn_lava import runtime as runner
from imsnn_lava.analysis import result as results
from imsnn_lava.errors import ImsnnError
from imsnn_lava.runtime import shards


def test_shard_ranges_partition_the_selection():
    for total in (1, 2, 7, 10, 101):
        for count in range(1, min(total, 6) + 1):
            ranges = [shards.shard_range(total, k, count) for k in range(1, count + 1)]
            assert ranges[0][0] == 0 and ranges[-1][1] == total
            assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
            sizes = [b - a for a, b in ranges]
            assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    assert shards.parse_shard("2/4") == (2, 4)
    for bad in ("0/3", "4/3", "x", "1/0", "2"):
        with pytest.raises(ImsnnError):
            shards.parse_shard(bad)


def test_auto_replicas_rule():
    """R x (input + layer sizes) ~ REPLICA_NEURONS, capped by memory, balanced periods."""
    model = H.mnist_model()  # 784 + 256 + 32 + 10 neurons
    neurons = 784 + 256 + 32 + 10
    r_max = -(-runner.REPLICA_NEURONS // neurons)
    assert runner.auto_replicas(model, 1, fixed=True) == 1
    periods = -(-10_000 // r_max)
    assert runner.auto_replicas(model, 10_000, fixed=True) == -(-10_000 // periods) <= r_max
    r = runner.auto_replicas(model, r_max + 1, fixed=True)  # 2 periods, evenly filled
    assert r == -(-(r_max + 1) // 2)
    per = runner.replica_bytes(model, fixed=False)
    assert runner.auto_replicas(model, 10_000, fixed=False, memory_budget=5 * per) == 5
    assert runner.auto_replicas(model, 10_000, fixed=False, memory_budget=1) == 1
    assert runner.replica_bytes(model, fixed=True) < per  # int32 messages vs float64


@pytest.mark.lava
@pytest.mark.timeout(120)
def test_sample_results_do_not_depend_on_replica_or_shard(mnist_test):
    """7 real MNIST samples, fixed point: one run with R = 3 (sample j on replica j % 3),
    two shards run separately with R = 2 and R = 4, and R = 1 for the first three: each
    sample's output counts, prediction and every event count are the same, and the ISI
    histograms of the shards add up to the whole run's."""
    model = H.quantize(H.mnist_model(num_steps=12))
    images, _, ids = mnist_test
    flat, ids = images[:7].reshape(7, -1), np.asarray(ids[:7])
    whole = runner.run(model, fixed=True, images=flat, sample_ids=ids, replicas=3,
                       raster=True, timeout_s=60)
    a = runner.run(model, fixed=True, images=flat[:3], sample_ids=ids[:3], replicas=2,
                   raster=True, timeout_s=60)
    b = runner.run(model, fixed=True, images=flat[3:], sample_ids=ids[3:], replicas=4,
                   timeout_s=60)
    one = runner.run(model, fixed=True, images=flat[:3], sample_ids=ids[:3], replicas=1,
                     timeout_s=60)
    assert whole.events.spikes.min() > 0
    np.testing.assert_array_equal(np.concatenate([a.output_counts, b.output_counts]),
                                  whole.output_counts)
    np.testing.assert_array_equal(one.output_counts, a.output_counts)
    parts = whole.events.concat([a.events, b.events])
    assert parts.differences(whole.events) == []
    assert one.events.differences(a.events) == []
    for x, y in zip(a.raster, whole.raster):
        np.testing.assert_array_equal(x, y)


def _imsnn(*args) -> int:
    from imsnn_train.cli import main

    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """Two fixed-point model files (the second a different network) with a config name."""
    out = tmp_path_factory.mktemp("shards")
    paths = []
    for seed in (0, 1):
        model = H.quantize(H.mnist_model(seed=seed, num_steps=10))
        model = model.replace(config_json=json.dumps(
            {"name": f"mixed{seed}", "model": {"synapse": "isi"},
             "train": {"dataset": "mnist", "val_size": 5000}}))
        paths.append(out / f"m{seed}.h5")
        F.write(model, paths[-1])
    return out, paths


@pytest.mark.lava
@pytest.mark.timeout(180)
def test_merged_shards_equal_the_unsharded_run(model_files, mnist_test, capsys):
    """`imsnn simulate -n 9` vs three shards (run in another order, with other replica
    counts) joined by `imsnn merge`: the same result JSON, timings aside; overlapping,
    incomplete and foreign shard sets are refused with a clear error."""
    out, (path, other) = model_files
    full = out / "full.json"
    assert _imsnn("simulate", path, "--fixed-point", "-n", 9, "--json", full,
                  "--no-progress") == 0
    for k, r in ((3, 1), (1, 2), (2, 5)):
        assert _imsnn("simulate", path, "--fixed-point", "-n", 9, "--shard", f"{k}/3",
                      "--replicas", r, "--json", out / f"s{k}.json", "--no-progress") == 0
    merged = out / "merged.json"
    assert _imsnn("merge", out / "s2.json", out / "s3.json", out / "s1.json", "-o",
                  merged) == 0
    a, b = json.loads(full.read_text()), json.loads(merged.read_text())
    assert a["name"] == "mixed0" and a["synapse"] == "isi" and a["num_samples"] == 9
    assert a["agreement_counts"] == 1.0 and a["agreement_events"] == 1.0
    # replicas as run: --replicas 5 on a 3-sample shard runs 3
    assert len(b["shards"]) == 3 and [s["replicas"] for s in b["shards"]] == [2, 3, 1]
    keep = [k for k in a if k not in results.RUN_FIELDS]
    assert sorted(keep) == sorted(k for k in b if k not in results.RUN_FIELDS)
    for key in keep:
        assert a[key] == b[key], key
    # the per-sample arrays a merge needs, and the summary fields report.py reads
    assert len(a["per_sample"]["layers"][0]["synops"]) == 9
    assert a["raster"]["sample_id"] == a["per_sample"]["sample_ids"][0]
    assert [rl["name"] for rl in a["raster"]["layers"]] == ["input", "c1", "d2", "d3"]
    assert a["input"]["neurons"] == 784
    row = a["layers"][0]
    for key in ("synops_per_sample", "fan_in", "lookups_per_sample", "active_updates_per_sample",
                "idle_updates_per_sample", "neuron_updates_per_sample", "isi_histogram",
                "synops_per_sample_distribution"):
        assert key in row, key
    assert "lookups_per_sample" not in a["layers"][2]  # plain
    capsys.readouterr()
    # refusals
    bad = out / "bad.json"
    assert _imsnn("merge", out / "s1.json", out / "s1.json", out / "s2.json", "-o", bad) == 2
    assert "overlap" in capsys.readouterr().err
    assert _imsnn("merge", out / "s1.json", out / "s3.json", "-o", bad) == 2
    assert "gap" in capsys.readouterr().err
    assert _imsnn("simulate", other, "--fixed-point", "-n", 9, "--shard", "2/3",
                  "--json", out / "o2.json", "--no-progress") == 0
    capsys.readouterr()
    assert _imsnn("merge", out / "s1.json", out / "o2.json", out / "s3.json", "-o", bad) == 2
    assert "model_sha256" in capsys.readouterr().err
    # simulate runs a file's own precision by default: --float asks for the other one
    assert _imsnn("simulate", path, "--float", "-n", 9, "--shard", "2/3", "--json",
                  out / "f2.json", "--no-progress") == 0
    capsys.readouterr()
    assert _imsnn("merge", out / "s1.json", out / "f2.json", out / "s3.json", "-o", bad) == 2
    assert "fixed_point" in capsys.readouterr().err
    assert not bad.exists()
