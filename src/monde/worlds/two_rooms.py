"""Two-Rooms: a point agent in a square arena split by a wall with one door.

The navigation world of PLDM and eb_jepa, written for speed: the physics and the renderer are
numpy and vectorised over a batch of agents, so collecting 100k transitions takes about a
second. :class:`TwoRooms` holds the dynamics; :class:`TwoRoomsEnv` (in
:mod:`monde.worlds.gym_envs`) wraps one agent in the Gymnasium API.

Conventions
-----------
* Positions are in pixels of the ``size × size`` top-down image: ``(0, 0)`` is the top-left
  corner, ``x`` grows to the right, ``y`` downward. The agent is a point for collisions and a
  small Gaussian blob in the image.
* The wall is the vertical slab ``|x − size/2| < wall_half``; the door is the gap
  ``|y − door_y| < door_half`` in it. The arena border keeps the agent in
  ``[margin, size − margin]``.
* An action is a 2-D displacement in pixels per step; its norm is clipped to ``max_speed``
  (PLDM's 2.45). A move that would enter the wall outside the door stops at the wall's face
  and keeps its other component (the agent slides along the wall).
* Observations: a ``[1, size, size]`` uint8 image (walls grey, agent white) and the
  proprioception ``(x, y)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monde.errors import ConfigError

WALL_LEVEL = 96  # grey of the walls in the 0–255 image
AGENT_LEVEL = 255


@dataclass
class TwoRoomsConfig:
    """Geometry and dynamics of the Two-Rooms world."""

    size: int = 64
    """Side of the square arena and of its top-down image, in pixels."""
    wall_half: float = 1.5
    """Half-thickness of the dividing wall."""
    door_y: float = 32.0
    """Centre of the door along ``y``."""
    door_half: float = 5.0
    """Half-width of the door (the gap is ``2 * door_half`` pixels)."""
    margin: float = 2.0
    """The agent stays this far from the arena's border."""
    max_speed: float = 2.45
    """Largest displacement per step (actions are clipped to this norm)."""
    agent_sigma: float = 1.2
    """Width (standard deviation, pixels) of the agent's blob in the image."""
    success_radius: float = 4.5
    """The goal is reached within this distance."""

    def validate(self) -> None:
        if self.size < 16:
            raise ConfigError("two-rooms: size must be at least 16 pixels")
        if self.max_speed >= 2 * self.wall_half:
            # A step longer than the wall is thick could jump over it.
            raise ConfigError("two-rooms: max_speed must be smaller than the wall thickness "
                              f"(2 * wall_half = {2 * self.wall_half})")
        if not 0 < self.door_half < self.size / 2:
            raise ConfigError("two-rooms: door_half must be in (0, size/2)")


class TwoRooms:
    """Vectorised Two-Rooms dynamics, rendering and task sampling.

    All methods take and return batches: positions ``[N, 2]`` (float64), actions ``[N, 2]``.
    """

    def __init__(self, cfg: TwoRoomsConfig | None = None):
        self.cfg = cfg or TwoRoomsConfig()
        self.cfg.validate()
        c = self.cfg
        self.center = c.size / 2
        self.lo, self.hi = c.margin, c.size - c.margin
        # The static layer of the image (border and wall), drawn once.
        ys, xs = np.mgrid[0:c.size, 0:c.size] + 0.5
        wall = (np.abs(xs - self.center) < c.wall_half) & (np.abs(ys - c.door_y) >= c.door_half)
        border = (xs < 1) | (ys < 1) | (xs > c.size - 1) | (ys > c.size - 1)
        self.background = np.where(wall | border, WALL_LEVEL, 0).astype(np.float32)
        self._grid = np.arange(c.size, dtype=np.float32) + 0.5

    # ------------------------------------------------------------------ dynamics
    def clip_action(self, action: np.ndarray) -> np.ndarray:
        """Scale actions ``[N, 2]`` whose norm exceeds ``max_speed`` back onto that norm."""
        a = np.nan_to_num(np.asarray(action, dtype=np.float64).reshape(-1, 2))
        norm = np.linalg.norm(a, axis=1, keepdims=True)
        return a * np.minimum(1.0, self.cfg.max_speed / np.maximum(norm, 1e-12))

    def in_wall(self, pos: np.ndarray) -> np.ndarray:
        """``[N]`` bool: inside the wall slab and outside the door."""
        c = self.cfg
        return (np.abs(pos[:, 0] - self.center) < c.wall_half) & (np.abs(pos[:, 1] - c.door_y) >= c.door_half)

    def step(self, pos: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Next positions ``[N, 2]`` after actions ``[N, 2]`` (clipped to ``max_speed``)."""
        c = self.cfg
        pos = np.asarray(pos, dtype=np.float64).reshape(-1, 2)
        new = np.clip(pos + self.clip_action(action), self.lo, self.hi)
        in_slab_before = np.abs(pos[:, 0] - self.center) < c.wall_half
        # Inside the doorway the door's frame bounds y; elsewhere the wall's faces bound x.
        in_slab_after = np.abs(new[:, 0] - self.center) < c.wall_half
        frame = in_slab_before & in_slab_after
        new[frame, 1] = np.clip(new[frame, 1], c.door_y - c.door_half + 1e-6, c.door_y + c.door_half - 1e-6)
        blocked = self.in_wall(new)
        left = pos[:, 0] < self.center
        face = np.where(left, self.center - c.wall_half - 1e-6, self.center + c.wall_half + 1e-6)
        new[blocked, 0] = face[blocked]
        return new

    def room(self, pos: np.ndarray) -> np.ndarray:
        """``[N]`` int: 0 for the left room, 1 for the right (the doorway counts by its half)."""
        return (np.asarray(pos)[:, 0] >= self.center).astype(np.int64)

    def proprio(self, pos: np.ndarray) -> np.ndarray:
        """Proprioception ``[N, 2]`` of agents at ``pos``: the position itself."""
        return np.asarray(pos, dtype=np.float32).reshape(-1, 2)

    def success(self, pos: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """``[N]`` bool: within ``success_radius`` of the goal."""
        return np.linalg.norm(np.asarray(pos) - np.asarray(goal), axis=-1) < self.cfg.success_radius

    # ------------------------------------------------------------------ sampling
    def sample_positions(self, rng: np.random.Generator, n: int, room: np.ndarray | None = None,
                         inset: float = 2.0) -> np.ndarray:
        """Uniform free positions ``[n, 2]``, in the given rooms (``[n]`` of 0/1) if any.

        ``inset`` keeps samples away from walls and the border (start and goal states of an
        evaluation should not sit inside a wall face).
        """
        c = self.cfg
        if room is None:
            room = rng.integers(0, 2, size=n)
        lo, hi = self.lo + inset, self.hi - inset
        xl = np.where(room == 0, lo, self.center + c.wall_half + inset)
        xh = np.where(room == 0, self.center - c.wall_half - inset, hi)
        x = xl + rng.random(n) * (xh - xl)
        y = lo + rng.random(n) * (hi - lo)
        return np.stack([x, y], axis=1)

    def sample_task(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Start and goal positions ``[n, 2]`` each, in opposite rooms (PLDM's evaluation)."""
        room = rng.integers(0, 2, size=n)
        return self.sample_positions(rng, n, room), self.sample_positions(rng, n, 1 - room)

    # ------------------------------------------------------------------ rendering
    def render(self, pos: np.ndarray) -> np.ndarray:
        """Top-down images ``[N, 1, size, size]`` uint8 of agents at ``pos [N, 2]``."""
        pos = np.asarray(pos, dtype=np.float32).reshape(-1, 2)
        s2 = 2 * self.cfg.agent_sigma ** 2
        gx = np.exp(-((self._grid[None, :] - pos[:, :1]) ** 2) / s2)  # [N, W]
        gy = np.exp(-((self._grid[None, :] - pos[:, 1:]) ** 2) / s2)  # [N, H]
        blob = gy[:, :, None] * gx[:, None, :] * AGENT_LEVEL
        img = np.maximum(self.background[None], blob)
        return np.rint(img).astype(np.uint8)[:, None]

    def render_rgb(self, pos: np.ndarray, goal: np.ndarray | None = None) -> np.ndarray:
        """One human-friendly ``[size, size, 3]`` uint8 frame: agent white, goal green."""
        gray = self.render(np.asarray(pos).reshape(1, 2))[0, 0]
        rgb = np.repeat(gray[:, :, None], 3, axis=2)
        if goal is not None:
            g = self.render(np.asarray(goal).reshape(1, 2))[0, 0].astype(np.float32)
            g = np.clip(g - self.background, 0, 255) / 255
            rgb = rgb.astype(np.float32)
            rgb[..., 1] = np.maximum(rgb[..., 1], 220 * g)
            rgb = rgb.astype(np.uint8)
        return rgb
