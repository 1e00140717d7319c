"""Which torch device a run uses: train.device ("auto", "cpu", "cuda", "cuda:N") made concrete.

Under torchrun (WORLD_SIZE > 1) a CUDA run puts each process on cuda:LOCAL_RANK.
"""

from __future__ import annotations

import os

import torch

from imsnn_train.errors import ConfigError


def resolve(spec: str, local_rank: int | None = None) -> torch.device:
    """The device for `spec`; ConfigError naming the field when it is not available here."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if not spec.startswith("cuda"):
        raise ConfigError(f"train.device = {spec!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if not torch.cuda.is_available():
        built = "with" if torch.backends.cuda.is_built() else "without"
        raise ConfigError(f"train.device = {spec!r}: no CUDA device is available on this "
                          f"machine (torch {torch.__version__}, built {built} CUDA); "
                          "use train.device=cpu")
    count = torch.cuda.device_count()
    if spec == "cuda":
        index = local_rank if local_rank is not None else torch.cuda.current_device()
    else:
        index = int(spec.split(":", 1)[1])
    if index >= count:
        raise ConfigError(f"train.device = {spec!r}: cuda:{index} does not exist; this machine "
                          f"has {count} CUDA device(s) (cuda:0 .. cuda:{count - 1})")
    return torch.device("cuda", index)


def local_rank() -> int | None:
    """LOCAL_RANK under torchrun with more than one process, else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return int(os.environ.get("LOCAL_RANK", "0"))
    return None
