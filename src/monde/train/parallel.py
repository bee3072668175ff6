"""Process groups and parallelism, applied from outside the model.

Model code is single-device. :func:`parallelize` wraps it in DDP or shards it with FSDP2, so
the same recipe runs on a laptop (one process) and on many GPUs or nodes through ``torchrun``
(which sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``). On CPU the backend is gloo; on CUDA
it is NCCL.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from typing import Literal

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class ParallelConfig:
    """How to spread training over processes."""

    strategy: Literal["auto", "none", "ddp", "fsdp"] = "auto"
    """``auto``: DDP when launched with several processes, nothing otherwise; ``fsdp``: FSDP2
    (parameters, gradients and optimizer state sharded across processes)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """``auto`` picks CUDA when available."""


@dataclass
class DistInfo:
    """Where this process stands."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(cfg: ParallelConfig) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment (if any)."""
    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        # A process that exits with its group alive can abort (SIGABRT) at interpreter
        # shutdown: gloo's worker threads still hold tensors whose release needs the GIL of
        # an interpreter being torn down. Seen once in CI as a rank dying after a finished
        # run. Destroying the group while Python is still whole avoids it.
        atexit.register(shutdown_distributed)
    if world > 1 and device.type == "cpu":
        # torchrun on one machine gives each process all cores; oversubscribing them slows
        # every process down, so split the cores among the local processes.
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=device)


def parallelize(model: nn.Module, cfg: ParallelConfig, info: DistInfo) -> nn.Module:
    """Wrap ``model`` for data parallelism.

    Returns the module to call for the forward pass. With ``fsdp`` the model is sharded in
    place (FSDP2's ``fully_shard`` on every transformer block, then on the root) and returned
    as is; with ``ddp`` a ``DistributedDataParallel`` wrapper is returned.
    """
    strategy = cfg.strategy
    if strategy == "auto":
        strategy = "ddp" if info.distributed else "none"
    if strategy == "none" or not info.distributed:
        return model
    if strategy == "ddp":
        ids = [info.local_rank] if info.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)
    from torch.distributed.fsdp import fully_shard

    for module in model.modules():
        if hasattr(module, "blocks") and isinstance(module.blocks, nn.ModuleList):
            for block in module.blocks:
                fully_shard(block)
    fully_shard(model)
    return model


def shutdown_distributed() -> None:
    """Destroy the default process group, if there is one (safe to call more than once)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.barrier()


def all_reduce_mean(x: float, info: DistInfo) -> float:
    """Average a Python float over processes (for logging)."""
    if not info.distributed:
        return x
    t = torch.tensor([x], dtype=torch.float64)
    if info.device.type == "cuda":
        t = t.to(info.device)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size
