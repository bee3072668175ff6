"""Full (unsharded) model and optimizer state, the same way for 1 process, DDP and FSDP2.

PyTorch's distributed-checkpoint state-dict API gathers FSDP2 shards into full tensors and
keys optimizer state by parameter name (not by position), so a checkpoint written by 8 GPUs
loads on a laptop and vice versa.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from monde.train.parallel import DistInfo


def _options(distributed: bool, saving: bool) -> StateDictOptions:
    if not distributed:
        return StateDictOptions()
    return StateDictOptions(full_state_dict=True, cpu_offload=saving)


def gather_state(model: nn.Module, optimizer: torch.optim.Optimizer | None, info: DistInfo):
    """``(model_state, optimizer_state | None)`` as full CPU tensors (all ranks must call)."""
    opts = _options(info.distributed, saving=True)
    msd = {k: v.detach().cpu() for k, v in get_model_state_dict(model, options=opts).items()}
    osd = get_optimizer_state_dict(model, optimizer, options=opts) if optimizer else None
    return msd, osd


def load_state(model: nn.Module, optimizer: torch.optim.Optimizer | None, model_sd: dict,
               optim_sd: dict | None) -> None:
    """Load full state written by :func:`gather_state` (every rank reads the same files)."""
    opts = _options(dist.is_available() and dist.is_initialized(), saving=False)
    set_model_state_dict(model, model_sd, options=opts)
    if optimizer is not None and optim_sd is not None:
        set_optimizer_state_dict(model, optimizer, optim_sd, options=opts)
