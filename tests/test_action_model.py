"""Action-conditioned JEPA: its objective, the two-rooms recipe, ActionWorldModel, evaluation."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import monde
from monde.config import apply_overrides
from monde.errors import ConfigError, DataError
from monde.evals.planning import TwoRoomsPlanProtocol, evaluate, tasks, world_for
from monde.jepa.action_model import ActionJEPA, ActionModelConfig
from monde.jepa.action_world_model import ActionWorldModel
from monde.jepa.world_model import WorldModel
from monde.planning import PlannerConfig
from monde.planning.mpc import run_episode
from monde.recipes import get_recipe, run_recipe
from monde.worlds.two_rooms import TwoRooms

PARTS = {"pred", "rollout", "inverse", "smooth", "std", "cov", "proprio_readout"}


def cheap(name: str = "mppi", **kw) -> PlannerConfig:
    return PlannerConfig(name=name, **({"horizon": 3, "samples": 16, "iterations": 1} | kw))


def small_cfg(**kw) -> ActionModelConfig:
    return ActionModelConfig(**({"latent_dim": 16, "widths": (8, 16), "predictor_hidden": 32,
                                 "frameskip": 2} | kw))


def fake_batch(b: int = 3, n: int = 3, cfg: ActionModelConfig | None = None) -> dict:
    cfg = cfg or small_cfg()
    world = TwoRooms()
    rng = np.random.default_rng(0)
    pos = world.sample_positions(rng, b * (n + 1)).reshape(b, n + 1, 2)
    return {"obs": torch.from_numpy(world.render(pos.reshape(-1, 2)).reshape(b, n + 1, 1, 64, 64)),
            "actions": torch.randn(b, n, cfg.chunk_action_dim),
            "proprio": torch.from_numpy(pos).float()}


# ---------------------------------------------------------------------------- the network
def test_forward_loss_parts_and_gradients():
    cfg = small_cfg()
    net = ActionJEPA(cfg)
    out = net(fake_batch(cfg=cfg))
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    assert set(out.parts) == PARTS
    assert all(torch.isfinite(v) and not v.requires_grad for v in out.parts.values())
    assert out.embeddings.shape == (3, cfg.latent_dim)
    out.loss.backward()
    for module in (net.encoder, net.predictor, net.inverse, net.proprio_head):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0


def test_proprio_readout_does_not_shape_the_latents():
    cfg = small_cfg()
    net = ActionJEPA(cfg)
    batch = fake_batch(cfg=cfg)
    out = net(batch)
    # Only the readout depends on proprio: its gradient reaches the head, never the encoder.
    batch2 = dict(batch, proprio=batch["proprio"] + 10)
    out2 = net(batch2)
    grads = torch.autograd.grad(out.loss - out2.loss, list(net.encoder.parameters()),
                                allow_unused=True)
    assert all(g is None or g.abs().max() < 1e-6 for g in grads)


def test_rollout_and_predict_shapes():
    cfg = small_cfg()
    net = ActionJEPA(cfg)
    z0 = net.encode(fake_batch(cfg=cfg)["obs"][:, 0])
    assert z0.shape == (3, 16)
    actions = torch.randn(3, 5, cfg.chunk_action_dim)
    zs = net.rollout(z0, actions)
    assert zs.shape == (3, 5, 16)
    torch.testing.assert_close(zs[:, 0], net.predict(z0, actions[:, 0]))
    torch.testing.assert_close(zs[:, 1], net.predict(zs[:, 0], actions[:, 1]))
    assert net.decode_proprio(zs).shape == (3, 5, 2)
    # uint8 and float images in [0, 1] encode alike.
    obs = fake_batch(cfg=cfg)["obs"][:, 0]
    torch.testing.assert_close(net.encode(obs), net.encode(obs.float() / 255))


def test_proprio_encoder_needs_proprio():
    cfg = small_cfg(use_proprio=True)
    net = ActionJEPA(cfg)
    batch = fake_batch(cfg=cfg)
    assert torch.isfinite(net(batch).loss)
    with pytest.raises(ValueError, match="pass proprio"):
        net.encode(batch["obs"][:, 0])


# ---------------------------------------------------------------------------- trained model
@pytest.fixture(scope="module")
def model(micro_action_model) -> ActionWorldModel:
    return monde.load(micro_action_model)


def test_recipe_output_and_load(micro_action_model, model):
    assert isinstance(model, ActionWorldModel)
    assert model.meta["world"] == "two-rooms" and model.meta["steps"] == 4
    assert model.meta["world_config"]["max_speed"] == pytest.approx(2.45)
    assert model.meta["data"]["episodes"] == 16 and model.meta["planner"]["name"] == "mppi"
    assert model.max_action_norm == pytest.approx(2.45)
    assert "two-rooms" in repr(model) and "frameskip 4" in repr(model)
    manifest = json.loads((micro_action_model / "data" / "manifest.json").read_text())
    assert manifest["episodes"] == 16 and manifest["steps"] == 16
    assert not any(p.requires_grad for p in model.net.parameters())


def test_encode_rollout_decode(model):
    world = TwoRooms()
    obs = world.render(np.array([[10.0, 10.0], [50.0, 40.0]]))
    z = model.encode(obs)
    d = model.config.latent_dim
    assert z.shape == (2, d)
    torch.testing.assert_close(model.encode(obs[0]), z[:1])  # one [C, H, W] image
    actions = torch.rand(5, 8, 2)  # 5 candidates, 8 steps = 2 transitions of frameskip 4
    zs = model.rollout(z[0], actions)
    assert zs.shape == (5, 2, d)
    assert model.rollout(z[:1], actions[0]).shape == (1, 2, d)
    assert model.decode_proprio(zs).shape == (5, 2, 2)


def test_wrong_inputs_are_data_errors(model):
    world = TwoRooms()
    obs = world.render(np.array([[10.0, 10.0]]))
    z = model.encode(obs)
    with pytest.raises(DataError, match="goal_obs must be images"):
        model.plan(obs, np.zeros((1, 1, 32, 32), np.uint8), cheap())
    with pytest.raises(DataError, match="obs must be images"):
        model.encode(np.zeros((1, 3, 64, 64), np.uint8))
    with pytest.raises(DataError, match="action size is 2"):
        model.rollout(z, torch.zeros(1, 8, 3))
    with pytest.raises(DataError, match="multiple of the model's frameskip"):
        model.rollout(z, torch.zeros(1, 6, 2))


@pytest.mark.parametrize("name, hold", [("mppi", True), ("cem", True), ("gradient", True),
                                        ("mppi", False)])
def test_plan_returns_per_step_actions_within_the_speed_limit(model, name, hold):
    world = TwoRooms()
    obs, goal = world.render(np.array([[10.0, 10.0]])), world.render(np.array([[50.0, 40.0]]))
    cfg = cheap(name, horizon=3, hold=hold, samples=32)
    res = model.plan(obs, goal, cfg)
    k = model.config.frameskip
    assert res.actions.shape == (3 * k, 2)
    assert (res.actions.norm(dim=-1) <= model.max_action_norm + 1e-5).all()
    assert np.isfinite(res.cost) and res.iterations >= 1
    if hold:  # one action per transition, held for its frameskip steps
        assert torch.equal(res.actions[:k], res.actions[0].expand(k, 2))
    if (name, hold) == ("mppi", True):  # the planner's name alone: its default settings
        assert model.plan(obs[0], goal[0], name).actions.shape == (12 * k, 2)


@pytest.mark.parametrize("hold", [True, False])
def test_cost_is_the_latent_distance_along_the_rollout(model, hold):
    world = TwoRooms()
    z = model.encode(world.render(np.array([[10.0, 10.0]])))
    z_goal = model.encode(world.render(np.array([[50.0, 40.0]])))
    k, h = model.config.frameskip, 3
    dim = 2 if hold else 2 * k
    plans = (torch.rand(4, h, dim) - 0.5) * 8  # some beyond the speed limit: projected
    steps = plans.repeat_interleave(k, dim=1) if hold else plans.reshape(4, h * k, 2)
    norm = steps.norm(dim=-1, keepdim=True)
    steps = steps * torch.clamp(model.max_action_norm / norm, max=1.0)
    d = (model.rollout(z, steps) - z_goal).pow(2).sum(-1)  # [4, h]
    final = model.cost_fn(z, z_goal, cheap(cost="final", hold=hold))(plans)
    torch.testing.assert_close(final, d[:, -1])
    every = model.cost_fn(z, z_goal, cheap(cost="all", hold=hold))(plans)
    torch.testing.assert_close(every, d.mean(1) + d[:, -1])


def test_video_model_cannot_plan(micro_video_model):
    video = monde.load(micro_video_model)
    assert isinstance(video, WorldModel)
    with pytest.raises(ConfigError, match="no action-conditioned predictor"):
        video.plan(np.zeros((1, 64, 64)), np.zeros((1, 64, 64)))
    with pytest.raises(ConfigError, match="monde train two-rooms"):
        video.rollout()


# ---------------------------------------------------------------------------- evaluation
def test_evaluate_summary(model):
    protocol = TwoRoomsPlanProtocol(episodes=2)
    summary, episodes = evaluate(model, protocol, cheap(), record=1)
    for key in ("success_rate", "success_ci95", "episodes", "seconds_per_episode",
                "seconds_per_plan", "protocol"):
        assert key in summary
    assert summary["episodes"] == 2 and len(episodes) == 2
    assert summary["protocol"]["name"] == "two-rooms-plan" and len(summary["protocol"]["hash"]) == 10
    assert summary["protocol"]["settings"]["episodes"] == 2
    assert 0 <= summary["success_rate"] <= 1
    lo, hi = summary["success_ci95"]
    assert 0 <= lo <= summary["success_rate"] <= hi <= 1
    json.dumps(summary)  # JSON-able as `monde plan --json` prints it
    starts, goals = tasks(protocol, world_for(model, protocol))
    for ep, start in zip(episodes, starts):
        np.testing.assert_allclose(ep.positions[0], start)
        assert ep.steps == len(ep.positions) - 1 <= protocol.budget
        assert ep.success or ep.steps == protocol.budget
    assert episodes[0].plans and not episodes[1].plans
    t, imagined = episodes[0].plans[0]
    assert t == 0 and imagined.shape == (3, 2)
    # The protocol's tasks are fixed: same hash, same starts and goals.
    again = evaluate(model, protocol, cheap())[0]
    assert again["protocol"]["hash"] == summary["protocol"]["hash"]
    assert again["success_rate"] == summary["success_rate"]


def test_tasks_are_frozen_and_cross_rooms(model):
    protocol = TwoRoomsPlanProtocol()
    world = world_for(model, protocol)
    starts, goals = tasks(protocol, world)
    assert starts.shape == goals.shape == (50, 2)
    assert (world.room(starts) != world.room(goals)).all()
    np.testing.assert_array_equal(starts, tasks(protocol, world)[0])


def test_world_for_refuses_other_worlds(model):
    protocol = TwoRoomsPlanProtocol()
    other = ActionWorldModel(model.net, {**model.meta, "world": "pusht"})
    with pytest.raises(ConfigError, match="not two-rooms"):
        world_for(other, protocol)
    wider = ActionWorldModel(model.net, {**model.meta, "world_config": {
        **model.meta["world_config"], "door_half": 8.0}})
    with pytest.raises(ConfigError, match="differs from the protocol"):
        world_for(wider, protocol)


def test_run_episode_starting_at_the_goal(model):
    world = TwoRooms()
    ep = run_episode(model, world, np.array([20.0, 20.0]), np.array([21.0, 20.0]), cheap(), 50)
    assert ep.success and ep.steps == 0 and ep.positions.shape == (1, 2)
    ep = run_episode(model, world, np.array([10.0, 10.0]), np.array([54.0, 54.0]),
                     cheap(replan_every=2), 10)
    assert ep.steps == 10 and ep.positions.shape == (11, 2)
    assert len(ep.plan_seconds) == 2  # 8 steps per plan (2 transitions of 4)
    assert not world.in_wall(ep.positions).any()


# ---------------------------------------------------------------------------- the recipe
def test_rerunning_a_finished_run_resumes_it(micro_action_model, micro_two_rooms_overrides,
                                             tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(micro_action_model, copy)
    cfg = apply_overrides(get_recipe("two-rooms").build(), micro_two_rooms_overrides)
    s = run_recipe(cfg, copy, quiet=True)
    assert s["resumed"] and s["resumed_from"] == 4 and s["steps"] == 4
    assert isinstance(monde.load(copy), ActionWorldModel)


@pytest.mark.parametrize("overrides, error, message", [
    (["model.size=32"], ConfigError, "must match the world's images"),
    (["data.chunks=8"], DataError, "do not fit"),
    (["world.door_half=4.0"], DataError, "other world settings"),
    (["model.ensemble=0"], ConfigError, "at least 1 predictor"),
])
def test_recipe_errors(micro_action_model, micro_two_rooms_overrides, tmp_path, overrides, error,
                       message):
    cfg = apply_overrides(get_recipe("two-rooms").build(),
                          micro_two_rooms_overrides + [f"data.path={micro_action_model / 'data'}", *overrides])
    with pytest.raises(error, match=message):
        run_recipe(cfg, tmp_path / "run", quiet=True)


def test_no_door_recipe_collects_without_crossings():
    cfg = get_recipe("two-rooms-no-door").build()
    assert cfg.recipe == "two-rooms-no-door" and cfg.data.collect.door_crossings is False


def test_keypoint_head_encodes_and_is_translation_aware():
    import torch

    from monde.nn.convnet import ConvEncoder
    from monde.worlds.two_rooms import TwoRooms

    torch.manual_seed(0)
    enc = ConvEncoder(1, 64, 8, widths=(16, 32), head="keypoints", keypoints=4)
    world = TwoRooms()
    imgs = torch.from_numpy(world.render([[10.0, 10.0], [50.0, 50.0]])).float() / 255
    z = enc(imgs)
    assert z.shape == (2, 8) and torch.isfinite(z).all()
    assert not torch.allclose(z[0], z[1])  # two places, two latents
    with pytest.raises(ValueError, match="unknown head"):
        ConvEncoder(1, 64, 8, head="nope")


def test_proprio_cost_term_counts_when_weighted(micro_action_model):
    model = monde.load(micro_action_model)
    world = TwoRooms()
    z = model.encode(world.render([[10.0, 10.0]]))
    z_goal = model.encode(world.render([[50.0, 50.0]]))
    plans = torch.zeros(3, 4, 2)
    plain = model.cost_fn(z, z_goal, PlannerConfig())(plans)
    weighted = model.cost_fn(z, z_goal, PlannerConfig(proprio_weight=1.0),
                             torch.tensor([50.0, 50.0]))(plans)
    assert (weighted > plain).all()  # the decoded position is far from the goal's


def test_plan_warm_start_is_in_per_step_units(micro_action_model):
    model = monde.load(micro_action_model)
    world = TwoRooms()
    obs, goal = world.render([[10.0, 10.0]]), world.render([[50.0, 50.0]])
    for hold in (True, False):
        cfg = PlannerConfig(horizon=3, samples=8, iterations=1, hold=hold)
        first = model.plan(obs, goal, cfg)
        again = model.plan(obs, goal, cfg, init=first.actions)  # [12, 2] per-step actions
        assert again.actions.shape == first.actions.shape == (12, 2)
    with pytest.raises(DataError):
        model.plan(obs, goal, cfg, init=torch.zeros(5, 2))  # not a multiple of frameskip


def test_spatial_head_latent_is_the_feature_map_and_its_predictor_acts_locally():
    from monde.jepa.action_model import ActionJEPA, ActionModelConfig
    from monde.nn.convnet import ConvPredictor

    cfg = ActionModelConfig(channels=3, size=32, widths=(8, 16), encoder_head="spatial",
                            map_channels=4, use_proprio=True, proprio_dim=3,
                            predictor_hidden=8, predictor_layers=2)
    assert cfg.map_side == 8 and cfg.state_dim == 4 * 8 * 8
    net = ActionJEPA(cfg)
    obs = torch.randint(0, 255, (2, 3, 3, 32, 32), dtype=torch.uint8)
    proprio = torch.randn(2, 3, 3)
    z = net.encode(obs, proprio)
    assert z.shape == (2, 3, cfg.state_dim)
    # proprioception shifts every cell of a channel by the same amount
    dz = (net.encode(obs, proprio + 1) - z).reshape(2, 3, 4, 64)
    assert torch.allclose(dz, dz[..., :1].expand_as(dz), atol=1e-5)
    actions = torch.randn(2, 2, cfg.chunk_action_dim)
    assert net.rollout(z[:, 0], actions).shape == (2, 2, cfg.state_dim)
    out = net({"obs": obs, "actions": actions, "proprio": proprio})
    out.loss.backward()
    assert torch.isfinite(out.loss) and net.predictor.net[0].weight.grad is not None
    # two 3x3 convolutions see two cells around a change, no further
    pred = ConvPredictor(4, 8, 2, hidden=8, layers=2)
    base = torch.zeros(1, 4 * 64)
    bumped = base.clone().reshape(1, 4, 8, 8)
    bumped[0, :, 0, 0] = 1.0
    diff = (pred(bumped.flatten(1), torch.zeros(1, 2)) - pred(base, torch.zeros(1, 2)))
    diff = diff.reshape(4, 8, 8).abs().amax(0)
    assert diff[:3, :3].sum() > 0 and diff[3:, :].sum() == 0 and diff[:, 3:].sum() == 0


def test_unknown_encoder_head_is_a_config_error(tmp_path):
    from monde.recipes import get_recipe, run_recipe

    cfg = apply_overrides(get_recipe("two-rooms").build(), ["model.encoder_head=nope"])
    with pytest.raises(ConfigError, match="encoder_head='nope' is not a head"):
        run_recipe(cfg, tmp_path / "run", quiet=True)



@pytest.mark.parametrize("regularize", ["latent", "image"])
def test_vicreg_regularizes_the_image_map_alone_when_asked(regularize):
    # With regularize="image" the proprioception offset cannot meet VICReg's variance term:
    # the std/cov parts are those of the encoder's image map whatever the proprioception is.
    cfg = ActionModelConfig(channels=3, size=32, widths=(8, 16), encoder_head="spatial",
                            map_channels=4, use_proprio=True, proprio_dim=3,
                            predictor_hidden=8, predictor_layers=2, regularize=regularize)
    net = ActionJEPA(cfg)
    obs = torch.randint(0, 255, (4, 3, 3, 32, 32), dtype=torch.uint8)
    actions = torch.randn(4, 2, cfg.chunk_action_dim)
    proprio = torch.randn(4, 3, 3)
    a = net({"obs": obs, "actions": actions, "proprio": proprio})
    b = net({"obs": obs, "actions": actions, "proprio": 50 * proprio})
    image, offset = net.encode_parts(obs, proprio)
    assert torch.allclose(image + offset, net.encode(obs, proprio))
    same = torch.allclose(a.parts["std"], b.parts["std"]) and torch.allclose(a.parts["cov"], b.parts["cov"])
    assert same == (regularize == "image")


def test_unknown_regularize_is_a_config_error(tmp_path):
    # the typed config refuses the value before anything runs
    with pytest.raises(ConfigError, match="'model.regularize' must be one of 'latent', 'image'"):
        apply_overrides(get_recipe("two-rooms").build(), ["model.regularize=nope"])
    with pytest.raises(ValueError, match="regularize must be"):
        ActionJEPA(small_cfg(regularize="nope"))
    cfg = apply_overrides(get_recipe("two-rooms").build(), ["model.cell_centred=true"])
    with pytest.raises(ConfigError, match="cell_centred needs a spatial latent"):
        run_recipe(cfg, tmp_path / "run2", quiet=True)
