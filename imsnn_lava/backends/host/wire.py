"""How values travel between Lava processes and the host (numpy only).

- Time: Lava's `time_step` starts at 1. With T steps per sample, global step ts belongs to
  sample period (ts - 1) // T at local step (ts - 1) % T; replica r of period p carries
  sample p * R + r.
- Var.get moves values one message each, so spike trains travel bit-packed, 32 to a value,
  and per-sample counts several to a value.
"""

from __future__ import annotations

import numpy as np


def period_and_step(time_step: int, num_steps: int) -> tuple[int, int]:
    """(sample period, local step) of Lava's 1-based global time step."""
    return (time_step - 1) // num_steps, (time_step - 1) % num_steps


# ---------------------------------------------------------------------------------------------
# bit packing: Var.get moves values one message each, so spike trains travel 32 to a value


WORD_BITS = 32


def packed_width(n: int) -> int:
    return -(-int(n) // WORD_BITS)


def pack_words(bits: np.ndarray) -> np.ndarray:
    """(..., n) bool -> (..., ceil(n / 32)) int64 words, bit i of word w = element 32 w + i."""
    bits = np.asarray(bits, dtype=bool)
    n = bits.shape[-1]
    width = packed_width(n)
    pad = width * WORD_BITS - n
    if pad:
        bits = np.concatenate([bits, np.zeros(bits.shape[:-1] + (pad,), bool)], axis=-1)
    by = np.packbits(bits, axis=-1, bitorder="little")
    return np.ascontiguousarray(by).view("<u4").astype(np.int64)


def unpack_words(words: np.ndarray, n: int) -> np.ndarray:
    """Inverse of pack_words (words may come back as float64 from Var.get)."""
    w = np.ascontiguousarray(np.asarray(words).astype(np.int64).astype("<u4"))
    bits = np.unpackbits(w.view(np.uint8), axis=-1, bitorder="little")
    return bits[..., :n].astype(bool)


# ---------------------------------------------------------------------------------------------
# count packing: per-sample spike counts (at most num_steps each) travel several to a value

COUNT_WORD_BITS = 52  # Var.get returns float64: integers below 2**53 are exact


def count_packing(num_steps: int) -> tuple[int, int]:
    """(bits per count, counts per value) for counts in 0..num_steps."""
    bits = max(1, int(num_steps).bit_length())
    return bits, max(1, COUNT_WORD_BITS // bits)


def pack_counts(counts: np.ndarray, bits: int, per: int) -> np.ndarray:
    """(..., n) counts in [0, 2**bits) -> (..., ceil(n / per)) int64, count j of value w at
    bits (j % per) * bits of value j // per."""
    counts = np.asarray(counts, dtype=np.int64)
    n = counts.shape[-1]
    width = -(-n // per)
    pad = width * per - n
    if pad:
        counts = np.concatenate([counts, np.zeros(counts.shape[:-1] + (pad,), np.int64)],
                                axis=-1)
    shifts = np.arange(per, dtype=np.int64) * bits
    return np.left_shift(counts.reshape(counts.shape[:-1] + (width, per)), shifts).sum(axis=-1)


def unpack_counts(values: np.ndarray, n: int, bits: int, per: int) -> np.ndarray:
    """Inverse of pack_counts (values may come back as float64 from Var.get)."""
    v = np.rint(np.asarray(values, dtype=np.float64)).astype(np.int64)
    shifts = np.arange(per, dtype=np.int64) * bits
    out = np.right_shift(v[..., None], shifts) & ((1 << bits) - 1)
    return out.reshape(v.shape[:-1] + (-1,))[..., :n]


# ---------------------------------------------------------------------------------------------
# read-out after a run


def get_ints(var, n: int | None = None) -> np.ndarray:
    """A Var's values as int64 (Var.get returns float64), the first n if given."""
    values = np.rint(var.get()).astype(np.int64)
    return values if n is None else values[:n]


def per_sample(data: np.ndarray, shape: tuple[int, int, int], n: int) -> np.ndarray:
    """(periods * T, R, ...) step records -> (T, N, ...) per sample; shape = (periods, T, R)."""
    p, t, r = shape
    data = data.reshape((p, t, r) + data.shape[2:])
    data = np.swapaxes(data, 0, 1).reshape((t, p * r) + data.shape[3:])
    return data[:, :n]
