"""Typed planner settings and the factory that turns them into a :class:`Planner`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from monde.errors import ConfigError
from monde.planning.base import Bounds, Planner

PLANNERS = ("cem", "mppi", "gradient", "policy")


@dataclass
class PlannerConfig:
    """How to plan: the optimiser, its budget, the horizon and the cost."""

    name: Literal["cem", "mppi", "gradient", "policy"] = "mppi"
    """Optimiser: ``cem``, ``mppi`` or ``gradient`` (Adam on the actions); or ``policy``: no
    search, follow the model's goal-conditioned policy (a model trained with
    ``model.policy_steps`` > 0), rolled out in imagination over the horizon."""
    horizon: int = 12
    """Predicted transitions per plan (each spans the model's ``frameskip`` steps)."""
    samples: int = 256
    """Candidate sequences per iteration (CEM, MPPI); restarts for ``gradient`` are 1/16 of it."""
    iterations: int = 6
    """Iterations per plan (gradient: Adam steps)."""
    elites: int = 25
    """CEM: samples kept per iteration."""
    noise: float = 0.3
    """MPPI: perturbation std / CEM: initial std, as a fraction of the action range."""
    temperature: float = 0.05
    """MPPI: softmax temperature relative to the cost spread."""
    lr: float = 0.1
    """Gradient: Adam step as a fraction of the action range."""
    replan_every: int = 1
    """MPC: transitions executed before planning again."""
    hold: bool = True
    """Plan one action per transition, held for its ``frameskip`` steps (fewer unknowns)."""
    cost: Literal["final", "all"] = "all"
    """Latent distance to the goal at the ``final`` step, or summed over ``all`` steps."""
    proprio_weight: float = 0.0
    """Weight of the distance between decoded and goal proprioception (0: latents only)."""
    uncertainty_weight: float = 0.0
    """With an ensemble of predictors (``model.ensemble`` > 1): weight of their disagreement,
    added to the cost so that plans stay where the model knows the consequences (the goal
    distance is then the members' mean). Ignored by single-predictor models."""
    seed: int = 0
    """Seeds the planner's sampling."""

    @property
    def holds(self) -> bool:
        """Whether plans hold one action per transition (a policy gives every step's action)."""
        return self.hold and self.name != "policy"

    def validate(self) -> None:
        if self.name not in PLANNERS:
            raise ConfigError(f"unknown planner '{self.name}'; choose one of {', '.join(PLANNERS)}")
        if self.horizon < 1 or self.samples < 2 or self.iterations < 1:
            raise ConfigError("planner horizon, samples and iterations must be positive "
                              "(samples ≥ 2)")
        if self.uncertainty_weight < 0 or self.proprio_weight < 0:
            raise ConfigError("planner.uncertainty_weight and planner.proprio_weight must be ≥ 0")
        if not 1 <= self.replan_every <= self.horizon:
            raise ConfigError("planner.replan_every must be between 1 and the horizon")


def make_planner(cfg: PlannerConfig, action_dim: int, bounds: Bounds) -> Planner:
    """The planner ``cfg`` names, over ``[cfg.horizon, action_dim]`` sequences."""
    from monde.planning.cem import CEM
    from monde.planning.gradient import GradientPlanner
    from monde.planning.mppi import MPPI

    cfg.validate()
    if cfg.name == "policy":
        raise ConfigError("planner 'policy' follows a model's own policy: get it from the model "
                          "(ActionWorldModel.make_planner)")
    if cfg.name == "cem":
        return CEM(cfg.horizon, action_dim, bounds, samples=cfg.samples, elites=min(cfg.elites, cfg.samples),
                   iterations=cfg.iterations, init_std=cfg.noise, seed=cfg.seed)
    if cfg.name == "mppi":
        return MPPI(cfg.horizon, action_dim, bounds, samples=cfg.samples, iterations=cfg.iterations,
                    noise=cfg.noise, temperature=cfg.temperature, seed=cfg.seed)
    return GradientPlanner(cfg.horizon, action_dim, bounds, restarts=max(1, cfg.samples // 16),
                           steps=cfg.iterations, lr=cfg.lr, init_noise=cfg.noise, seed=cfg.seed)
