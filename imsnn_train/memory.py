"""Host memory for CPU training: keep freed memory in the process for the next step.

A conv net's training step allocates and frees tensors of tens of MB (a layer's synaptic input
over all T steps, the one-hot input, their gradients). glibc's malloc maps blocks that large
freshly or trims them off its heap when they are freed, so a step can fault its working set in
anew, page by page. With the mmap and trim thresholds raised, the blocks are reused from the
heap. Measured here (one thread, `imsnn train --config deploy/configs/mnist_conv_*.toml`, one
epoch): on 5000 images the epoch (metrics.json "seconds", two runs each) of the conv baseline
7.8-8.1 s -> 6.8-7.4 s, of the conv IMSNN 13.7-13.8 s -> 12.8-13.0 s; the whole IMSNN command
19.2 -> 17.6 s on 5000 images and 42.9 -> 42.1 s on 15000, its peak resident memory 1.26 GB ->
1.34-1.39 GB.
In the training-step benchmarks the default's cost moves from one process to the next: the conv
IMSNN 10,000-32,000 minor page faults per step (per-process medians,
bench/results/train_step_time_conv_only_allocator_default.json), the conv baseline's step
200 ms in one process and 85 ms in the next against 101 and 92 ms with the setting
(bench/train_step_profile.py --allocator default|keep).

This is process-wide allocator state, so it is set once, explicitly, by the training entry point
(`train.keep_freed_memory`, on by default) and never undone; the cost is that memory freed after
a step stays with the process (6-10% more peak memory above).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>: free heap top above this is returned to the system
M_MMAP_THRESHOLD = -3  # blocks at least this large get their own mmap
KEEP_BYTES = 1 << 30  # both thresholds: blocks up to 1 GiB come from, and stay in, the heap


def keep_freed_memory() -> bool:
    """Raise glibc malloc's mmap and trim thresholds to KEEP_BYTES. True when applied; False
    where the C library is not glibc (other platforms keep their allocator's behaviour)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, KEEP_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD,
                                                                        KEEP_BYTES))
