"""One trainer for every recipe: ``train()`` runs ``train_step()`` until done.

It owns optimisation (AdamW, warm-up + cosine learning rate, cosine weight decay, gradient
clipping), precision (bf16 autocast), checkpoints (atomic; resume continues exactly),
metrics (JSONL) and progress. The model is any ``nn.Module`` whose forward takes
``(batch, step=, generator=)`` and returns a :class:`~monde.jepa.model.LossOutput`; the
data is any object with ``batch(step, batch_size, rank)`` returning a tensor or a dict of
named tensors. Both are deterministic
functions of the step, which is what makes a resumed run identical to an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from monde.cpu_memory import keep_freed_memory
from monde.jepa.diagnostics import collapse_stats
from monde.nn import Transformer
from monde.train import checkpoint as ckpt
from monde.train.config import TrainConfig
from monde.train.metrics import MetricsLogger, Progress, read_metrics
from monde.train.parallel import (
    DistInfo,
    all_reduce_mean,
    barrier,
    init_distributed,
    parallelize,
)
from monde.train.precision import resolve_precision
from monde.train.schedule import cosine, warmup_cosine
from monde.train.state import gather_state, load_state


class BatchSource(Protocol):
    """Deterministic data: the same ``(step, rank)`` always gives the same batch."""

    def batch(self, step: int, batch_size: int, rank: int = 0) -> torch.Tensor | dict: ...


@dataclass
class TrainResult:
    """Summary of a finished (or interrupted) run."""

    steps: int
    seconds: float
    final_loss: float
    effective_rank: float
    std_mean: float
    steps_per_second: float
    resumed_from: int
    interrupted: bool = False
    precision: str = "fp32"
    """What the run computed in (``auto`` resolved for the device)."""


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices only (not on biases, norms, tokens, embeddings)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 and "embed" not in name.split(".")[-1] else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


def _mask_generator(seed: int, step: int, rank: int) -> torch.Generator:
    # Masks depend only on (seed, step, rank): a resumed run draws the same masks.
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 1009 + rank)


def train(model: nn.Module, data: BatchSource, cfg: TrainConfig, run_dir: Path, *,
          config: dict, meta: dict, quiet: bool = False, export=None) -> TrainResult:
    """Train ``model`` on ``data`` into ``run_dir``, resuming from its latest checkpoint.

    Args:
        model: single-device model (see module docstring); moved and parallelised here.
        data: batch source.
        cfg: trainer config.
        run_dir: run folder (checkpoints, ``metrics.jsonl``).
        config: the whole resolved run config, saved in every checkpoint.
        meta: extra facts for the exported model (recipe, modality …).
        quiet: no progress display.
        export: optional ``callable(core_model, result)`` run on the main process at the end,
            e.g. writing the user-facing model folder.
    """
    info = init_distributed(cfg.parallel)
    # Resolved once: "auto" becomes bf16 or fp32 for this device, and an emulated bf16 warns once.
    cfg = replace(cfg, precision=resolve_precision(cfg.precision, info.device))
    if info.device.type == "cpu":
        keep_freed_memory()  # large temporaries are reused, not page-faulted every step
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    core = model.to(info.device)
    wrapped = parallelize(core, cfg.parallel, info)
    optimizer = build_optimizer(core, cfg)
    start = 0
    latest = ckpt.latest_checkpoint(run_dir)
    if latest is not None:
        state = ckpt.load_checkpoint(run_dir)
        load_state(core, optimizer, state.model, state.optimizer)
        if state.rng is not None:
            ckpt.restore_rng_state(state.rng)
        start = state.step
    if cfg.compile:
        # Compile the transformer stacks, not the whole objective: mask sizes and the step
        # number change every call, which would make a whole-model graph recompile each step.
        for module in core.modules():
            if isinstance(module, Transformer):
                module.compile(dynamic=True)
    logger = MetricsLogger(run_dir / "metrics.jsonl", resume_step=start) if info.is_main else None
    per_rank = max(1, cfg.batch_size // info.world_size)
    recent = deque(maxlen=max(1, 256 // per_rank))  # recent embeddings for diagnostics
    last_loss, stats = math.nan, {}
    t0, done, interrupted = time.perf_counter(), start, False
    progress = Progress(cfg.steps, initial=start, desc=meta.get("recipe", "train"),
                        quiet=quiet or not info.is_main)
    try:
        for step in range(start, cfg.steps):
            out = train_step(wrapped, optimizer, data, cfg, step, per_rank, info)
            core.after_step(step + 1, cfg.steps)
            recent.append(out.embeddings)
            last_loss = out.loss.item()
            done = step + 1
            if done % cfg.diag_every == 0 or done == cfg.steps:
                stats = collapse_stats(torch.cat(list(recent))).as_dict()
            if done % cfg.log_every == 0 or done == cfg.steps:
                values = {k: all_reduce_mean(float(v), info) for k, v in out.parts.items()}
                values["loss"] = all_reduce_mean(last_loss, info)
                values["lr"] = optimizer.param_groups[0]["lr"]
                values.update(stats)
                if logger:
                    logger.log(done, **values)
            progress.update(done, loss=last_loss, **({"rank": stats["effective_rank"]} if stats else {}))
            if done % cfg.checkpoint_every == 0 or done == cfg.steps:
                _save(run_dir, core, optimizer, done, config, meta, cfg, info)
            _failpoint(done)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.close()
        if logger:
            logger.close()
    seconds = time.perf_counter() - t0
    if done == start and start > 0:
        # Nothing left to train (a finished run rerun): report what its last log line says.
        rows = read_metrics(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
        if rows:
            last_loss = rows[-1].get("loss", math.nan)
            stats = {k: rows[-1][k] for k in ("effective_rank", "std_mean") if k in rows[-1]}
    result = TrainResult(
        steps=done, seconds=seconds, final_loss=last_loss,
        effective_rank=stats.get("effective_rank", math.nan), std_mean=stats.get("std_mean", math.nan),
        steps_per_second=(done - start) / max(seconds, 1e-9), resumed_from=start,
        interrupted=interrupted, precision=cfg.precision)
    if not interrupted and export is not None:
        full = gather_state(core, None, info)[0]
        if info.is_main:
            export(full, result)
    barrier(info)
    return result


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, data: BatchSource,
               cfg: TrainConfig, step: int, per_rank: int, info: DistInfo):
    """One optimizer step: schedules, forward under autocast, backward, clip, update."""
    # step + 1: the first update already gets a non-zero learning rate.
    lr = warmup_cosine(step + 1, cfg.steps, cfg.warmup_steps, cfg.lr, cfg.min_lr)
    wd = cosine(step, cfg.steps, cfg.weight_decay, cfg.weight_decay_end)
    for group in optimizer.param_groups:
        group["lr"] = lr
        if group["weight_decay"] > 0:
            group["weight_decay"] = wd
    x = _to_device(data.batch(step, per_rank, info.rank), info.device)
    gen = _mask_generator(cfg.seed, step, info.rank)
    # cfg.precision was resolved in train(): no hardware probe or warning on every step.
    with torch.autocast(info.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
        out = model(x, step=step, generator=gen)
    out.loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None],
                                       cfg.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return out


def _to_device(x, device: torch.device):
    """Move a batch (a tensor, or a dict of named tensors) to ``device``."""
    if isinstance(x, dict):
        return {k: v.to(device, non_blocking=True) for k, v in x.items()}
    return x.to(device, non_blocking=True)


def _failpoint(step: int) -> None:
    """Test hook: ``MONDE_TEST_KILL_AT_STEP=N`` SIGKILLs this process right after step N.

    It lets the test suite interrupt a run at an exact step, the way a power cut or an OOM
    killer would (no cleanup, no final checkpoint), and check that resuming loses nothing.
    """
    at = os.environ.get("MONDE_TEST_KILL_AT_STEP")
    if at is not None and int(at) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _save(run_dir: Path, core: nn.Module, optimizer, step: int, config: dict, meta: dict,
          cfg: TrainConfig, info: DistInfo) -> None:
    model_sd, optim_sd = gather_state(core, optimizer, info)
    if info.is_main:
        ckpt.save_checkpoint(run_dir, step=step, model=model_sd, optimizer=optim_sd,
                             config=config, rng=ckpt.capture_rng_state(), extra=meta,
                             keep=cfg.keep_checkpoints)
    barrier(info)
