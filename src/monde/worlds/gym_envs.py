"""Gymnasium environments over monde's built-in worlds (needs the ``sim`` extra).

The simulators themselves are plain numpy (:mod:`monde.worlds.two_rooms`); these classes only
give one agent the standard ``reset`` / ``step`` / ``render`` API, so that the worlds plug into
any Gymnasium tooling.
"""

from __future__ import annotations

import numpy as np

from monde.errors import ConfigError
from monde.worlds.two_rooms import TwoRooms, TwoRoomsConfig

try:
    import gymnasium as gym
    from gymnasium import spaces
except ImportError:  # pragma: no cover - exercised only without the extra
    gym = None


def _require_gymnasium() -> None:
    if gym is None:
        raise ConfigError("the Gymnasium environments need gymnasium: pip install 'monde[sim]'")


class TwoRoomsEnv(gym.Env if gym is not None else object):
    """One agent in :class:`TwoRooms`, with a goal in the other room.

    Observation: ``{"pixels": uint8 [1, size, size], "proprio": float32 [2]}``.
    Action: float32 ``[2]`` displacement (norm clipped to ``max_speed``).
    Reward: 1 on reaching the goal (the episode then terminates), else 0; ``truncated`` after
    ``max_steps``. ``info`` holds ``goal`` (position), ``goal_pixels`` and ``success``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, cfg: TwoRoomsConfig | None = None, max_steps: int = 200,
                 render_mode: str | None = "rgb_array"):
        _require_gymnasium()
        self.world = TwoRooms(cfg)
        self.max_steps = max_steps
        self.render_mode = render_mode
        s, v = self.world.cfg.size, self.world.cfg.max_speed
        self.observation_space = spaces.Dict({
            "pixels": spaces.Box(0, 255, (1, s, s), np.uint8),
            "proprio": spaces.Box(0.0, float(s), (2,), np.float32)})
        self.action_space = spaces.Box(-v, v, (2,), np.float32)
        self.pos = np.zeros((1, 2))
        self.goal = np.zeros((1, 2))
        self.t = 0

    def _obs(self) -> dict:
        return {"pixels": self.world.render(self.pos)[0],
                "proprio": self.pos[0].astype(np.float32)}

    def _info(self) -> dict:
        return {"goal": self.goal[0].copy(), "goal_pixels": self.world.render(self.goal)[0],
                "success": bool(self.world.success(self.pos, self.goal)[0])}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start in one room with the goal in the other; ``options`` may fix ``start``/``goal``."""
        super().reset(seed=seed)
        start, goal = self.world.sample_task(self.np_random, 1)
        options = options or {}
        self.pos = np.asarray(options.get("start", start), dtype=np.float64).reshape(1, 2)
        self.goal = np.asarray(options.get("goal", goal), dtype=np.float64).reshape(1, 2)
        self.t = 0
        return self._obs(), self._info()

    def step(self, action):
        self.pos = self.world.step(self.pos, np.asarray(action).reshape(1, 2))
        self.t += 1
        info = self._info()
        return (self._obs(), float(info["success"]), info["success"],
                self.t >= self.max_steps and not info["success"], info)

    def render(self):
        return self.world.render_rgb(self.pos[0], self.goal[0])


class PushTEnv(gym.Env if gym is not None else object):
    """One agent pushing the T in :class:`~monde.worlds.pusht.PushT` toward a goal pose.

    Observation: ``{"pixels": uint8 [3, size, size], "proprio": float32 [4]}`` (the agent's
    position and velocity, :meth:`PushT.proprio`). Action: float32 ``[2]`` in ``[-1, 1]`` (the
    agent's PD target moves by ``action * max_move``). ``reset`` samples a start and a goal
    ``goal_steps`` pushes away (DINO-WM's task); reward 1 when the block reaches the goal pose
    (the episode then terminates), ``truncated`` after ``max_steps``. ``info`` holds ``goal``
    (the goal state), ``goal_pixels``, ``success`` and the block's position/angle errors.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, cfg=None, max_steps: int = 50, goal_steps: int = 25,
                 render_mode: str | None = "rgb_array"):
        _require_gymnasium()
        from monde.worlds.pusht import PushT

        self.world = PushT(cfg)
        self.max_steps, self.goal_steps, self.render_mode = max_steps, goal_steps, render_mode
        s = self.world.cfg.size
        self.observation_space = spaces.Dict({
            "pixels": spaces.Box(0, 255, (3, s, s), np.uint8),
            "proprio": spaces.Box(-np.inf, np.inf, (4,), np.float32)})
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.state = np.zeros((1, self.world.state_dim))
        self.goal = np.zeros((1, self.world.state_dim))
        self.t = 0

    def _obs(self) -> dict:
        return {"pixels": self.world.render(self.state)[0],
                "proprio": self.world.proprio(self.state)[0]}

    def _info(self) -> dict:
        pos_err, ang_err = self.world.errors(self.state, self.goal)
        return {"goal": self.goal[0].copy(), "goal_pixels": self.world.render(self.goal)[0],
                "success": bool(self.world.success(self.state, self.goal)[0]),
                "position_error": float(pos_err[0]), "angle_error": float(ang_err[0])}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Sample a task; ``options`` may fix ``start`` and/or ``goal`` (states ``[10]``)."""
        super().reset(seed=seed)
        start, goal = self.world.sample_task(self.np_random, 1, self.goal_steps)
        options = options or {}
        self.state = np.asarray(options.get("start", start), dtype=np.float64).reshape(1, -1)
        self.goal = np.asarray(options.get("goal", goal), dtype=np.float64).reshape(1, -1)
        self.t = 0
        return self._obs(), self._info()

    def step(self, action):
        self.state = self.world.step(self.state, np.asarray(action).reshape(1, 2))
        self.t += 1
        info = self._info()
        return (self._obs(), float(info["success"]), info["success"],
                self.t >= self.max_steps and not info["success"], info)

    def render(self):
        return self.world.render_rgb(self.state[0], self.goal[0])


def make(world: str, **kwargs):
    """A Gymnasium environment by monde world name (``two-rooms``, ``pusht``)."""
    _require_gymnasium()
    if world == "two-rooms":
        return TwoRoomsEnv(**kwargs)
    if world == "pusht":
        return PushTEnv(**kwargs)
    raise ConfigError(f"unknown world '{world}'; built-in worlds with a Gymnasium API: "
                      "two-rooms, pusht")
