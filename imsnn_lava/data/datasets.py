"""MNIST and FashionMNIST splits as numpy arrays, and a lazily-built torch Dataset wrapper.

Loading checks what is cheap (the files exist, magic numbers, dims against data length,
28x28 images, image/label counts agree, labels in 0..9, the known split sizes) but does not
hash the files: checksums are verified when files are fetched and by ``imsnn data info``
(:func:`imsnn_lava.data.sources.verify`). No per-process cache or other hidden state is kept.

Splits: ``train`` and ``val`` partition the 60000-image training file with a fixed, seeded
permutation (``np.random.default_rng(seed=1234).permutation(60000)``: the first ``val_size``
indices are ``val``, the rest ``train``; each is returned in ascending index order).
``train-full`` is all 60000 training images and ``test`` the 10000 test images.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from imsnn_lava.data.idx import read_idx
from imsnn_lava.data.sources import CHECKSUMS, dataset_dir
from imsnn_lava.errors import DataError

__all__ = [
    "CLASS_NAMES",
    "IMAGE_SHAPE",
    "NUM_CLASSES",
    "SPLITS",
    "SPLIT_COUNTS",
    "class_names",
    "dataset_names",
    "load_pair",
    "load_split",
    "split_indices",
]

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
SPLITS = ("train", "val", "train-full", "test")
DEFAULT_VAL_SIZE = 5000
DEFAULT_SEED = 1234
#: Expected image counts of the training and test files of the real datasets.
SPLIT_COUNTS: Mapping[str, int] = {"train": 60000, "test": 10000}

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion-mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
}

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def dataset_names() -> tuple[str, ...]:
    """Names of the supported datasets (``imsnn data fetch NAME``)."""
    return tuple(CHECKSUMS)


def class_names(name: str) -> tuple[str, ...]:
    """The ten class names of dataset ``name``, indexed by label."""
    try:
        return CLASS_NAMES[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}") from None


def load_pair(
    images_path: str | os.PathLike, labels_path: str | os.PathLike
) -> tuple[np.ndarray, np.ndarray]:
    """Read and check an images file (N x 28 x 28) and its labels file (N, values 0..9)."""
    images = read_idx(images_path, kind="images")
    if images.shape[1:] != IMAGE_SHAPE:
        raise DataError(
            f"{images_path}: images have shape {images.shape}; expected (N, 28, 28)"
        )
    labels = read_idx(labels_path, kind="labels")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels"
        )
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise DataError(
            f"{labels_path}: label {int(labels[bad])} at index {bad} is outside 0..9"
        )
    return images, labels


def split_indices(
    n: int, val_size: int = DEFAULT_VAL_SIZE, seed: int = DEFAULT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices into ``n`` training images: a seeded split, each sorted ascending."""
    if not 0 <= val_size < n:
        raise DataError(f"val_size must be in 0..{n - 1} for {n} training images, not {val_size}")
    perm = np.random.default_rng(seed=seed).permutation(n)
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])


def load_split(
    name: str,
    split: str,
    cache_dir: str | os.PathLike | None = None,
    *,
    val_size: int = DEFAULT_VAL_SIZE,
    seed: int = DEFAULT_SEED,
    counts: Mapping[str, int] | None = SPLIT_COUNTS,
) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28], labels uint8 [N]) of one split of a cached dataset.

    ``split`` is ``train``, ``val``, ``train-full`` or ``test``. ``counts`` gives the image
    count each file must have (``{"train": 60000, "test": 10000}``; None skips the check).
    Raises DataError (saying to run ``imsnn data fetch NAME``) when the files are missing.
    """
    class_names(name)  # validates the name
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    which = "test" if split == "test" else "train"
    folder = dataset_dir(name, cache_dir)
    paths = [folder / f for f in _FILES[which]]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataError(
            f"{name} is not in {folder} (missing {', '.join(missing)}); "
            f"run `imsnn data fetch {name}`"
        )
    images, labels = load_pair(*paths)
    if counts is not None and which in counts and len(images) != counts[which]:
        raise DataError(
            f"{paths[0]}: {len(images)} images, expected {counts[which]}; "
            f"run `imsnn data fetch {name}` to re-fetch it"
        )
    if split in ("test", "train-full"):
        return images, labels
    train_idx, val_idx = split_indices(len(images), val_size, seed)
    idx = train_idx if split == "train" else val_idx
    return images[idx], labels[idx]


def split_sample_ids(split: str, n_images: int, *, val_size: int = DEFAULT_VAL_SIZE,
                     seed: int = DEFAULT_SEED) -> np.ndarray:
    """Stable ids of a split's samples (their index in the original IDX file), in load order.

    The rate encoder seeds each sample's spikes with its id, so a sample gets the same spikes
    whatever batch, replica or shard it lands in.
    """
    if split in ("test", "train-full"):
        return np.arange(n_images, dtype=np.int64)
    train_idx, val_idx = split_indices(n_images, val_size, seed)
    return (train_idx if split == "train" else val_idx).astype(np.int64)


def load_split_with_ids(name: str, split: str, cache_dir: str | os.PathLike | None = None, *,
                        val_size: int = DEFAULT_VAL_SIZE, limit: int = 0):
    """(images, labels, sample ids) of a split; `limit` > 0 keeps the first `limit` samples."""
    images, labels = load_split(name, split, cache_dir, val_size=val_size)
    total = 10000 if split == "test" else 60000
    ids = split_sample_ids(split, total, val_size=val_size)
    if limit > 0:
        images, labels, ids = images[:limit], labels[:limit], ids[:limit]
    return images, labels, ids
