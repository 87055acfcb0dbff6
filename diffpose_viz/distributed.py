"""Multi-process training with torch DistributedDataParallel, launched by `torchrun`.

`torchrun --standalone --nproc-per-node N -m diffpose_viz.cli train CONFIG --out DIR` sets RANK,
WORLD_SIZE, LOCAL_RANK; `init()` then joins the process group (nccl on CUDA, gloo on CPU). Without
those variables everything degrades to a single process (rank 0 of 1) and no group is created.

Sharding (`shard_indices`) is DistributedSampler's scheme over an index permutation: every rank
builds the same per-epoch permutation (seeded by seed and epoch, i.e. set_epoch semantics), pads
it to a multiple of the world size by wrapping, and takes every world-th element from its rank.
nn.DataParallel is never used.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init(device: str = "cpu") -> tuple[DistInfo, torch.device]:
    """Join the torchrun process group if launched by torchrun; returns (info, this rank's device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), torch.device(device)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested under torchrun but CUDA is not available")
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
        backend = "nccl"
    else:
        dev = torch.device(device)
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistInfo(rank, world, local), dev


def current() -> DistInfo:
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return DistInfo()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if current().enabled:
        dist.barrier()


def epoch_permutation(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The same permutation of range(n) on every rank for a given (seed, epoch)."""
    if not shuffle:
        return np.arange(n)
    g = torch.Generator().manual_seed(int(seed) * 100_003 + int(epoch))
    return torch.randperm(n, generator=g).numpy()


def shard_indices(order: np.ndarray, rank: int, world_size: int, pad: bool = True) -> np.ndarray:
    """DistributedSampler's split: pad by wrapping to a multiple of world_size, take order[rank::world]."""
    order = np.asarray(order)
    if world_size <= 1:
        return order
    if pad:
        total = -(-len(order) // world_size) * world_size
        if total > len(order):
            reps = -(-total // max(len(order), 1))
            order = np.concatenate([order] * reps)[:total]
    return order[rank::world_size]


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks (no-op single-process). Returns a new tensor."""
    out = values.detach().clone()
    if current().enabled:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def gather_objects(obj):
    """Rank 0 gets [obj of rank 0, rank 1, ...]; other ranks get None. Single process: [obj]."""
    info = current()
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size if info.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out
