"""Shards: contiguous parts of a sample selection, run separately and merged
(analysis.result.merge)."""

from __future__ import annotations

from imsnn_lava.errors import ImsnnError


def shard_range(total: int, index: int, count: int) -> tuple[int, int]:
    """[start, stop) of shard `index` (1-based) of `count` contiguous parts of `total` samples
    (np.array_split's sizes: the first total % count parts have one more)."""
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"shard {index}/{count}: need 1 <= K <= N")
    base, extra = divmod(int(total), int(count))
    k = index - 1
    start = k * base + min(k, extra)
    return start, start + base + (1 if k < extra else 0)


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N)."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ImsnnError(f"--shard {text!r}: expected K/N, e.g. 2/4") from None
    if n < 1 or not 1 <= k <= n:
        raise ImsnnError(f"--shard {text}: need 1 <= K <= N")
    return k, n
