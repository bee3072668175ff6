"""Attentive probe on frozen token features (V-JEPA's evaluation head), and class metrics.

Absolute sine-cosine positions are added to the tokens (an encoder with rotary positions
alone makes features that do not say *where* they are, and the query must be able to pick
tokens by place and time), then a few self-attention blocks (rotary), then one learnable
query that cross-attends to the tokens, then a linear head. Only the probe trains; the encoder that made the features stays frozen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from monde.nn import Transformer
from monde.nn.posembed import sincos_embedding


@dataclass(frozen=True)
class ProbeConfig:
    """Attentive-probe size and training settings."""

    depth: int = 1
    """Self-attention blocks before the query."""
    heads: int = 4
    """Attention heads (``dim / heads`` must be divisible by 2 × position axes)."""
    epochs: int = 40
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.05
    seed: int = 0


class AttentiveProbe(nn.Module):
    """Tokens ``[B, N, D]`` at ``positions [N, P]`` → class logits ``[B, K]``."""

    def __init__(self, dim: int, classes: int, pos_axes: int, cfg: ProbeConfig):
        super().__init__()
        self.blocks = Transformer(dim, cfg.depth, cfg.heads, pos_axes) if cfg.depth else None
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.query, std=0.02)
        self.cross = nn.MultiheadAttention(dim, cfg.heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        x = x + sincos_embedding(positions, x.shape[-1]).to(x.dtype)
        if self.blocks is not None:
            x = self.blocks(x, positions)
        q = self.query.expand(x.shape[0], -1, -1)
        y, _ = self.cross(q, x, x, need_weights=False)
        return self.head(self.norm(y[:, 0]))


def fit_attentive_probe(x: torch.Tensor, y: np.ndarray, positions: torch.Tensor, classes: int,
                        cfg: ProbeConfig | None = None) -> AttentiveProbe:
    """Train a probe on features ``x [N, T, D]`` (float) with labels ``y [N]`` (int).

    With ``classes=0`` the probe is a regression head instead: ``y [N, K]`` float targets
    (standardise them first), mean squared error, ``K`` outputs.
    """
    cfg = cfg or ProbeConfig()
    g = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    regression = classes == 0
    probe = AttentiveProbe(x.shape[-1], y.shape[1] if regression else classes,
                           positions.shape[-1], cfg)
    opt = torch.optim.AdamW(probe.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    labels = torch.as_tensor(y, dtype=torch.float32 if regression else torch.long)
    n = len(x)
    steps_per_epoch = max(1, math.ceil(n / cfg.batch_size))
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / steps_per_epoch) * 0.5 * (1 + math.cos(math.pi * s / total)))
    probe.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(n, generator=g)
        for i in range(0, n, cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            out = probe(x[idx], positions)
            loss = F.mse_loss(out, labels[idx]) if regression else F.cross_entropy(out, labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return probe.eval()


@torch.no_grad()
def predict_scores(probe: AttentiveProbe, x: torch.Tensor, positions: torch.Tensor,
                   batch_size: int = 256) -> np.ndarray:
    """Class logits ``[N, K]`` of features ``x [N, T, D]``."""
    return torch.cat([probe(x[i:i + batch_size], positions)
                      for i in range(0, len(x), batch_size)]).numpy()


def class_metrics(scores: np.ndarray, y: np.ndarray, classes: int, k: int = 5) -> dict:
    """Top-1 accuracy, mean-class recall@k (Epic-Kitchens' anticipation metric), chance levels.

    Mean-class recall@k: for each class present in ``y``, the fraction of its samples whose
    true class is among the ``k`` highest scores; averaged over those classes.
    """
    y = np.asarray(y)
    top1 = float(np.mean(scores.argmax(1) == y))
    topk = np.argsort(-scores, axis=1)[:, :k]
    hit = (topk == y[:, None]).any(1)
    present = np.unique(y)
    recall = float(np.mean([hit[y == c].mean() for c in present]))
    return {"top1": round(top1, 4), f"recall@{k}": round(recall, 4),
            "chance_top1": round(float(np.max(np.bincount(y, minlength=classes)) / len(y)), 4),
            f"chance_recall@{k}": round(min(k, classes) / classes, 4), "n": int(len(y))}


def standardise_tokens(xtr: torch.Tensor, xte: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel z-scores of tokens ``[N, n, D]`` with the training set's statistics.

    For the frame-causal families (video and audio): a CNN's raw output scale differs by orders of magnitude
    between a trained network and a randomly initialised one (at init, clip-to-clip variation
    is ~1/40 of the per-token spread), which leaves the probe predicting the majority class on
    random features; standardising both alike makes the comparison about content, not scale.
    """
    mean = xtr.mean((0, 1), keepdim=True)
    std = xtr.std((0, 1), keepdim=True).clamp_min(1e-8)
    return (xtr - mean) / std, (xte - mean) / std
