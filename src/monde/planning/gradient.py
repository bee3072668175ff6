"""Gradient planning: Adam on the action sequence through the differentiable world model."""

from __future__ import annotations

import torch

from monde.planning.base import Bounds, CostFn, Planner


class GradientPlanner(Planner):
    """Optimise ``restarts`` sequences in parallel (the warm start plus noisy copies) with Adam.

    Actions are projected onto the bounds after every step. Gradient descent alone gets stuck
    in local minima of latent distance (e.g. against a wall); the random restarts are the cheap
    remedy, and the best sequence over all steps and restarts is returned.
    """

    def __init__(self, horizon: int, action_dim: int, bounds: Bounds, *, restarts: int = 16,
                 steps: int = 30, lr: float = 0.1, init_noise: float = 0.3, seed: int = 0):
        """``lr`` and ``init_noise`` are fractions of the bounds' width."""
        super().__init__(horizon, action_dim, bounds, seed)
        self.restarts, self.steps, self.lr, self.init_noise = restarts, steps, lr, init_noise

    def _plan(self, cost_fn: CostFn, init: torch.Tensor):
        width = self.bounds.width
        start = init + self.init_noise * width * self._noise(self.restarts)
        start[0] = init
        # Optimise in units of the bounds' width so one learning rate fits every action scale.
        u = (self.bounds.clamp(start) / width).requires_grad_(True)
        opt = torch.optim.Adam([u], lr=self.lr)
        best, best_cost = init.clone(), float("inf")
        for _ in range(self.steps):
            with torch.enable_grad():
                cost = cost_fn(u * width)
                opt.zero_grad(set_to_none=True)
                cost.sum().backward()
            cost = cost.detach()
            i = int(torch.argmin(cost))
            if cost[i] < best_cost:
                best, best_cost = (u[i] * width).detach().clone(), float(cost[i])
            opt.step()
            with torch.no_grad():
                u.copy_(self.bounds.clamp(u * width) / width)
        with torch.no_grad():
            final = cost_fn(u * width)
        i = int(torch.argmin(final))
        if final[i] < best_cost:
            best, best_cost = (u[i] * width).detach().clone(), float(final[i])
        return best, best_cost, self.steps
