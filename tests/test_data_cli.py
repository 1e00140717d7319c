"""`imsnn data ...` through the real entry point, in subprocesses; no network."""

from __future__ import annotations

import os
import subprocess
import sys

from imsnn_lava.data import write_idx


def _imsnn(*args, tmp_path, **env):
    full_env = dict(os.environ)
    full_env["IMSNN_DATA_DIR"] = str(tmp_path / "default-cache")  # never the user's cache
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "imsnn_train.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


def test_imsnn_help(tmp_path):
    out = _imsnn("--help", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "data" in out.stdout


def test_data_help(tmp_path):
    out = _imsnn("data", "--help", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "fetch" in out.stdout and "info" in out.stdout
    out = _imsnn("data", "fetch", "--help", tmp_path=tmp_path)
    assert out.returncode == 0 and "--from" in out.stdout and "--data-dir" in out.stdout


def test_fetch_unknown_dataset_is_an_argparse_error(tmp_path):
    out = _imsnn("data", "fetch", "bogus", tmp_path=tmp_path)
    assert out.returncode == 2
    assert "invalid choice: 'bogus'" in out.stderr
    assert "Traceback" not in out.stderr


def test_data_without_subcommand_is_an_argparse_error(tmp_path):
    out = _imsnn("data", tmp_path=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_info_on_empty_dir_is_one_clear_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = _imsnn("data", "info", "mnist", "--data-dir", str(empty), tmp_path=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("imsnn data: error: no mnist files in ")
    assert "imsnn data fetch mnist" in lines[0]
    assert out.stdout == ""


def test_info_reports_mismatch(tmp_path):
    import numpy as np

    cache = tmp_path / "cache"
    folder = cache / "mnist"
    folder.mkdir(parents=True)
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte", np.array([1, 1, 7], np.uint8))
    out = _imsnn("data", "info", "mnist", "--data-dir", str(cache), tmp_path=tmp_path)
    assert out.returncode == 2
    assert "t10k-images-idx3-ubyte   3x28x28" in out.stdout
    assert "MISMATCH" in out.stdout and "MISSING" in out.stdout
    assert "test class counts: 0: 0, 1: 2, 2: 0" in out.stdout
    assert "4 of 4 mnist files fail verification" in out.stderr


def test_fetch_from_folder_then_info(tmp_path, mnist_cached):
    """`fetch --from` the real cache (conftest: fetched and verified if absent) into a fresh
    one (local copy only), then `info`."""
    src = mnist_cached
    cache = tmp_path / "cache"
    out = _imsnn("data", "fetch", "mnist", "--from", str(src), "--data-dir", str(cache),
                 tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "trying folder" in out.stderr and "mirror" not in out.stderr
    out = _imsnn("data", "info", "mnist", "--data-dir", str(cache), tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(" OK") == 4
    assert "60000x28x28" in out.stdout and "10000x28x28" in out.stdout
