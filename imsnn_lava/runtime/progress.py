"""Progress bars that leave Lava importable.

tqdm's first bar, even a disabled one, creates a multiprocessing lock, which fixes the
multiprocessing start method; Lava's runtime then fails to import in the same Python process
("context has already been set"). Bars made here give tqdm a threading lock first, so training,
evaluation and Lava simulation can run one after another in one process.
"""

from __future__ import annotations

import threading


def use_thread_lock() -> None:
    """Give tqdm a threading lock unless it has a lock already (then nothing changes)."""
    from tqdm import tqdm

    if getattr(tqdm, "_lock", None) is None:
        tqdm.set_lock(threading.RLock())


def progress_bar(*args, **kwargs):
    """tqdm(*args, **kwargs), without touching multiprocessing."""
    from tqdm import tqdm

    use_thread_lock()
    return tqdm(*args, **kwargs)
