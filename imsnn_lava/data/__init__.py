"""Datasets (MNIST, FashionMNIST): IDX files, a verified local cache, and numpy splits.

numpy + stdlib only (never torch): the deployment side and training both read data here.
"""

from imsnn_lava.data.datasets import (
    CLASS_NAMES,
    SPLITS,
    class_names,
    dataset_names,
    load_pair,
    load_split,
    split_indices,
)
from imsnn_lava.data.idx import read_idx, write_idx
from imsnn_lava.data.sources import (
    CHECKSUMS,
    FILES,
    FileStatus,
    dataset_dir,
    default_cache_dir,
    default_sources,
    fetch,
    sha256_file,
    verify,
)

__all__ = [
    "CHECKSUMS",
    "CLASS_NAMES",
    "FILES",
    "SPLITS",
    "FileStatus",
    "class_names",
    "dataset_dir",
    "dataset_names",
    "default_cache_dir",
    "default_sources",
    "fetch",
    "load_pair",
    "load_split",
    "read_idx",
    "sha256_file",
    "split_indices",
    "verify",
    "write_idx",
]
