"""A map-style torch dataset over the numpy splits of imsnn_lava.data."""

from __future__ import annotations

import numpy as np


class TorchImageDataset:
    """A map-style torch dataset of (uint8 image tensor [28, 28], int label) pairs.

    torch is imported in ``__init__``, not at module level, so the numpy side (and the Lava
    CLI) never needs it. It does not subclass ``torch.utils.data.Dataset`` for that reason;
    ``DataLoader`` only needs ``__len__`` and ``__getitem__``, and instances pickle (for
    worker processes). The images are copied once into a tensor; the caller does any encoding.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        import torch

        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 [N, H, W], got {images.dtype} {images.shape}")
        if labels.shape != (len(images),):
            raise ValueError(f"labels must have shape ({len(images)},), got {labels.shape}")
        self.images = torch.from_numpy(np.array(images, dtype=np.uint8, order="C"))
        self.labels = torch.from_numpy(labels.astype(np.int64))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.images[index], int(self.labels[index])
