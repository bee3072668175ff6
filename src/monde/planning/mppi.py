"""MPPI: model-predictive path integral control (Williams et al.), as used by PLDM."""

from __future__ import annotations

import torch

from monde.planning.base import Bounds, CostFn, Planner


class MPPI(Planner):
    """Sample perturbations around the current plan; average them weighted by ``exp(−cost/λ)``.

    ``temperature`` (λ) is relative: costs are divided by their spread in each iteration, so
    one setting works whatever the scale of the latent distances. The first candidate is
    always the unperturbed plan.
    """

    def __init__(self, horizon: int, action_dim: int, bounds: Bounds, *, samples: int = 2000,
                 iterations: int = 3, noise: float = 0.3, temperature: float = 0.05,
                 seed: int = 0):
        """``noise`` is the perturbation std as a fraction of the bounds' width."""
        super().__init__(horizon, action_dim, bounds, seed)
        self.samples, self.iterations = samples, iterations
        self.noise, self.temperature = noise, temperature

    def _plan(self, cost_fn: CostFn, init: torch.Tensor):
        mu = init.clone()
        sigma = self.noise * self.bounds.width
        best, best_cost = mu.clone(), float("inf")
        for _ in range(self.iterations):
            cand = self.bounds.clamp(mu + sigma * self._noise(self.samples))
            cand[0] = mu
            cost = cost_fn(cand)
            i = int(torch.argmin(cost))
            if cost[i] < best_cost:
                best, best_cost = cand[i].clone(), float(cost[i])
            spread = (cost.max() - cost.min()).clamp_min(1e-9)
            w = torch.softmax(-(cost - cost.min()) / (self.temperature * spread), dim=0)
            mu = (w[:, None, None] * cand).sum(0)
        # The weighted mean is usually better than any sample; keep it if it is.
        final = float(cost_fn(mu[None])[0])
        if final <= best_cost:
            best, best_cost = mu, final
        return best, best_cost, self.iterations
