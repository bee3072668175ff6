"""Cross-entropy method: refit a diagonal Gaussian to the elite samples, iteration after iteration."""

from __future__ import annotations

import torch

from monde.planning.base import Bounds, CostFn, Planner


class CEM(Planner):
    """CEM over action sequences (as in DINO-WM / V-JEPA 2-AC: 300 samples, 30 elites, 30 iterations).

    Each iteration samples ``samples`` sequences from ``N(μ, σ²)`` (clamped to the bounds),
    keeps the ``elites`` cheapest and refits ``μ, σ`` to them. The mean of the warm start is
    one of the candidates at every iteration, so a good previous plan is never lost.
    """

    def __init__(self, horizon: int, action_dim: int, bounds: Bounds, *, samples: int = 300,
                 elites: int = 30, iterations: int = 30, init_std: float = 0.5,
                 min_std: float = 0.02, seed: int = 0):
        """``init_std`` and ``min_std`` are fractions of the bounds' width."""
        super().__init__(horizon, action_dim, bounds, seed)
        if not 1 <= elites <= samples:
            raise ValueError("need 1 <= elites <= samples")
        self.samples, self.elites, self.iterations = samples, elites, iterations
        self.init_std, self.min_std = init_std, min_std

    def _plan(self, cost_fn: CostFn, init: torch.Tensor):
        mu = init.clone()
        std = torch.ones_like(mu) * self.init_std * self.bounds.width
        floor = self.min_std * self.bounds.width
        best, best_cost = mu.clone(), float("inf")
        for _ in range(self.iterations):
            cand = self.bounds.clamp(mu + std * self._noise(self.samples))
            cand[0] = mu
            cost = cost_fn(cand)
            top = torch.topk(cost, self.elites, largest=False).indices
            if cost[top[0]] < best_cost:
                best, best_cost = cand[top[0]].clone(), float(cost[top[0]])
            elite = cand[top]
            mu, std = elite.mean(0), torch.maximum(elite.std(0), floor)
        return best, best_cost, self.iterations
