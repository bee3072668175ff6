"""The momentum (EMA) target encoder of I-JEPA/V-JEPA."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``target ← m·target + (1 − m)·online`` over parameters; buffers are copied.

    ``target`` and ``online`` must have the same structure (e.g. one a deepcopy of the other).
    Momentum 0 copies the online weights; momentum 1 leaves the target unchanged.
    """
    tparams, oparams = dict(target.named_parameters()), dict(online.named_parameters())
    if tparams.keys() != oparams.keys():
        raise ValueError("ema_update: target and online modules have different parameters")
    if tparams:
        # One fused kernel per device/dtype group instead of a Python loop over tensors;
        # lerp computes end − (end − start)(1 − w) for w ≥ 0.5, so momentum 0 copies exactly.
        torch._foreach_lerp_(list(tparams.values()), list(oparams.values()), 1.0 - momentum)
    # Buffers (e.g. normalisation statistics) are not averaged: the target uses the online ones.
    for tb, ob in zip(target.buffers(), online.buffers()):
        tb.copy_(ob)


def momentum_schedule(step: int, total_steps: int, start: float = 0.996, end: float = 1.0) -> float:
    """Linear momentum from ``start`` at step 0 to ``end`` at ``total_steps``, then held at ``end``
    (as in I-JEPA/V-JEPA)."""
    if total_steps <= 0:
        return end
    frac = min(max(step / total_steps, 0.0), 1.0)
    return start + (end - start) * frac
