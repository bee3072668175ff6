"""Model-predictive control: plan, execute the first transitions, observe, plan again."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from monde.planning.base import shift
from monde.planning.config import PlannerConfig


@dataclass
class EpisodeResult:
    """One MPC episode.

    Attributes:
        success: the goal was reached within the budget.
        steps: environment steps taken.
        positions: ``[steps+1, S]`` true states visited (Two-Rooms: positions).
        plans: per plan, ``(step, imagined positions [H, 2])`` decoded from the predicted latents.
        plan_seconds: wall time of each planner call.
    """

    success: bool
    steps: int
    positions: np.ndarray
    plans: list[tuple[int, np.ndarray]] = field(default_factory=list)
    plan_seconds: list[float] = field(default_factory=list)


def run_episode(model, world, start: np.ndarray, goal: np.ndarray, cfg: PlannerConfig,
                budget: int, record_plans: bool = False) -> EpisodeResult:
    """Drive ``world`` from ``start`` to ``goal`` with ``model`` planning every few steps.

    Args:
        model: an :class:`~monde.jepa.action_world_model.ActionWorldModel`.
        world: a vectorised world with ``render(pos)``, ``step(pos, a)``, ``success(pos, goal)``
            (e.g. :class:`~monde.worlds.two_rooms.TwoRooms`); one agent is simulated.
        start, goal: states (Two-Rooms: ``[2]`` positions).
        cfg: planner settings (horizon, replanning period, cost).
        budget: most environment steps.
        record_plans: keep the imagined trajectory of every plan (for plots).
    """
    k = model.config.frameskip
    planner = model.make_planner(cfg)
    pos = np.asarray(start, dtype=np.float64).reshape(1, -1)
    goal = np.asarray(goal, dtype=np.float64).reshape(1, -1)
    uses_proprio = model.config.use_proprio

    def encode(state):
        return model.encode(world.render(state), world.proprio(state) if uses_proprio else None)

    z_goal = encode(goal)
    # The goal's proprioception (Two-Rooms: its position) feeds the optional proprio cost term.
    goal_proprio = (torch.as_tensor(world.proprio(goal)[0], dtype=torch.float32)
                    if cfg.proprio_weight else None)
    visited, plans, seconds = [pos[0].copy()], [], []
    warm, t = None, 0
    if world.success(pos, goal)[0]:
        return EpisodeResult(True, 0, np.stack(visited))
    while t < budget:
        z = encode(pos)
        t0 = time.perf_counter()
        res = planner.plan(model.cost_fn(z, z_goal, cfg, goal_proprio), warm)
        seconds.append(time.perf_counter() - t0)
        actions = model.expand(res.actions, cfg)
        if record_plans:
            imagined = model.rollout(z, actions[None])[0]
            plans.append((t, model.decode_proprio(imagined).cpu().numpy()))
        for a in actions[: cfg.replan_every * k].cpu().numpy():
            pos = world.step(pos, a[None])
            visited.append(pos[0].copy())
            t += 1
            if world.success(pos, goal)[0]:
                return EpisodeResult(True, t, np.stack(visited), plans, seconds)
            if t >= budget:
                break
        warm = shift(res.actions, cfg.replan_every)
    return EpisodeResult(False, t, np.stack(visited), plans, seconds)
