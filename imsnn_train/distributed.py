"""Data-parallel training under torchrun: one model, DistributedDataParallel, one shard of every
global batch per process.

`torchrun --nproc-per-node N imsnn train ...` sets WORLD_SIZE, RANK, LOCAL_RANK and the
rendezvous; `init` then joins the process group (NCCL for CUDA, gloo for CPU). Every global
batch of train.batch_size images is split as DistributedSampler splits a dataset: process r
takes images r, r + N, r + 2N, ... of it, so the N shards of a step are exactly the batch a
single process would train on. Each process weights its mean loss by its share of the batch,
so the averaged gradient equals the single-process gradient of the whole batch (up to float
rounding), also for a last, smaller batch. Rank 0 alone evaluates, writes checkpoints, metrics
and logs, and shows progress bars.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Group:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def init(device: torch.device) -> Group:
    """Join torchrun's process group when there is more than one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Group()
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Group(rank=dist.get_rank(), world=dist.get_world_size())


def shutdown(group: Group) -> None:
    if group.active and dist.is_initialized():
        dist.destroy_process_group()


def shard(batch: np.ndarray, group: Group) -> tuple[np.ndarray, float]:
    """This process's images of a global batch and the weight of its mean loss (its share of
    the batch times the number of processes; 0 for an empty shard, which then runs the batch's
    first image so that every process takes part in the gradient all-reduce)."""
    if not group.active:
        return batch, 1.0
    mine = batch[group.rank::group.world]
    if len(mine) == 0:
        return batch[:1], 0.0
    return mine, len(mine) * group.world / len(batch)


def all_sum(values: list[float], group: Group, device: torch.device) -> list[float]:
    if not group.active:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def from_main(obj, group: Group):
    """Rank 0's `obj` on every process."""
    if not group.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(group: Group) -> None:
    if group.active:
        dist.barrier()


def wrap(net: torch.nn.Module, group: Group, device: torch.device) -> torch.nn.Module:
    """net as DistributedDataParallel (buffers, i.e. fixed mu and sigma, are never re-broadcast;
    learned mu and sigma are parameters, averaged like w)."""
    if not group.active:
        return net
    return torch.nn.parallel.DistributedDataParallel(
        net, device_ids=[device.index] if device.type == "cuda" else None,
        broadcast_buffers=False)
