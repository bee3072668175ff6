"""The PointMaze world (gymnasium-robotics' U-maze on MuJoCo) and a micro run on it.

Skipped where MuJoCo, gymnasium-robotics or a headless OpenGL (EGL/OSMesa) is missing.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from monde.errors import ConfigError

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported: it picks its GL then
try:  # a broken GL backend fails the import with errors other than ImportError
    import gymnasium_robotics  # noqa: F401
    import mujoco  # noqa: F401
except Exception as e:  # noqa: BLE001
    pytest.skip(f"MuJoCo or gymnasium-robotics unavailable: {e}", allow_module_level=True)


@pytest.fixture(scope="module")
def world():
    from monde.worlds.pointmaze import PointMaze

    try:
        return PointMaze()
    except ConfigError as e:  # no OpenGL context on this machine
        pytest.skip(str(e))


def _in_free_cell(world, xy: np.ndarray, slack: float) -> np.ndarray:
    """``[N]`` bool: each point lies inside some free cell (grown by ``slack``)."""
    d = np.abs(xy[:, None, :] - world.free[None]).max(-1)  # Chebyshev distance to cell centres
    return (d <= 0.5 * world.scale + slack).any(1)


def test_force_moves_the_point_and_the_walls_stop_it(world):
    start = np.array([[-1.0, -1.0, 0.0, 0.0]])  # bottom-left cell of the U
    s = start
    for _ in range(5):
        s = world.step(s, np.array([[1.0, 0.0]]))
    assert s[0, 0] > start[0, 0] + 0.05 and abs(s[0, 1] - start[0, 1]) < 1e-6
    # Moving right, at about gymnasium-robotics' speed cap (5 units/s, applied before each
    # 0.01-s physics step, so a step can end a little above it).
    assert 4.5 < s[0, 2] < 5.3
    big = world.step(start, np.array([[50.0, 0.0]]))
    assert np.allclose(big, world.step(start, np.array([[1.0, 0.0]])))  # forces clip to [-1, 1]
    # Pushed up for 2 s of simulated time, the point cannot cross the U's inner wall (the
    # cell's top edge is y = -0.5; the point's radius is 0.1).
    s = start
    for _ in range(40):
        s = world.step(s, np.array([[0.0, 1.0]]))
    assert -0.65 < s[0, 1] < -0.55 and abs(s[0, 0] - start[0, 0]) < 1e-6


def test_sampling_stays_in_free_cells_and_tasks_are_apart(world):
    rng = np.random.default_rng(0)
    s = world.sample_states(rng, 200)
    assert _in_free_cell(world, s[:, :2], -world.cfg.cell_margin * world.scale + 1e-9).all()
    assert (s[:, 2:] == 0).all()
    starts, goals = world.sample_task(np.random.default_rng(1), 50, min_distance=1.5)
    assert (np.linalg.norm(starts[:, :2] - goals[:, :2], axis=1) >= 1.5).all()
    again = world.sample_task(np.random.default_rng(1), 50, min_distance=1.5)
    assert np.array_equal(starts, again[0]) and np.array_equal(goals, again[1])  # seeded


def test_render_shows_the_point_and_proprio_and_success(world):
    a, b = np.array([[-1.0, 1.0, 0, 0]]), np.array([[1.0, -1.0, 0, 0]])
    img = world.render(np.concatenate([a, b]))
    assert img.shape == (2, 3, 64, 64) and img.dtype == np.uint8
    assert not np.array_equal(img[0], img[1])  # the point is visible where it is
    p = world.proprio(np.array([[0.5, -1.0, 5.0, -2.5]]))
    assert np.allclose(p, [[0.5, -1.0, 1.0, -0.5]])
    assert world.success(a, a + [[0.3, 0.3, 0, 0]])[0]  # 0.42 < 0.45
    assert not world.success(a, a + [[0.4, 0.4, 0, 0]])[0]


def test_bad_maze_and_settings_are_refused():
    from monde.worlds.pointmaze import PointMaze, PointMazeConfig

    with pytest.raises(ConfigError, match="unknown maze"):
        PointMaze(PointMazeConfig(maze="NoSuchMaze-v0"))
    with pytest.raises(ConfigError, match="substeps"):
        PointMaze(PointMazeConfig(substeps=0))


def test_missing_gymnasium_robotics_names_the_extra(monkeypatch):
    import builtins

    from monde.worlds.pointmaze import PointMaze

    real = builtins.__import__

    def no_robotics(name, *args, **kwargs):
        if name == "gymnasium_robotics":
            raise ImportError("No module named 'gymnasium_robotics'", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_robotics)
    with pytest.raises(ConfigError, match=r"monde\[mujoco\]"):
        PointMaze()


def test_micro_pointmaze_run_plans(tmp_path, world):
    import monde
    from monde.config import apply_overrides
    from monde.evals.planning import PointMazePlanProtocol, evaluate
    from monde.planning import PlannerConfig
    from monde.recipes import get_recipe, run_recipe

    cfg = apply_overrides(get_recipe("pointmaze").build(), [
        "data.collect.episodes=4", "data.collect.steps=12", "data.collect.chunk=2",
        "data.chunks=2", "train.steps=3", "train.batch_size=4", "train.warmup_steps=1"])
    run_recipe(cfg, tmp_path / "run", quiet=True)
    model = monde.load(tmp_path / "run")
    assert model.meta["world"] == "pointmaze" and model.config.proprio_dim == 4
    protocol = PointMazePlanProtocol(episodes=1, budget=8)
    r, eps = evaluate(model, protocol, PlannerConfig(horizon=2, samples=8, iterations=1), record=1)
    assert r["protocol"]["name"] == "pointmaze-plan" and r["episodes"] == 1
    assert eps[0].positions.shape[1] == 4 and eps[0].plans[0][1].shape == (2, 4)
    pytest.importorskip("matplotlib")
    from monde.evals.planning import tasks
    from monde.viz import plot_plans

    starts, goals = tasks(protocol, world)
    assert plot_plans(world, eps, starts, goals, tmp_path / "plans.png").stat().st_size > 1000
    bg = world.background
    assert bg.shape == (64, 64, 3) and not np.array_equal(bg, world.render(starts[:1])[0].transpose(1, 2, 0))
    with pytest.raises(ConfigError, match="differs from the protocol"):
        evaluate(model, PointMazePlanProtocol(episodes=1, success_radius=0.2), PlannerConfig())


def test_cli_collects_pointmaze_episodes(tmp_path, world, capsys):
    from monde.cli import main
    from monde.data.episodes import EpisodeDataset

    assert main(["data", "collect", "pointmaze", "--episodes", "2", "--steps", "5",
                 "--out", str(tmp_path / "d")]) == 0
    assert "pointmaze episodes" in capsys.readouterr().out
    d = EpisodeDataset(tmp_path / "d")
    assert d.obs_shape == (3, 64, 64) and d.proprio_dim == 4 and len(d) == 2
    assert d.manifest["world"] == "pointmaze" and d.manifest["world_config"]["substeps"] == 5


def test_cli_plans_in_the_models_own_maze(tmp_path, world, capsys):
    import json

    from monde.cli import main

    assert main(["train", "pointmaze", "--out", str(tmp_path / "m"),
                 "pointmaze.maze=PointMaze_Medium-v3", "data.collect.episodes=2",
                 "data.collect.steps=8", "data.chunks=2", "train.steps=2",
                 "train.batch_size=2", "train.warmup_steps=1"]) == 0
    capsys.readouterr()
    assert main(["plan", "--model", str(tmp_path / "m"), "--episodes", "1", "samples=8",
                 "iterations=1", "horizon=2", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["protocol"]["settings"]["maze"] == "PointMaze_Medium-v3" and r["episodes"] == 1
