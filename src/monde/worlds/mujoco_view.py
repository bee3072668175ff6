"""What the MuJoCo worlds (Reacher, PointMaze) share: importing MuJoCo headless with a clear
error, and a top-down camera that renders a batch of states to RGB frames."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from monde.errors import ConfigError


def require_mujoco(world: str):
    """Import Gymnasium and MuJoCo for a MuJoCo world (headless EGL unless chosen otherwise);
    a missing extra or a broken OpenGL backend gets a clear error naming the fix."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        import gymnasium as gym
        import mujoco
    except ImportError as e:
        raise ConfigError(f"the {world} world needs MuJoCo: pip install 'monde[mujoco]' "
                          f"(missing: {e.name})") from e
    except Exception as e:  # e.g. MUJOCO_GL names a backend whose library is absent
        raise ConfigError(f"MuJoCo failed to load ({e}); on a headless machine use "
                          "MUJOCO_GL=egl (libegl1) or MUJOCO_GL=osmesa (libosmesa6)") from e
    return gym, mujoco


class TopDownView:
    """A free camera looking straight down at ``lookat`` from ``distance``, rendering
    ``size × size`` RGB with shadows and reflections off (they cost time and add nothing a
    world model needs)."""

    def __init__(self, mujoco, model, size: int, distance: float):
        self._mj, self.size = mujoco, size
        try:
            self.renderer = mujoco.Renderer(model, size, size)
        except Exception as e:  # no OpenGL context: say how to get one
            raise ConfigError(f"MuJoCo could not render ({e}); headless machines need EGL "
                              "(libegl1) or OSMesa with MUJOCO_GL=egl|osmesa") from e
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        self.camera.lookat[:] = (0.0, 0.0, 0.0)
        self.camera.distance = distance
        self.camera.elevation, self.camera.azimuth = -90.0, 90.0
        self.option = mujoco.MjvOption()

    def render(self, data, states: np.ndarray, set_state: Callable[[np.ndarray], None]) -> np.ndarray:
        """``[N, 3, size, size]`` uint8: each state of ``states [N, S]`` put into ``data`` by
        ``set_state`` (which must also run MuJoCo's forward pass), then drawn."""
        flags = self._mj.mjtRndFlag
        out = np.empty((len(states), 3, self.size, self.size), np.uint8)
        for i in range(len(states)):
            set_state(states[i])
            self.renderer.update_scene(data, self.camera, self.option)
            self.renderer.scene.flags[flags.mjRND_SHADOW] = 0
            self.renderer.scene.flags[flags.mjRND_REFLECTION] = 0
            out[i] = self.renderer.render().transpose(2, 0, 1)
        return out


def frame_with_goal(render: Callable[[np.ndarray], np.ndarray], state: np.ndarray,
                    goal: np.ndarray | None) -> np.ndarray:
    """One ``[size, size, 3]`` uint8 frame of ``state``; with a goal, the goal's frame is
    blended in faintly (for GIFs and plots)."""
    img = render(state)[0].transpose(1, 2, 0).astype(np.float32)
    if goal is not None:
        img = 0.7 * img + 0.3 * render(goal)[0].transpose(1, 2, 0)
    return img.astype(np.uint8)
