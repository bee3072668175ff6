"""``ActionWorldModel``: a trained action-conditioned model, ready to roll out and plan."""

from __future__ import annotations

import torch

from monde.errors import ConfigError, DataError
from monde.jepa.action_model import ActionJEPA, ActionModelConfig
from monde.planning.base import Bounds, Planner, PlanResult
from monde.planning.config import PlannerConfig, make_planner


class FollowPolicy(Planner):
    """``planner.name=policy``: no search. The model's goal-conditioned policy picks each
    transition's actions from the imagined latent, and the predictor imagines where they lead,
    over the horizon; one forward pass per transition. Costs come from ``cost_fn`` only for the
    record, so the plan does not depend on the cost's weights."""

    def __init__(self, net: ActionJEPA, horizon: int, bounds: Bounds):
        super().__init__(horizon, net.cfg.chunk_action_dim, bounds)
        self.net = net

    def _plan(self, cost_fn, init: torch.Tensor) -> tuple[torch.Tensor, float, int]:
        z, z_goal = cost_fn.start, cost_fn.goal  # set by ActionWorldModel.cost_fn
        steps = []
        with torch.no_grad():
            for _ in range(self.horizon):
                a = self.bounds.clamp(self.net.act(z, z_goal).float())
                steps.append(a)
                z = self.net.predict(z, a)
        plan = torch.cat(steps, dim=0).cpu()  # [H, k*A]
        return plan, float(cost_fn(plan[None])[0]), 0


class ActionWorldModel:
    """Encode observations, imagine the latents that actions lead to, and plan toward a goal.

    Actions given to and returned by this object are per environment step (``[..., A]``);
    the model groups them ``frameskip`` at a time into transitions.
    """

    def __init__(self, net: ActionJEPA, meta: dict | None = None):
        self.net = net.eval().requires_grad_(False)  # gradient planning must not touch weights
        self.meta = meta or {}
        world = self.meta.get("world_config", {})
        # Two-Rooms limits the norm of a displacement; Reacher, PushT and PointMaze clip each
        # action component to [-1, 1].
        self.box_actions = self.meta.get("world") in ("reacher", "pusht", "pointmaze")
        self.max_action_norm = 1.0 if self.box_actions else float(
            world.get("max_speed", net.cfg.action_scale))

    @property
    def config(self) -> ActionModelConfig:
        return self.net.cfg

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    # ------------------------------------------------------------------ encode / predict
    def _images(self, obs, what: str = "obs") -> torch.Tensor:
        c = self.config
        x = torch.as_tensor(obs)
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4 or tuple(x.shape[1:]) != (c.channels, c.size, c.size):
            raise DataError(f"{what} must be images [N, {c.channels}, {c.size}, {c.size}] (or one "
                            f"[{c.channels}, {c.size}, {c.size}]) like the model's training data; "
                            f"got shape {tuple(x.shape)}")
        return x.to(self.device)

    @torch.no_grad()
    def encode(self, obs, proprio=None) -> torch.Tensor:
        """Latents ``[N, D]`` of images ``[N, C, H, W]`` or ``[C, H, W]`` (uint8 or float 0–1)."""
        x = self._images(obs)
        p = None if proprio is None else torch.as_tensor(proprio, dtype=torch.float32,
                                                         device=self.device).reshape(len(x), -1)
        return self.net.encode(x, p)

    def _transitions(self, actions) -> torch.Tensor:
        """Per-step actions ``[N, H*k, A]`` → transition actions ``[N, H, k*A]``."""
        c = self.config
        a = torch.as_tensor(actions, dtype=torch.float32, device=self.device)
        if a.dim() == 2:
            a = a.unsqueeze(0)
        if a.dim() != 3 or a.shape[-1] != c.action_dim:
            raise DataError(f"actions must be [N, steps, {c.action_dim}] (this model's action "
                            f"size is {c.action_dim}); got shape {tuple(a.shape)}")
        if a.shape[1] % c.frameskip:
            raise DataError(f"the number of steps ({a.shape[1]}) must be a multiple of the "
                            f"model's frameskip ({c.frameskip})")
        return a.reshape(a.shape[0], -1, c.frameskip * c.action_dim)

    @torch.no_grad()
    def rollout(self, z0: torch.Tensor, actions) -> torch.Tensor:
        """Imagined latents ``[N, H, D]``, one per transition of ``actions [N, H*k, A]``.

        ``z0`` is ``[N, D]`` or ``[D]`` (broadcast to all ``N`` candidate sequences), so
        thousands of candidates roll out in one batched call.
        """
        a = self._transitions(actions)
        z0 = z0.to(self.device).reshape(-1, self.config.state_dim).expand(a.shape[0], -1)
        return self.net.rollout(z0, a)

    @torch.no_grad()
    def decode_proprio(self, z: torch.Tensor) -> torch.Tensor:
        """Proprioception read off latents (e.g. positions along an imagined rollout)."""
        return self.net.decode_proprio(z.to(self.device))

    # ------------------------------------------------------------------ planning
    def cost_fn(self, z: torch.Tensor, z_goal: torch.Tensor, cfg: PlannerConfig,
                goal_proprio: torch.Tensor | None = None):
        """Cost of candidate plans ``[N, H, A or k*A]``: latent distance to ``z_goal``."""
        c = self.config

        def cost(plan: torch.Tensor) -> torch.Tensor:
            a = plan.repeat_interleave(c.frameskip, dim=1) if cfg.holds else plan.reshape(
                plan.shape[0], -1, c.action_dim)
            a = self._project(a).reshape(plan.shape[0], plan.shape[1], -1)
            z0 = z.expand(plan.shape[0], -1)
            if c.ensemble > 1:
                every = self.net.rollout_ensemble(z0, a)  # [K, N, H, D]
                zs = every.mean(0)
                d = (every - z_goal).pow(2).sum(-1).mean(0)  # members' mean distance, [N, H]
                # Disagreement: mean squared distance of the members from their mean, [N, H].
                d = d + cfg.uncertainty_weight * (every - zs).pow(2).sum(-1).mean(0)
            else:
                zs = self.net.rollout(z0, a)  # [N, H, D]
                d = (zs - z_goal).pow(2).sum(-1)  # [N, H]
            total = d[:, -1] if cfg.cost == "final" else d.mean(1) + d[:, -1]
            if cfg.proprio_weight and goal_proprio is not None:
                pp = self.net.decode_proprio(zs[:, -1])
                total = total + cfg.proprio_weight * (pp - goal_proprio).pow(2).sum(-1)
            return total

        cost.start, cost.goal = z, z_goal  # what a policy-following planner starts from and aims at
        return cost

    def _project(self, a: torch.Tensor) -> torch.Tensor:
        """Bring per-step actions within the world's limits (what the world itself does)."""
        if self.box_actions:
            return a.clamp(-self.max_action_norm, self.max_action_norm)
        norm = a.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return a * torch.clamp(self.max_action_norm / norm, max=1.0)

    def plan(self, obs, goal_obs, planner: str | PlannerConfig = "mppi", *, init=None,
             proprio=None, goal_proprio=None) -> PlanResult:
        """Plan actions from observation ``obs`` to goal observation ``goal_obs``.

        Returns a :class:`PlanResult` whose ``actions`` are per environment step
        ``[horizon * frameskip, A]`` (already within the world's speed limit). ``init``, a warm
        start, is in the same per-step units: e.g. the previous ``result.actions`` shifted by
        the steps executed since (:func:`monde.planning.shift`).
        """
        cfg = planner if isinstance(planner, PlannerConfig) else PlannerConfig(name=planner)
        goal = self._images(goal_obs, "goal_obs")
        z = self.encode(obs, proprio)
        z_goal = self.encode(goal, goal_proprio)
        gp = None if goal_proprio is None else torch.as_tensor(goal_proprio, dtype=torch.float32)
        warm = None if init is None else self._planner_units(init, cfg)
        res = self.make_planner(cfg).plan(self.cost_fn(z, z_goal, cfg, gp), warm)
        res.actions = self.expand(res.actions, cfg)
        return res

    def make_planner(self, cfg: PlannerConfig):
        """The planner ``cfg`` names, over this model's transitions and action limits."""
        c = self.config
        dim = c.action_dim if cfg.holds else c.frameskip * c.action_dim
        bounds = Bounds.symmetric(self.max_action_norm, dim)
        if cfg.name == "policy":
            if self.net.policy is None:
                raise ConfigError("planner 'policy' needs a model with a goal-conditioned policy; "
                                  "train one with model.policy_steps=6000 (or choose mppi, cem, "
                                  "gradient)")
            cfg.validate()
            return FollowPolicy(self.net, cfg.horizon, bounds)
        return make_planner(cfg, dim, bounds)

    def _planner_units(self, actions, cfg: PlannerConfig) -> torch.Tensor:
        """Per-step actions ``[H*k, A]`` → the planner's ``[H, A]`` (held) or ``[H, k*A]``."""
        c = self.config
        a = self._transitions(actions)[0].cpu()  # [H, k*A], shape-checked
        return a[:, : c.action_dim] if cfg.holds else a

    def expand(self, plan: torch.Tensor, cfg: PlannerConfig) -> torch.Tensor:
        """A planner's ``[H, ·]`` sequence → per-step actions ``[H*k, A]`` within the limit."""
        c = self.config
        a = plan.repeat_interleave(c.frameskip, dim=0) if cfg.holds else plan.reshape(-1, c.action_dim)
        return self._project(a)

    def to(self, device) -> ActionWorldModel:
        self.net.to(device)
        return self

    def __repr__(self) -> str:
        c = self.config
        return (f"ActionWorldModel(world={self.meta.get('world')!r}, {c.channels}x{c.size}x{c.size}"
                f" images, latent {c.state_dim}, frameskip {c.frameskip}, "
                f"steps={self.meta.get('steps')})")
