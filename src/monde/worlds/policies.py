"""Data-collection policies for Two-Rooms (reward-free, offline data as in PLDM), and the
smooth random actions Reacher and PushT collect with.

* ``random``: a heading that drifts as a random walk, at a random speed per episode, so the
  agent wanders, bumps into walls and sometimes finds the door.
* ``noisy-expert``: heads to random waypoints — through the door when the waypoint is in the
  other room — with Gaussian noise on every action; it crosses the door far more often.

Both are vectorised over ``N`` agents and take a numpy ``Generator``, so a seed fixes the data.
"""

from __future__ import annotations

import numpy as np

from monde.errors import ConfigError
from monde.worlds.two_rooms import TwoRooms

POLICIES = ("random", "noisy-expert")


class RandomWalk:
    """Smoothly wandering headings: ``θ_{t+1} = θ_t + N(0, turn²)``, speed fixed per episode."""

    def __init__(self, world: TwoRooms, rng: np.random.Generator, n: int, turn: float = 0.6):
        self.world, self.rng, self.turn = world, rng, turn
        self.theta = rng.uniform(0, 2 * np.pi, n)
        self.speed = rng.uniform(0.3, 1.0, n) * world.cfg.max_speed

    def __call__(self, pos: np.ndarray) -> np.ndarray:
        self.theta = self.theta + self.rng.normal(0, self.turn, self.theta.shape)
        return self.speed[:, None] * np.stack([np.cos(self.theta), np.sin(self.theta)], 1)


class NoisyExpert:
    """Waypoint following through the door, plus noise (``noise`` × max speed, per axis)."""

    def __init__(self, world: TwoRooms, rng: np.random.Generator, n: int, noise: float = 0.5):
        self.world, self.rng, self.noise = world, rng, noise
        self.target = world.sample_positions(rng, n)

    def __call__(self, pos: np.ndarray) -> np.ndarray:
        w, c = self.world, self.world.cfg
        reached = np.linalg.norm(pos - self.target, axis=1) < c.success_radius
        if reached.any():
            self.target[reached] = w.sample_positions(self.rng, int(reached.sum()))
        other = w.room(pos) != w.room(self.target)
        aim = self.target.copy()
        # Aim at the doorway (at the current side's face) until lined up with it, then through.
        lined_up = np.abs(pos[:, 1] - c.door_y) < c.door_half * 0.6
        side = np.where(pos[:, 0] < w.center, -1.0, 1.0)
        door_face = np.stack([w.center + side * (c.wall_half + 2.0), np.full(len(pos), c.door_y)], 1)
        through = np.stack([w.center - side * (c.wall_half + 3.0), np.full(len(pos), c.door_y)], 1)
        aim[other] = np.where(lined_up[other, None], through[other], door_face[other])
        d = aim - pos
        step = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9) * c.max_speed
        return step + self.rng.normal(0, self.noise * c.max_speed, step.shape)


class SmoothRandom:
    """Temporally correlated random actions in ``[-1, 1]^A`` for any world with ``action_dim``:
    ``a_0 ~ U(-1, 1)``, ``a_{t+1} = clip(keep · a_t + scale · ε)``, ε ~ N(0, 1) — persistent
    enough to carry an arm or an agent across its workspace, varied enough to cover speeds and
    reversals."""

    def __init__(self, world, rng: np.random.Generator, n: int, keep: float = 0.8,
                 scale: float = 0.5):
        self.rng, self.keep, self.scale = rng, keep, scale
        self.action = rng.uniform(-1.0, 1.0, (n, world.action_dim))

    def __call__(self, states: np.ndarray) -> np.ndarray:
        eps = self.rng.normal(0.0, 1.0, self.action.shape)
        self.action = np.clip(self.keep * self.action + self.scale * eps, -1.0, 1.0)
        return self.action.copy()


def make_policy(name: str, world: TwoRooms, rng: np.random.Generator, n: int):
    if name == "random":
        return RandomWalk(world, rng, n)
    if name == "noisy-expert":
        return NoisyExpert(world, rng, n)
    raise ConfigError(f"unknown policy '{name}'; choose one of {', '.join(POLICIES)}")
