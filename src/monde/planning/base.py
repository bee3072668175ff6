"""The planner interface: minimise a cost over action sequences, from a warm start.

A cost function maps candidate action sequences ``[N, H, A]`` to costs ``[N]`` (lower is
better); a planner returns the best sequence it found as a :class:`PlanResult`. Planners know
nothing of models or worlds: :mod:`monde.planning.mpc` builds the cost from a world model
and a goal, and runs the receding-horizon loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

CostFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class PlanResult:
    """What a planner returns.

    Attributes:
        actions: ``[H, A]`` the best action sequence found.
        cost: its cost.
        iterations: optimisation iterations run.
        seconds: wall time of the call.
    """

    actions: torch.Tensor
    cost: float
    iterations: int
    seconds: float


@dataclass
class Bounds:
    """Per-dimension box bounds on actions: ``low [A]``, ``high [A]``."""

    low: torch.Tensor
    high: torch.Tensor

    @classmethod
    def symmetric(cls, limit: float, dim: int) -> Bounds:
        return cls(torch.full((dim,), -float(limit)), torch.full((dim,), float(limit)))

    def clamp(self, a: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(a, self.high.to(a)), self.low.to(a))

    @property
    def width(self) -> torch.Tensor:
        return self.high - self.low


class Planner:
    """Base class: subclasses implement :meth:`_plan`; :meth:`plan` checks shapes and times it."""

    def __init__(self, horizon: int, action_dim: int, bounds: Bounds, seed: int = 0):
        if horizon < 1 or action_dim < 1:
            raise ValueError("horizon and action_dim must be positive")
        if bounds.low.shape != (action_dim,) or bounds.high.shape != (action_dim,):
            raise ValueError(f"bounds must have shape [{action_dim}], got {tuple(bounds.low.shape)}")
        self.horizon, self.action_dim, self.bounds = horizon, action_dim, bounds
        self.generator = torch.Generator().manual_seed(seed)

    def plan(self, cost_fn: CostFn, init: torch.Tensor | None = None) -> PlanResult:
        """Minimise ``cost_fn`` over ``[H, A]`` sequences starting from ``init`` (or zeros)."""
        shape = (self.horizon, self.action_dim)
        if init is None:
            init = torch.zeros(shape)
        if tuple(init.shape) != shape:
            raise ValueError(f"init must have shape {list(shape)} (horizon, action_dim), got "
                             f"{list(init.shape)}")
        t0 = time.perf_counter()
        actions, cost, iters = self._plan(cost_fn, self.bounds.clamp(init.float()))
        return PlanResult(actions.detach(), float(cost), iters, time.perf_counter() - t0)

    def _plan(self, cost_fn: CostFn, init: torch.Tensor) -> tuple[torch.Tensor, float, int]:
        raise NotImplementedError

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn((n, self.horizon, self.action_dim), generator=self.generator)


def shift(plan: torch.Tensor, steps: int) -> torch.Tensor:
    """Warm start for the next MPC call: drop ``steps`` executed actions, repeat the last."""
    if steps >= plan.shape[0]:
        return plan[-1:].expand_as(plan).clone()
    return torch.cat([plan[steps:], plan[-1:].expand(steps, -1)], dim=0)
