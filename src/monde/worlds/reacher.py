"""Reacher: Gymnasium's 2-link MuJoCo arm (``Reacher-v5``), seen from above, reaching a pose.

Needs the ``mujoco`` extra (``pip install 'monde[mujoco]'``) and a headless OpenGL: monde sets
``MUJOCO_GL=egl`` unless you chose another backend. The physics is Gymnasium's model and time
step; monde renders with its own top-down camera (shadows and reflections off), hides the
target sphere (the goal is an *image* of the arm at the goal pose, as in DINO-WM), and exposes
a state interface like :class:`~monde.worlds.two_rooms.TwoRooms`:

* a state is ``[q0, q1, q̇0, q̇1]`` (joint angles in radians, velocities in rad/s);
* ``proprio(state) = [cos q0, sin q0, cos q1, sin q1, q̇0 / 10, q̇1 / 10]``;
* an action is the two joint torques in ``[-1, 1]``;
* success: the fingertip within ``success_radius`` metres of the goal pose's fingertip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monde.worlds.mujoco_view import TopDownView, frame_with_goal, require_mujoco

LINKS = (0.1, 0.11)  # link lengths of Reacher-v5 (metres): shoulder→elbow, elbow→fingertip


@dataclass
class ReacherConfig:
    """Rendering and task settings of the Reacher world."""

    size: int = 64
    """Side of the rendered RGB image, in pixels."""
    camera_distance: float = 0.55
    """Distance of the top-down camera (the arm's reach fills about half the image)."""
    success_radius: float = 0.02
    """Fingertip-to-goal distance (metres) that counts as reached."""
    max_elbow: float = 2.5
    """Sampled start and goal elbow angles stay within ±this (the joint limit is ±3)."""


class Reacher:
    """Batched (row by row) Reacher dynamics and top-down rendering; see the module docstring."""

    action_dim = 2
    proprio_dim = 6

    def __init__(self, cfg: ReacherConfig | None = None):
        self.cfg = cfg or ReacherConfig()
        gym, mujoco = require_mujoco("reacher")
        env = gym.make("Reacher-v5")
        env.reset(seed=0)
        self.env = env.unwrapped
        m = self.env.model
        m.geom_rgba[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "target"), 3] = 0.0
        self.view = TopDownView(mujoco, m, self.cfg.size, self.cfg.camera_distance)

    # ------------------------------------------------------------------ dynamics
    def clip_action(self, action: np.ndarray) -> np.ndarray:
        return np.clip(np.nan_to_num(np.asarray(action, dtype=np.float64).reshape(-1, 2)), -1, 1)

    def _set(self, state: np.ndarray) -> None:
        qpos = self.env.data.qpos.copy()
        qvel = np.zeros_like(self.env.data.qvel)
        qpos[:2], qvel[:2] = state[:2], state[2:4]
        self.env.set_state(qpos, qvel)

    def step(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Next states ``[N, 4]`` after one environment step (Gymnasium's frame skip)."""
        states = np.asarray(states, dtype=np.float64).reshape(-1, 4)
        actions = self.clip_action(actions)
        out = np.empty_like(states)
        for i in range(len(states)):
            self._set(states[i])
            self.env.do_simulation(actions[i], self.env.frame_skip)
            out[i, :2], out[i, 2:] = self.env.data.qpos[:2], self.env.data.qvel[:2]
        return out

    def fingertip(self, states: np.ndarray) -> np.ndarray:
        """Fingertip positions ``[N, 2]`` (metres), by forward kinematics."""
        s = np.asarray(states, dtype=np.float64).reshape(-1, 4)
        a, b = s[:, 0], s[:, 0] + s[:, 1]
        return np.stack([LINKS[0] * np.cos(a) + LINKS[1] * np.cos(b),
                         LINKS[0] * np.sin(a) + LINKS[1] * np.sin(b)], axis=1)

    def success(self, states: np.ndarray, goals: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(self.fingertip(states) - self.fingertip(goals), axis=1)
        return d < self.cfg.success_radius

    def proprio(self, states: np.ndarray) -> np.ndarray:
        s = np.asarray(states, dtype=np.float64).reshape(-1, 4)
        return np.concatenate([np.cos(s[:, :1]), np.sin(s[:, :1]), np.cos(s[:, 1:2]),
                               np.sin(s[:, 1:2]), s[:, 2:] / 10.0], axis=1).astype(np.float32)

    # ------------------------------------------------------------------ sampling
    def sample_states(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Poses at rest, uniform in shoulder angle and in elbow angle within ``max_elbow``."""
        q0 = rng.uniform(-np.pi, np.pi, n)
        q1 = rng.uniform(-self.cfg.max_elbow, self.cfg.max_elbow, n)
        return np.stack([q0, q1, np.zeros(n), np.zeros(n)], axis=1)

    def sample_task(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self.sample_states(rng, n), self.sample_states(rng, n)

    # ------------------------------------------------------------------ rendering
    def render(self, states: np.ndarray) -> np.ndarray:
        """Top-down RGB images ``[N, 3, size, size]`` uint8."""
        s = np.asarray(states, dtype=np.float64).reshape(-1, 4)
        return self.view.render(self.env.data, s, self._set)

    def render_rgb(self, state: np.ndarray, goal: np.ndarray | None = None) -> np.ndarray:
        """One ``[size, size, 3]`` frame; with a goal, the goal pose is blended in faintly."""
        return frame_with_goal(self.render, state, goal)
