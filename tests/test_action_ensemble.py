"""Ensembles of action-conditioned predictors: training every member, and the planner's
disagreement-penalised cost."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import monde
from monde.config import apply_overrides
from monde.errors import ConfigError
from monde.jepa.action_model import ActionJEPA
from monde.jepa.action_world_model import ActionWorldModel
from monde.recipes import get_recipe, run_recipe
from monde.worlds.two_rooms import TwoRooms
from test_action_model import cheap, fake_batch, small_cfg


def test_ensemble_member_zero_is_the_single_model_and_every_member_trains():
    single, three = ActionJEPA(small_cfg()), ActionJEPA(small_cfg(ensemble=3))
    s1, s3 = single.state_dict(), three.state_dict()
    # Same seed: every module the single model has starts identical; the two extra
    # predictors are new keys only.
    assert all(torch.equal(s1[k], s3[k]) for k in s1)
    assert {k.split(".")[0] for k in set(s3) - set(s1)} == {"ensemble_predictors"}
    out = three(fake_batch(cfg=three.cfg))
    out.loss.backward()
    for member in three.members:
        assert sum(p.grad.abs().sum() for p in member.parameters()) > 0
    z0, actions = torch.randn(5, 16), torch.randn(5, 4, three.cfg.chunk_action_dim)
    every = three.rollout_ensemble(z0, actions)
    assert every.shape == (3, 5, 4, 16)
    torch.testing.assert_close(every[0], three.rollout(z0, actions))
    assert not torch.allclose(every[0], every[1])  # different initialisations
    with pytest.raises(ValueError, match="ensemble"):
        ActionJEPA(small_cfg(ensemble=0))


def test_ensemble_cost_is_the_mean_distance_plus_weighted_disagreement():
    model = ActionWorldModel(ActionJEPA(small_cfg(ensemble=3)))
    world = TwoRooms()
    z = model.encode(world.render(np.array([[10.0, 10.0]])))
    z_goal = model.encode(world.render(np.array([[50.0, 40.0]])))
    plans = torch.rand(4, 3, 2) - 0.5
    steps = model._project(plans.repeat_interleave(model.config.frameskip, dim=1))
    every = model.net.rollout_ensemble(z.expand(4, -1), model._transitions(steps))  # [3, 4, 3, D]
    d = (every - z_goal).pow(2).sum(-1).mean(0)
    spread = (every - every.mean(0)).pow(2).sum(-1).mean(0)
    assert (spread > 0).all()
    plain = model.cost_fn(z, z_goal, cheap(cost="final"))(plans)
    torch.testing.assert_close(plain, d[:, -1])
    weighted = model.cost_fn(z, z_goal, cheap(cost="final", uncertainty_weight=2.0))(plans)
    torch.testing.assert_close(weighted, d[:, -1] + 2.0 * spread[:, -1])
    with pytest.raises(ConfigError, match="uncertainty_weight"):
        cheap(uncertainty_weight=-1.0).validate()


def test_an_ensemble_run_saves_loads_and_plans(micro_two_rooms_overrides, tmp_path):
    cfg = apply_overrides(get_recipe("two-rooms").build(),
                          [*micro_two_rooms_overrides, "model.ensemble=2"])
    run_recipe(cfg, tmp_path / "run", quiet=True)
    model = monde.load(tmp_path / "run")
    assert model.config.ensemble == 2 and len(model.net.members) == 2
    world = TwoRooms()
    res = model.plan(world.render([[10.0, 10.0]]), world.render([[50.0, 50.0]]),
                     cheap(uncertainty_weight=1.0))
    assert res.actions.shape == (3 * model.config.frameskip, 2) and np.isfinite(res.cost)
