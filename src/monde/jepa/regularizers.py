"""Anti-collapse regularisers on embeddings: SIGReg (LeJEPA) and VICReg's variance/covariance.

Both are functions of *batch statistics* (empirical characteristic functions, means,
covariances). Under data parallelism each process sees only its shard, so a per-rank loss is a
different (noisier, biased) objective than the loss of the whole batch. Here the statistics are
summed over ranks with an autograd-aware all-reduce, so every rank computes the loss of the
global batch, and the gradients are exactly those of one process on the concatenated batch.

Why the gradients come out exact with DDP. Let ``L(S)`` be the global loss of the summed
statistic ``S = Σ_r s_r`` (``s_r`` from rank r's shard). Every rank evaluates the same ``L``, so
each backpropagates the same ``∂L/∂S`` into the all-reduce, whose backward is again an
all-reduce (sum): rank r receives ``R · ∂L/∂S`` on ``s_r`` and so holds ``R · ∂L/∂θ|_r``, the
full-batch gradient restricted to its own samples, scaled by the world size R. DDP then
averages parameter gradients over ranks: ``(1/R) Σ_r R · ∂L/∂θ|_r = Σ_r ∂L/∂θ|_r = ∂L/∂θ``.
(A backward that returned ``∂L/∂S`` unreduced would give ``∂L/∂θ / R``.) A per-rank mean loss
such as the JEPA prediction term needs no collective: DDP's average already makes it the
global mean for equal shards. ``tests/test_distributed_regularizers.py`` checks all of this.

Every rank must call the regulariser each step (it issues collectives in forward and backward).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class RegOutput:
    """A regulariser's value."""

    loss: torch.Tensor
    """Scalar to add (times a weight) to the training loss."""
    parts: dict[str, torch.Tensor] = field(default_factory=dict)
    """Named detached scalars for logging."""


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward is a sum over ranks too.

    ``torch.distributed.nn.functional.all_reduce`` does the same and is correct in torch 2.13,
    but is deprecated there (FutureWarning) and its successor in ``_functional_collectives`` is
    private and only differentiable in recent versions; this is version independent.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Differentiable sum of ``x`` over all ranks (see the module docstring for the gradient)."""
    return _AllReduceSum.apply(x)


def batch_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over the first (batch) dimension, across every process under DDP: ``[1, ...]``."""
    s = x.sum(0, keepdim=True)
    n = torch.tensor([float(x.shape[0])], device=x.device)
    if is_distributed():
        packed = all_reduce_sum(torch.cat([s.flatten(), n]))
        s, n = packed[:-1].view_as(s), packed[-1:]
    return s / n


def is_distributed() -> bool:
    """True inside an initialised process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _seed(seed: int, step: int) -> int:
    """A 64-bit generator seed mixing ``(seed, step)`` (splitmix64), identical on all ranks."""
    x = (seed * 0x9E3779B97F4A7C15 + step) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


class SIGReg(nn.Module):
    """Sketched Isotropic Gaussian Regularisation (LeJEPA, Balestriero & LeCun 2025).

    Pushes the embedding distribution towards an isotropic standard Gaussian by testing random
    1-D projections: for each unit direction ``a_m`` the projections ``x = z a_m`` get the
    Epps–Pulley statistic

        ``N ∫ |φ_N(t) − exp(−t²/2)|² exp(−t²/2) dt``,  ``φ_N(t) = mean_n exp(i t x_n)``,

    over ``t ∈ [−t_max, t_max]``. The integrand is even (``φ_N(−t)`` is the conjugate of
    ``φ_N(t)``), so it is computed as twice a trapezoid rule on ``[0, t_max]``. For Gaussian
    data each statistic has expectation ``∫ (1 − e^{−t²}) e^{−t²/2} dt ≈ 1.06`` whatever ``N``;
    for any other distribution it grows like ``N``. The loss is the mean over slices.
    """

    def __init__(self, num_slices: int = 256, t_max: float = 3.0, knots: int = 17, seed: int = 0,
                 distributed: bool = True):
        """
        Args:
            num_slices: random directions ``M`` per step.
            t_max: the integral runs over ``[-t_max, t_max]``.
            knots: trapezoid knots on ``[0, t_max]``.
            seed: with the step, seeds the directions (the same on every rank).
            distributed: all-reduce the statistics when a process group is initialised.
        """
        super().__init__()
        if num_slices < 1 or knots < 2 or t_max <= 0:
            raise ValueError("SIGReg needs num_slices >= 1, knots >= 2 and t_max > 0")
        self.num_slices, self.seed, self.distributed = num_slices, seed, distributed
        t = torch.linspace(0.0, t_max, knots, dtype=torch.float64)
        w = torch.full((knots,), t_max / (knots - 1), dtype=torch.float64)
        w[[0, -1]] /= 2  # trapezoid end weights
        phi = torch.exp(-0.5 * t**2)  # the target characteristic function, also the weight
        # Not persistent: derived from the constructor arguments, kept out of checkpoints.
        self.register_buffer("t", t.float(), persistent=False)
        self.register_buffer("phi", phi.float(), persistent=False)
        self.register_buffer("weights", (2 * w * phi).float(), persistent=False)  # 2×: symmetry

    def directions(self, dim: int, step: int) -> torch.Tensor:
        """``[dim, M]`` unit-norm columns, drawn on CPU from ``(seed, step)``: the same on every
        process and every device, new at every step."""
        g = torch.Generator().manual_seed(_seed(self.seed, step))
        a = torch.randn(dim, self.num_slices, generator=g)
        return a / a.norm(dim=0, keepdim=True)

    def statistics(self, z: torch.Tensor, step: int = 0) -> torch.Tensor:
        """Per-slice Epps–Pulley statistics ``[M]`` of embeddings ``z [..., D]`` (all ranks)."""
        with torch.autocast(device_type=z.device.type, enabled=False):  # cos/sin need fp32
            z = z.reshape(-1, z.shape[-1]).float()
            x = z @ self.directions(z.shape[-1], step).to(z.device)  # [N, M]
            xt = x.unsqueeze(-1) * self.t  # [N, M, K]
            sums = torch.stack([xt.cos().sum(0), xt.sin().sum(0)])  # [2, M, K]
            n = torch.tensor(float(z.shape[0]), device=z.device)
            if self.distributed and is_distributed():
                # One collective: the (differentiable) sums and the count (no gradient).
                packed = all_reduce_sum(torch.cat([sums.flatten(), n.view(1)]))
                sums, n = packed[:-1].view_as(sums), packed[-1].detach()
            cos_mean, sin_mean = sums / n
            err = (cos_mean - self.phi) ** 2 + sin_mean**2  # |φ_N(t) − φ(t)|², [M, K]
            return n * (err @ self.weights)

    def forward(self, z: torch.Tensor, step: int = 0) -> RegOutput:
        """SIGReg of ``z [N, D]`` (or ``[..., D]``); ``step`` picks the directions."""
        stats = self.statistics(z, step)
        return RegOutput(loss=stats.mean(), parts={"sigreg_max": stats.max().detach()})


class VICReg(nn.Module):
    """VICReg's variance and covariance terms (Bardes et al. 2022) on embeddings ``z [N, D]``.

    ``std = mean_d relu(γ − sqrt(Var_d + eps))`` keeps every dimension spread out;
    ``cov = Σ_{i≠j} C_ij² / D`` (unbiased covariance ``C``) decorrelates them. The invariance
    term is the JEPA prediction loss, computed elsewhere.
    """

    def __init__(self, std_coeff: float = 25.0, cov_coeff: float = 1.0, gamma: float = 1.0,
                 eps: float = 1e-4, distributed: bool = True):
        """
        Args:
            std_coeff: weight of the variance term.
            cov_coeff: weight of the covariance term.
            gamma: target standard deviation per dimension.
            eps: added to the variance before the square root (keeps its gradient finite).
            distributed: all-reduce the statistics when a process group is initialised.
        """
        super().__init__()
        self.std_coeff, self.cov_coeff, self.gamma, self.eps = std_coeff, cov_coeff, gamma, eps
        self.distributed = distributed

    def forward(self, z: torch.Tensor, step: int = 0) -> RegOutput:
        """Variance + covariance loss of ``z [N, D]`` (``step`` is unused, for a shared call)."""
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.reshape(-1, z.shape[-1]).float()
            d = z.shape[-1]
            s1, n = z.sum(0), torch.tensor(float(z.shape[0]), device=z.device)
            sync = self.distributed and is_distributed()
            if sync:
                packed = all_reduce_sum(torch.cat([s1, n.view(1)]))
                s1, n = packed[:-1], packed[-1].detach()
            if z.shape[0] * (dist.get_world_size() if sync else 1) < 2:  # no device sync
                raise ValueError("VICReg needs at least 2 samples in the (global) batch")
            # Two passes (mean, then centred scatter) rather than Σz and Σzzᵀ in one: near
            # collapse the mean dwarfs the spread and E[zzᵀ] − μμᵀ cancels catastrophically
            # in float32, exactly where the variance hinge matters. It costs one more collective.
            zc = z - s1 / n
            scatter = zc.T @ zc  # [D, D]
            if sync:
                scatter = all_reduce_sum(scatter)
            cov = scatter / (n - 1)
            std = torch.sqrt(cov.diagonal() + self.eps)
            std_loss = torch.relu(self.gamma - std).mean()
            off = cov - torch.diag_embed(cov.diagonal())
            cov_loss = off.pow(2).sum() / d
        loss = self.std_coeff * std_loss + self.cov_coeff * cov_loss
        return RegOutput(loss=loss, parts={"vicreg_std": std_loss.detach(),
                                           "vicreg_cov": cov_loss.detach()})


def expected_gaussian_statistic(t_max: float = 3.0) -> float:
    """``∫_{−t_max}^{t_max} (1 − e^{−t²}) e^{−t²/2} dt``: SIGReg's expectation on N(0, I) data."""
    # Closed form via erf: ∫ e^{−a t²} over [−T, T] = sqrt(π/a) erf(sqrt(a) T).
    def gauss(a: float) -> float:
        return math.sqrt(math.pi / a) * math.erf(math.sqrt(a) * t_max)

    return gauss(0.5) - gauss(1.5)
