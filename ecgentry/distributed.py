"""Data-parallel training support: process-group set-up from the ``torchrun`` environment, per-epoch sharding
of the training examples and the reductions of metrics across ranks.

Started by ``torchrun --nproc_per_node N train_model.py ...`` the environment holds ``RANK``, ``WORLD_SIZE``
and ``LOCAL_RANK``; without it everything here degrades to a single process (world size 1, no process group).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)


@dataclass
class DistContext:
    """Where this process stands: ``rank`` of ``world_size`` processes, its ``device`` and whether it created
    the process group (and so must destroy it)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.enabled:
            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index or 0])
            else:
                dist.barrier()

    def close(self) -> None:
        """Barrier, then destroy the process group when this process created it."""
        if self.enabled:
            self.barrier()
            if self.owns_group and dist.is_initialized():
                dist.destroy_process_group()


def setup(device_name: str = "auto") -> DistContext:
    """Read ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and join the process group when the world has more than one
    process (NCCL on CUDA, Gloo on CPU). ``device_name`` is the config's device (``auto``, ``cpu``, ``cuda``)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    rank = int(os.environ.get("RANK", "0") or 0)
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)) or 0)
    use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda") or device_name.startswith("cuda:")
    if world <= 1:
        if device_name == "auto":
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            device = torch.device(device_name)
        return DistContext(0, 1, 0, device, False)
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
        owns = True
    logger.info("distributed training: rank %d of %d (%s, %s)", rank, world, backend, device)
    return DistContext(rank, world, local_rank, device, owns)


def epoch_shard(n: int, epoch: int, seed: int, rank: int, world_size: int, shuffle: bool = True) -> np.ndarray:
    """Indices (into ``n`` examples) this rank trains on in ``epoch``: one permutation seeded by ``(seed, epoch)``
    (the same on every rank), padded by wrapping around to a multiple of ``world_size`` so that every rank runs
    the same number of steps, then every ``world_size``-th index from ``rank``. Shards are disjoint except for
    the at most ``world_size - 1`` padding repeats."""
    order = np.random.default_rng([int(seed), int(epoch)]).permutation(n) if shuffle else np.arange(n)
    if world_size > 1 and n % world_size:
        pad = world_size - n % world_size
        order = np.concatenate([order, order[:pad]])
    return order[rank::world_size]


def eval_shard(n: int, rank: int, world_size: int) -> np.ndarray:
    """Indices of ``n`` evaluation examples for this rank (no padding: every example exactly once overall)."""
    return np.arange(rank, n, world_size)


def all_reduce_sums(ctx: DistContext, sums: dict[str, float], count: float) -> tuple[dict[str, float], float]:
    """Sum the per-rank loss sums (by name) and example counts over all ranks."""
    if not ctx.enabled:
        return sums, count
    keys = sorted(set().union(*all_gather_objects(ctx, sorted(sums))))
    values = torch.tensor([sums.get(k, 0.0) for k in keys] + [float(count)], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(values)
    out = values.cpu().tolist()
    return dict(zip(keys, out[:-1])), out[-1]


def all_gather_objects(ctx: DistContext, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in a single process)."""
    if not ctx.enabled:
        return [obj]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(ctx: DistContext, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not ctx.enabled:
        return obj
    box = [obj if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_true(ctx: DistContext, flag: bool) -> bool:
    """True when ``flag`` is true on every rank (keeps ranks in step when one must skip a batch)."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())
