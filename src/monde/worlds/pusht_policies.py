"""Data-collection policies for PushT, vectorised over ``N`` agents.

* ``push``: :class:`PushPolicy`, a scripted pusher that keeps touching the block.
* ``random``: :class:`~monde.worlds.policies.SmoothRandom`, temporally correlated random
  actions (the agent rarely meets the block: ≈ 17% of 64-step episodes move it).
"""

from __future__ import annotations

import numpy as np

from monde.errors import ConfigError
from monde.worlds.policies import SmoothRandom
from monde.worlds.pusht import OUTLINE, STATE_DIM, PushT

POLICIES = ("push", "random")

_EDGE_A = OUTLINE
_EDGE_B = np.roll(OUTLINE, -1, axis=0)
_EDGE_LEN = np.linalg.norm(_EDGE_B - _EDGE_A, axis=1)
_EDGE_NORMAL = np.stack([_EDGE_B[:, 1] - _EDGE_A[:, 1], _EDGE_A[:, 0] - _EDGE_B[:, 0]], 1) / _EDGE_LEN[:, None]


def _rotate(p: np.ndarray, theta: np.ndarray) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.stack([c * p[:, 0] - s * p[:, 1], s * p[:, 0] + c * p[:, 1]], axis=1)


class PushPolicy:
    """A scripted pusher that makes lots of contact with the block.

    Each agent picks a random point on the T's outline (uniform along its length) and the
    outward normal there; it moves to ``standoff`` units outside that point (approach), then
    pushes inward along the normal for 3–8 steps at a random strength, then picks a new
    point. Gaussian noise (``noise``, in action units) is added to every action.
    """

    def __init__(self, world: PushT, rng: np.random.Generator, n: int, noise: float = 0.3,
                 standoff: float = 25.0, max_approach: int = 12):
        self.world, self.rng, self.n = world, rng, n
        self.noise, self.standoff, self.max_approach = noise, standoff, max_approach
        self.point = np.zeros((n, 2))
        self.normal = np.zeros((n, 2))
        self.pushing = np.zeros(n, bool)
        self.left = np.zeros(n, np.int64)  # steps left in the current phase
        self.strength = np.ones(n)
        self._pick(np.arange(n))

    def _pick(self, idx: np.ndarray) -> None:
        k = len(idx)
        if not k:
            return
        edge = self.rng.choice(len(_EDGE_LEN), size=k, p=_EDGE_LEN / _EDGE_LEN.sum())
        t = self.rng.random(k)[:, None]
        self.point[idx] = _EDGE_A[edge] + t * (_EDGE_B[edge] - _EDGE_A[edge])
        self.normal[idx] = _EDGE_NORMAL[edge]
        self.pushing[idx] = False
        self.left[idx] = self.max_approach
        self.strength[idx] = self.rng.uniform(0.5, 1.0, k)

    def __call__(self, states: np.ndarray) -> np.ndarray:
        s = np.asarray(states, dtype=np.float64).reshape(-1, STATE_DIM)
        max_move = self.world.cfg.max_move
        normal = _rotate(self.normal, s[:, 4])
        contact = self.world.block_points(s, self.point)
        approach = contact + self.standoff * normal
        # Approaching agents close enough to their stand-off point start pushing.
        arrived = ~self.pushing & (np.linalg.norm(s[:, :2] - approach, axis=1) < 8.0)
        self.pushing |= arrived
        self.left[arrived] = self.rng.integers(3, 9, int(arrived.sum()))
        act = np.clip((approach - s[:, :2]) / max_move, -1.0, 1.0)
        act[self.pushing] = -normal[self.pushing] * self.strength[self.pushing, None]
        act = act + self.rng.normal(0.0, self.noise, act.shape)
        self.left -= 1
        self._pick(np.flatnonzero(self.left <= 0))
        return np.clip(act, -1.0, 1.0)


def make_pusht_policy(name: str, world: PushT, rng: np.random.Generator, n: int):
    """A data-collection policy for ``n`` agents: ``"push"`` (scripted) or ``"random"``."""
    if name == "push":
        return PushPolicy(world, rng, n)
    if name == "random":
        return SmoothRandom(world, rng, n)
    raise ConfigError(f"unknown pusht policy '{name}'; choose one of {', '.join(POLICIES)}")
