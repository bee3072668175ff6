"""The Reacher world (MuJoCo) and a micro action-conditioned run on it.

Skipped where MuJoCo or a headless OpenGL (EGL/OSMesa) is missing.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from monde.errors import ConfigError

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported: it picks its GL then
try:  # a broken GL backend fails the import with errors other than ImportError
    import mujoco  # noqa: F401
except Exception as e:  # noqa: BLE001
    pytest.skip(f"MuJoCo unavailable: {e}", allow_module_level=True)


@pytest.fixture(scope="module")
def world():
    from monde.worlds.reacher import Reacher

    try:
        return Reacher()
    except ConfigError as e:  # no OpenGL context on this machine
        pytest.skip(str(e))


def test_fingertip_matches_mujoco(world):
    rng = np.random.default_rng(0)
    for s in world.sample_states(rng, 5):
        world._set(s)
        assert np.allclose(world.fingertip(s[None])[0], world.env.get_body_com("fingertip")[:2],
                           atol=1e-6)


def test_step_render_proprio_shapes_and_torque_clipping(world):
    rng = np.random.default_rng(1)
    s = world.sample_states(rng, 2)
    big = world.step(s, np.array([[50.0, -50.0], [50.0, -50.0]]))
    unit = world.step(s, np.array([[1.0, -1.0], [1.0, -1.0]]))
    assert np.allclose(big, unit)  # torques are clipped to [-1, 1]
    assert not np.allclose(unit[:, :2], s[:, :2])  # the arm moved
    img = world.render(unit)
    assert img.shape == (2, 3, 64, 64) and img.dtype == np.uint8
    assert not np.array_equal(world.render(s)[0], world.render(s + [[1.0, 0, 0, 0]] * 2)[0])
    p = world.proprio(unit)
    assert p.shape == (2, 6) and np.allclose(p[:, 0] ** 2 + p[:, 1] ** 2, 1, atol=1e-5)


def test_success_is_fingertip_distance(world):
    goal = np.array([[0.5, 0.5, 0.0, 0.0]])
    assert world.success(goal, goal)[0]
    assert not world.success(np.array([[0.5 + np.pi / 2, 0.5, 0, 0]]), goal)[0]


def test_micro_reacher_run_plans(tmp_path, world):
    import monde
    from monde.config import apply_overrides
    from monde.evals.planning import ReacherPlanProtocol, evaluate
    from monde.planning import PlannerConfig
    from monde.recipes import get_recipe, run_recipe

    cfg = apply_overrides(get_recipe("reacher").build(), [
        "data.collect.episodes=4", "data.collect.steps=12", "data.collect.chunk=2",
        "data.chunks=2", "train.steps=3", "train.batch_size=4", "train.warmup_steps=1"])
    run_recipe(cfg, tmp_path / "run", quiet=True)
    model = monde.load(tmp_path / "run")
    assert model.meta["world"] == "reacher" and model.config.use_proprio
    r, eps = evaluate(model, ReacherPlanProtocol(episodes=1, budget=8),
                      PlannerConfig(horizon=2, samples=8, iterations=1))
    assert r["protocol"]["name"] == "reacher-plan" and r["episodes"] == 1
    assert eps[0].positions.shape[1] == 4
    res = model.plan(world.render(eps[0].positions[:1]), world.render(eps[0].positions[-1:]),
                     PlannerConfig(horizon=2, samples=8, iterations=1),
                     proprio=world.proprio(eps[0].positions[:1]),
                     goal_proprio=world.proprio(eps[0].positions[-1:]))
    assert res.actions.shape == (8, 2) and res.actions.abs().max() <= 1.0


def test_cli_collects_reacher_episodes(tmp_path, world, capsys):
    from monde.cli import main

    assert main(["data", "collect", "reacher", "--episodes", "2", "--steps", "5",
                 "--out", str(tmp_path / "d")]) == 0
    assert "reacher episodes" in capsys.readouterr().out
    from monde.data.episodes import EpisodeDataset

    d = EpisodeDataset(tmp_path / "d")
    assert d.obs_shape == (3, 64, 64) and d.proprio_dim == 6 and len(d) == 2
