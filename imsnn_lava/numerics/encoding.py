"""Seeded, reproducible Bernoulli rate code (numpy only; shared by training and Lava).

A sample's spikes depend only on (seed, sample id, image, num_steps, max_rate): the same
arrays are produced for PyTorch training, the numpy reference and Lava's input process,
whatever the batch or replica a sample lands in.
"""

from __future__ import annotations

import numpy as np

PIXEL_MAX = 255.0


def sample_rng(seed: int, sample_id: int) -> np.random.Generator:
    """The generator of one sample: PCG64 seeded by the pair (seed, sample id)."""
    return np.random.default_rng([int(seed), int(sample_id)])


def encode(
    images: np.ndarray,
    sample_ids: np.ndarray,
    *,
    num_steps: int,
    max_rate: float,
    seed: int,
) -> np.ndarray:
    """Rate-code uint8 images into spikes.

    images: (N, ...) uint8; sample_ids: (N,) non-negative ints (e.g. dataset indices).
    Returns bool spikes of shape (num_steps, N, prod(image shape)): spike iff u < x * max_rate
    with x = pixel / 255 and u ~ U[0, 1) drawn per step and pixel from the sample's generator.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"images: expected dtype uint8, got {images.dtype}")
    n = images.shape[0]
    ids = np.asarray(sample_ids).reshape(-1)
    if ids.shape[0] != n:
        raise ValueError(f"sample_ids: expected {n} ids, got {ids.shape[0]}")
    flat = images.reshape(n, -1)
    p = flat.astype(np.float64) / PIXEL_MAX * float(max_rate)
    out = np.empty((num_steps, n, flat.shape[1]), dtype=bool)
    for j in range(n):
        u = sample_rng(seed, ids[j]).random((num_steps, flat.shape[1]))
        out[:, j, :] = u < p[j]
    return out
