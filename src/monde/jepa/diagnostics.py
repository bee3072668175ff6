"""Cheap signs of representation collapse, for logging during training."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass
class CollapseStats:
    """Spread and dimensionality of a batch of embeddings."""

    std_mean: float
    """Mean over dimensions of the per-dimension standard deviation (0 when collapsed)."""
    std_min: float
    """Smallest per-dimension standard deviation (a dead dimension shows up here)."""
    effective_rank: float
    """Roy & Vetterli effective rank in ``[1, min(N, D)]`` (0 for constant embeddings)."""

    def as_dict(self) -> dict[str, float]:
        """``{"std_mean", "std_min", "effective_rank"}`` for a logger."""
        return asdict(self)


@torch.no_grad()
def collapse_stats(z: torch.Tensor) -> CollapseStats:
    """Collapse statistics of raw (not normalised) embeddings ``z [N, D]`` (or ``[..., D]``).

    The effective rank is ``exp(H(p))`` with ``p = σ / Σσ`` the normalised singular values of
    the centred matrix (Roy & Vetterli 2007): ``D`` for isotropic data, 1 for rank-1 data.
    """
    z = z.reshape(-1, z.shape[-1]).float()  # bf16 statistics would be too coarse
    n, d = z.shape
    std = z.std(dim=0, correction=1 if n > 1 else 0)
    s = torch.linalg.svdvals(z - z.mean(dim=0))
    # Centring constant data leaves rounding residue (~eps·|z| per entry), whose singular values
    # would give a meaningless rank; drop singular values below that scale.
    tol = torch.finfo(torch.float32).eps * max(n, d) * z.abs().max()
    s = s[s > tol]
    if s.numel() == 0:
        erank = 0.0
    else:
        p = s / s.sum()
        erank = float(torch.exp(-(p * p.log()).sum()))
    return CollapseStats(std_mean=float(std.mean()), std_min=float(std.min()),
                         effective_rank=erank)
