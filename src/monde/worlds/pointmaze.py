"""PointMaze: gymnasium-robotics' force-driven point mass in a maze (MuJoCo), seen from above.

Needs the ``mujoco`` extra (``pip install 'monde[mujoco]'``, which brings ``gymnasium-robotics``)
and a headless OpenGL: monde sets ``MUJOCO_GL=egl`` unless you chose another backend. The maze,
the point and its physics are gymnasium-robotics' (``PointMaze_UMaze-v3`` by default: a U of
free cells in a 5 × 5 grid, 1 unit per cell, walls 0.5 high). monde renders with its own
top-down camera (shadows and reflections off), hides the goal marker (the goal is an *image*
of the point at the goal, as in DINO-WM), and exposes the state interface of the other
state-based worlds (:class:`~monde.worlds.reacher.Reacher`):

* a state is ``[x, y, ẋ, ẏ]`` (maze units, units/s);
* ``proprio(state) = [x, y, ẋ / 5, ẏ / 5]`` (5 units/s is the environment's speed cap);
* an action is the force on each axis in ``[-1, 1]``; one environment step is ``substeps``
  physics steps of 0.01 s with the action held (gymnasium-robotics' own step is one);
* success: the point within ``success_radius`` (gymnasium-robotics' 0.45) of the goal.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np

from monde.errors import ConfigError
from monde.worlds.mujoco_view import TopDownView, frame_with_goal, require_mujoco

MAX_SPEED = 5.0  # gymnasium-robotics clips the point's velocity to ±5 units/s per axis


@dataclass
class PointMazeConfig:
    """Maze, rendering and task settings of the PointMaze world."""

    maze: str = "PointMaze_UMaze-v3"
    """gymnasium-robotics environment whose maze and point are used."""
    size: int = 64
    """Side of the rendered RGB image, in pixels."""
    substeps: int = 5
    """Physics steps of 0.01 s per environment step (the action is held over them)."""
    success_radius: float = 0.45
    """Point-to-goal distance (maze units) that counts as reached."""
    cell_margin: float = 0.3
    """Sampled positions stay at least this far (units) from a free cell's edge."""

    def validate(self) -> None:
        if self.size < 16 or self.substeps < 1 or not 0 <= self.cell_margin < 0.5:
            raise ConfigError("pointmaze needs size ≥ 16, substeps ≥ 1 and 0 ≤ cell_margin < 0.5")


class PointMaze:
    """Batched (row by row) point-mass dynamics and top-down rendering; see the module docstring."""

    action_dim = 2
    proprio_dim = 4
    state_dim = 4

    def __init__(self, cfg: PointMazeConfig | None = None):
        self.cfg = cfg or PointMazeConfig()
        self.cfg.validate()
        gym, mujoco = require_mujoco("pointmaze")
        try:
            # Its import prints a notice about unrelated (Adroit) environments to stderr.
            with contextlib.redirect_stderr(io.StringIO()):
                import gymnasium_robotics
        except ImportError as e:
            raise ConfigError("the pointmaze world needs gymnasium-robotics: pip install "
                              "'monde[mujoco]'") from e
        gym.register_envs(gymnasium_robotics)
        try:
            env = gym.make(self.cfg.maze, continuing_task=True)
        except gym.error.Error as e:
            raise ConfigError(f"unknown maze {self.cfg.maze!r} ({e}); e.g. PointMaze_UMaze-v3, "
                              "PointMaze_Medium-v3") from e
        env.reset(seed=0)
        self.env = env.unwrapped
        self.point = self.env.point_env
        m = self.point.model
        m.site_rgba[self.env.target_site_id, 3] = 0.0  # the goal is shown as an image, not a marker
        maze = self.env.maze
        # Centres of the free cells, in maze units (gymnasium-robotics' own cell → xy mapping).
        grid = np.asarray(maze.maze_map)
        self.free = np.array([maze.cell_rowcol_to_xy(np.array([r, c]))
                              for r, c in zip(*np.nonzero(grid == 0))], dtype=np.float64)
        self.scale = float(maze.maze_size_scaling)
        # The maze inside its outer walls, plus a quarter cell of wall, fills the frame (at the
        # model's field of view): the point is as large in the image as the maze allows.
        self._half = (0.5 * (max(maze.map_length, maze.map_width) - 2) + 0.25) * self.scale
        distance = self._half / np.tan(np.radians(m.vis.global_.fovy / 2))
        self.view = TopDownView(mujoco, m, self.cfg.size, distance)

    # ------------------------------------------------------------------ dynamics
    def clip_action(self, action: np.ndarray) -> np.ndarray:
        return np.clip(np.nan_to_num(np.asarray(action, dtype=np.float64).reshape(-1, 2)), -1, 1)

    def _set(self, state: np.ndarray) -> None:
        self.point.set_state(state[:2].copy(), np.clip(state[2:4], -MAX_SPEED, MAX_SPEED))

    def step(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Next states ``[N, 4]`` after one environment step (``substeps`` physics steps)."""
        states = np.asarray(states, dtype=np.float64).reshape(-1, 4)
        actions = self.clip_action(actions)
        out = np.empty_like(states)
        d = self.point.data
        for i in range(len(states)):
            self._set(states[i])
            for _ in range(self.cfg.substeps):  # gymnasium-robotics' step: cap speed, simulate
                d.qvel[:] = np.clip(d.qvel, -MAX_SPEED, MAX_SPEED)
                self.point.do_simulation(actions[i], 1)
            out[i, :2], out[i, 2:] = d.qpos[:2], d.qvel[:2]
        return out

    def success(self, states: np.ndarray, goals: np.ndarray) -> np.ndarray:
        s = np.asarray(states, dtype=np.float64).reshape(-1, 4)
        g = np.asarray(goals, dtype=np.float64).reshape(-1, 4)
        return np.linalg.norm(s[:, :2] - g[:, :2], axis=1) < self.cfg.success_radius

    def proprio(self, states: np.ndarray) -> np.ndarray:
        s = np.asarray(states, dtype=np.float64).reshape(-1, 4)
        return np.concatenate([s[:, :2], s[:, 2:] / MAX_SPEED], axis=1).astype(np.float32)

    # ------------------------------------------------------------------ sampling
    def sample_states(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """States at rest, uniform over the free cells and within each away from its walls."""
        half = (0.5 - self.cfg.cell_margin) * self.scale
        xy = self.free[rng.integers(len(self.free), size=n)] + rng.uniform(-half, half, (n, 2))
        return np.concatenate([xy, np.zeros((n, 2))], axis=1)

    def sample_task(self, rng: np.random.Generator, n: int,
                    min_distance: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
        """Start and goal states ``[n, 4]`` at rest, at least ``min_distance`` units apart (in
        a straight line; in the U-maze most such pairs need a turn around the inner wall)."""
        starts, goals = self.sample_states(rng, n), self.sample_states(rng, n)
        while True:
            near = np.linalg.norm(starts[:, :2] - goals[:, :2], axis=1) < min_distance
            if not near.any():
                return starts, goals
            goals[near] = self.sample_states(rng, int(near.sum()))

    # ------------------------------------------------------------------ rendering
    title = "PointMaze"

    @property
    def plot_extent(self) -> tuple[float, float, float, float]:
        """The rendered square in maze units (left, right, bottom, top), for plots."""
        return (-self._half, self._half, -self._half, self._half)

    @property
    def background(self) -> np.ndarray:
        """The maze without the point, ``[size, size, 3]`` uint8 (for plots)."""
        rgba = self.point.model.site_rgba
        site = np.flatnonzero(rgba[:, 3] > 0)  # the point's marker (the goal's is hidden)
        saved = rgba[site].copy()
        rgba[site, 3] = 0.0
        try:
            return self.render(np.concatenate([self.free[:1], np.zeros((1, 2))], axis=1))[0].transpose(1, 2, 0)
        finally:
            rgba[site] = saved

    def render(self, states: np.ndarray) -> np.ndarray:
        """Top-down RGB images ``[N, 3, size, size]`` uint8."""
        s = np.asarray(states, dtype=np.float64).reshape(-1, 4)
        return self.view.render(self.point.data, s, self._set)

    def render_rgb(self, state: np.ndarray, goal: np.ndarray | None = None) -> np.ndarray:
        """One ``[size, size, 3]`` frame; with a goal, the goal position is blended in faintly."""
        return frame_with_goal(self.render, state, goal)
