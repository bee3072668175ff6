"""Typed config of the trainer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from monde.train.parallel import ParallelConfig


@dataclass
class TrainConfig:
    """Optimisation, precision, checkpoints and logging of one run."""

    steps: int = 1000
    """Optimizer steps in the whole run."""
    batch_size: int = 32
    """Global batch size (split evenly over processes)."""
    lr: float = 1e-3
    """Peak learning rate (AdamW)."""
    min_lr: float = 1e-5
    """Learning rate at the end of the cosine decay."""
    warmup_steps: int = 100
    """Linear warm-up steps."""
    weight_decay: float = 0.04
    """Weight decay at the start (cosine schedule to ``weight_decay_end``)."""
    weight_decay_end: float = 0.1
    """Weight decay at the last step."""
    betas: tuple[float, float] = (0.9, 0.99)
    """AdamW betas."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0 disables)."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """``bf16``: autocast matmuls to bfloat16; weights stay fp32. ``auto``: bf16 where the
    hardware computes it natively (CUDA, CPUs with AVX-512 BF16 or AMX), else fp32 — emulated
    bf16 is many times slower than fp32 (:mod:`monde.train.precision`)."""
    compile: bool = False
    """Wrap the model in ``torch.compile``."""
    seed: int = 0
    """Seeds the model init, the data stream and the masks."""
    checkpoint_every: int = 100
    """Steps between checkpoints (a killed run loses at most this many)."""
    keep_checkpoints: int = 2
    """Checkpoints kept on disk."""
    log_every: int = 10
    """Steps between metric lines."""
    diag_every: int = 50
    """Steps between collapse diagnostics (embedding std, effective rank)."""
    threads: int = 0
    """CPU threads for PyTorch (0 = leave PyTorch's default)."""
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    """DDP / FSDP2 / single process."""
