"""SpikeSource: emits, for R replicas, one step of each replica's current sample per step."""

from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import OutPort
from lava.magma.core.process.process import AbstractProcess


class SpikeSource(AbstractProcess):
    """Input spikes of N samples on R replicas; sample j plays on replica j % R during
    sample period j // R (steps j // R * T + 1 .. (j // R + 1) * T of Lava's clock).

    Exactly one of
    - spikes: (N, T, n) bool, preloaded spike trains (kept bit-packed), or
    - images: (N, n) uint8 with sample_ids (N,), max_rate and seed: each period's spikes
      are generated at its first step with imsnn_lava.numerics.encoding.encode (the arrays PyTorch
      and the reference see).
    Replicas without a sample (the last period's padding) emit zeros, as does every step
    past the last period. Port: s_out (R, n) bool.
    """

    def __init__(self, *, shape: tuple[int, int], num_steps: int, num_samples: int,
                 spikes: np.ndarray | None = None, images: np.ndarray | None = None,
                 sample_ids: np.ndarray | None = None, max_rate: float = 1.0, seed: int = 0,
                 name: str | None = None) -> None:
        r, n = (int(x) for x in shape)
        num_steps, num_samples = int(num_steps), int(num_samples)
        if (spikes is None) == (images is None):
            raise ValueError("SpikeSource: give exactly one of spikes or images")
        if r < 1 or n < 1 or num_steps < 1 or num_samples < 0:
            raise ValueError(f"SpikeSource: invalid shape {shape}, num_steps {num_steps} or "
                             f"num_samples {num_samples}")
        packed = None
        if spikes is not None:
            spikes = np.asarray(spikes)
            if spikes.shape != (num_samples, num_steps, n):
                raise ValueError(f"SpikeSource: spikes must have shape (N, T, n) = "
                                 f"{(num_samples, num_steps, n)}, got {spikes.shape}")
            packed = np.packbits(spikes.astype(bool), axis=-1)
        else:
            images = np.ascontiguousarray(images)
            if images.dtype != np.uint8:
                raise ValueError(f"SpikeSource: images must be uint8, got {images.dtype}")
            images = images.reshape(images.shape[0], -1)
            if images.shape != (num_samples, n):
                raise ValueError(f"SpikeSource: images must have shape (N, n) = "
                                 f"{(num_samples, n)}, got {images.shape}")
            if sample_ids is None:
                sample_ids = np.arange(num_samples)
            sample_ids = np.asarray(sample_ids, dtype=np.int64).reshape(-1)
            if sample_ids.shape != (num_samples,):
                raise ValueError(f"SpikeSource: expected {num_samples} sample_ids, got "
                                 f"{sample_ids.shape[0]}")
        super().__init__(shape=(r, n), num_steps=num_steps, num_samples=num_samples,
                         packed=packed, images=images, sample_ids=sample_ids,
                         max_rate=float(max_rate), seed=int(seed), name=name)
        self.s_out = OutPort(shape=(r, n))
