"""PushT wired into data collection, recipes, the planning protocol and the command line."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pymunk")

from monde.errors import ConfigError  # noqa: E402


def test_cli_collects_pusht_episodes_with_the_push_policy_by_default(tmp_path, capsys):
    from monde.cli import main
    from monde.data.episodes import EpisodeDataset

    assert main(["data", "collect", "pusht", "--episodes", "3", "--steps", "6",
                 "--out", str(tmp_path / "d")]) == 0
    assert "push pusht episodes" in capsys.readouterr().out
    d = EpisodeDataset(tmp_path / "d")
    assert d.obs_shape == (3, 64, 64) and d.proprio_dim == 4 and d.action_dim == 2
    assert d.manifest["policy"] == "push" and d.manifest["world"] == "pusht"


def test_pusht_rejects_two_rooms_policies():
    from monde.data.collect import CollectConfig, collect

    with pytest.raises(ConfigError, match="unknown policy 'noisy-expert' for the pusht world"):
        collect(CollectConfig(world="pusht", policy="noisy-expert"), "/nonexistent")


def test_protocol_tasks_are_reproducible_and_unsolved():
    from monde.evals.planning import PushTPlanProtocol, tasks
    from monde.worlds.pusht import PushT

    world = PushT()
    p = PushTPlanProtocol(episodes=3)
    s1, g1 = tasks(p, world)
    s2, g2 = tasks(p, world)
    assert np.array_equal(s1, s2) and np.array_equal(g1, g2)
    assert not world.success(s1, g1).any()


def test_micro_pusht_run_plans_with_box_actions(tmp_path):
    import monde
    from monde.config import apply_overrides
    from monde.evals.planning import PushTPlanProtocol, ReacherPlanProtocol, evaluate
    from monde.planning import PlannerConfig
    from monde.recipes import get_recipe, run_recipe

    cfg = apply_overrides(get_recipe("pusht").build(), [
        "data.collect.episodes=4", "data.collect.steps=12", "data.collect.chunk=2",
        "data.chunks=2", "train.steps=3", "train.batch_size=4", "train.warmup_steps=1",
        "model.policy_steps=10"])  # the recipe's 6,000 fitting steps took ~100 s here
    run_recipe(cfg, tmp_path / "run", quiet=True)
    model = monde.load(tmp_path / "run")
    assert model.net.policy is not None  # fitted after training and saved with the model
    assert model.meta["world"] == "pusht" and model.config.use_proprio and model.box_actions
    r, eps = evaluate(model, PushTPlanProtocol(episodes=1, budget=4),
                      PlannerConfig(horizon=2, samples=8, iterations=1))
    assert r["protocol"]["name"] == "pusht-plan" and r["episodes"] == 1
    assert eps[0].positions.shape[1] == 10
    with pytest.raises(ConfigError, match="not reacher"):
        evaluate(model, ReacherPlanProtocol(episodes=1), PlannerConfig())


def test_a_pusht_dataset_cannot_train_a_two_rooms_run(tmp_path):
    from monde.config import apply_overrides
    from monde.data.collect import CollectConfig, collect
    from monde.errors import DataError
    from monde.recipes import get_recipe, run_recipe

    collect(CollectConfig(world="pusht", episodes=2, steps=6, chunk=2, policy="push"), tmp_path / "d")
    cfg = apply_overrides(get_recipe("two-rooms").build(), [f"data.path={tmp_path / 'd'}",
                                                             "train.steps=1"])
    with pytest.raises(DataError, match="from world 'pusht'"):
        run_recipe(cfg, tmp_path / "run", quiet=True)


def test_gymnasium_env_passes_the_checker_and_succeeds_at_its_goal():
    pytest.importorskip("gymnasium")
    from gymnasium.utils.env_checker import check_env

    from monde.worlds.gym_envs import make

    env = make("pusht")
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert obs["pixels"].shape == (3, 64, 64) and not info["success"]
    # Stepping the goal state itself in as the start succeeds at once.
    obs, info = env.reset(seed=3, options={"start": info["goal"]})
    assert info["success"]
    with pytest.raises(ConfigError, match="two-rooms, pusht"):
        make("pushy")
