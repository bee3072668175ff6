"""PushT world: pure pymunk steps, pushing physics, numpy rendering, success, tasks, policies."""

from __future__ import annotations

import numpy as np
import pytest

from monde.errors import ConfigError

pytest.importorskip("pymunk")

from monde.worlds.policies import SmoothRandom  # noqa: E402
from monde.worlds.pusht import AGENT_COLOR, BLOCK_COLOR, PushT, PushTConfig  # noqa: E402
from monde.worlds.pusht_policies import PushPolicy, make_pusht_policy  # noqa: E402


@pytest.fixture(scope="module")
def world() -> PushT:
    return PushT()


def _state(agent=(100.0, 100.0), block=(256.0, 256.0, 0.0)) -> np.ndarray:
    s = np.zeros((1, 10))
    s[0, :2], s[0, 2:5] = agent, block
    return s


def _pushing_rows(world: PushT, n: int = 12, steps: int = 12, seed: int = 0):
    """States and actions from a push-policy rollout: many rows with contact."""
    rng = np.random.default_rng(seed)
    s, policy = world.sample_states(rng, n), PushPolicy(world, rng, n)
    states, actions = [], []
    for _ in range(steps):
        a = policy(s)
        states.append(s)
        actions.append(a)
        s = world.step(s, a)
    return np.concatenate(states), np.concatenate(actions)


def test_step_is_pure_and_rows_are_independent(world):
    states, actions = _pushing_rows(world)
    ref = world.step(states, actions)
    assert ref.shape == states.shape and ref.dtype == np.float64
    # The block moved in many rows: the check covers contacts, not only free motion.
    assert (np.abs(ref[:, 2:5] - states[:, 2:5]).max(axis=1) > 1e-3).mean() > 0.3
    rng = np.random.default_rng(1)
    for i in rng.permutation(len(states)):
        world.step(states[rng.permutation(len(states))[:3]], rng.uniform(-1, 1, (3, 2)))  # noise
        np.testing.assert_array_equal(world.step(states[i], actions[i])[0], ref[i])
    np.testing.assert_array_equal(world.step(states, actions), ref)
    assert (ref[:, 4] > -np.pi).all() and (ref[:, 4] <= np.pi).all()


def test_clip_action_and_proprio(world):
    a = world.clip_action(np.array([[np.nan, 3.0], [-7.0, 0.25]]))
    np.testing.assert_array_equal(a, [[0.0, 1.0], [-1.0, 0.25]])
    s = world.step(_state(), [[1.0, 0.0]])
    p = world.proprio(s)
    assert p.shape == (1, 4) and p.dtype == np.float32
    np.testing.assert_allclose(p[0, :2], s[0, :2] / 512, rtol=1e-6)
    assert 0.5 < p[0, 2] <= 1.2 and abs(p[0, 3]) < 0.05  # full speed ≈ 1


def test_agent_moves_toward_its_target_and_a_far_block_stays(world):
    s0 = _state(agent=(100.0, 400.0), block=(380.0, 150.0, 0.7))
    s = s0
    for _ in range(4):
        s = world.step(s, [[1.0, -0.5]])
    d = s[0, :2] - s0[0, :2]
    assert d[0] > 30 and d[1] < -15 and d[1] / d[0] == pytest.approx(-0.5, abs=0.05)
    np.testing.assert_array_equal(s[0, [2, 3, 4, 7, 8, 9]], s0[0, [2, 3, 4, 7, 8, 9]])  # exactly still
    # Zero action from rest: nothing moves.
    np.testing.assert_array_equal(world.step(s0, [[0.0, 0.0]]), s0)


def test_pushing_from_the_left_moves_the_block_right_and_it_stops(world):
    # Level with the centre of mass, the disc meets the stem's left face.
    s0 = _state(agent=(170.0, 256.0), block=(256.0, 256.0, 0.0))
    s = s0
    for _ in range(8):
        s = world.step(s, [[1.0, 0.0]])
    assert s[0, 2] - s0[0, 2] > 40  # pushed to +x
    assert abs(s[0, 3] - s0[0, 3]) < 5 and abs(s[0, 4]) < 0.15
    assert s[0, 7] > 50  # still sliding while pushed
    for _ in range(3):  # back off: contact ends, table friction stops the block
        s = world.step(s, [[-1.0, 0.0]])
    np.testing.assert_allclose(s[0, 7:], 0.0, atol=1e-6)
    rest = world.step(s, [[-1.0, 0.0]])
    np.testing.assert_allclose(rest[0, 2:5], s[0, 2:5], atol=1e-6)


def test_a_block_shoved_into_a_wall_stops_at_it(world):
    # Upside-down T (bar at the bottom) pushed down by its stem's tip into the bottom wall.
    s = _state(agent=(256.0, 300.0), block=(256.0, 400.0, np.pi))
    assert not world.overlaps(s)[0]
    for _ in range(15):
        s = world.step(s, [[0.0, 1.0]])
    bar_bottom = s[0, 3] + 40.714
    assert 500 < bar_bottom < 508  # resting on the wall's face (512 - 5), not through it
    assert s[0, 1] + 15 < s[0, 3] - 79.28 + 1  # the disc stopped at the stem's tip
    np.testing.assert_allclose(s[0, 7:], 0.0, atol=1e-3)


def test_render_shapes_colours_and_angles(world):
    s = _state(agent=(100.0, 100.0), block=(300.0, 300.0, 0.0))  # both on pixel centres
    img = world.render(np.repeat(s, 2, axis=0))
    assert img.shape == (2, 3, 64, 64) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[0, :, 12, 12], AGENT_COLOR)  # y=100 → row 12
    np.testing.assert_array_equal(img[0, :, 37, 37], BLOCK_COLOR)  # centre of mass
    assert (img[0, :, 2, 60] > 200).all()  # background is light
    turned = s.copy()
    turned[0, 4] = 1.0
    assert not np.array_equal(world.render(turned)[0], img[0])
    rgb = world.render_rgb(s[0])
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb.transpose(2, 0, 1), img[0])
    goal = _state(block=(150.0, 400.0, 1.0))
    assert not np.array_equal(world.render_rgb(s[0], goal=goal[0]), rgb)


def test_success_position_angle_and_wrap(world):
    g = _state(block=(256.0, 256.0, 1.0))
    assert world.success(g, g)[0]
    off = g.copy()
    off[0, 2] += 25.0
    assert not world.success(off, g)[0]
    turned = g.copy()
    turned[0, 4] += 0.5
    assert not world.success(turned, g)[0]
    a, b = _state(block=(256, 256, np.pi - 0.01)), _state(block=(256, 256, -np.pi + 0.01))
    assert world.success(a, b)[0]
    near = g.copy()
    near[0, 2:5] += (10.0, -10.0, 0.2)
    near[0, :2] = 0.0  # the agent does not matter
    assert world.success(near, g)[0]


def test_sample_states_do_not_overlap(world):
    s = world.sample_states(np.random.default_rng(0), 500)
    assert s.shape == (500, 10) and not world.overlaps(s).any()
    assert (s[:, :2] >= 60).all() and (s[:, :2] <= 452).all()
    assert (s[:, 2:4] >= 120).all() and (s[:, 2:4] <= 392).all()
    np.testing.assert_array_equal(s[:, 5:], 0.0)


def test_sample_task_is_reproducible_and_goals_are_push_rollouts(world):
    n = 6
    starts, goals = world.sample_task(np.random.default_rng(5), n)
    again = world.sample_task(np.random.default_rng(5), n)
    np.testing.assert_array_equal(starts, again[0])
    np.testing.assert_array_equal(goals, again[1])
    assert not world.success(starts, goals).any()
    np.testing.assert_array_equal(goals[:, 5:], 0.0)
    # Replay the first draw: accepted rows' goals are 25-step push rollouts of their starts.
    rng = np.random.default_rng(5)
    s0 = world.sample_states(rng, n)
    policy, s = PushPolicy(world, rng, n), s0
    for _ in range(25):
        s = world.step(s, policy(s))
    kept = (s0 == starts).all(axis=1)
    assert kept.sum() >= n // 2
    np.testing.assert_array_equal(goals[kept, :5], s[kept, :5])


def test_config_validation():
    PushTConfig().validate()
    for bad in (dict(size=8), dict(max_move=0.0), dict(max_move=-5.0), dict(substeps=0)):
        with pytest.raises(ConfigError):
            PushTConfig(**bad).validate()
        with pytest.raises(ConfigError):
            PushT(PushTConfig(**bad))


def test_policy_factory_and_unknown_name(world):
    rng = np.random.default_rng(0)
    assert isinstance(make_pusht_policy("push", world, rng, 2), PushPolicy)
    assert isinstance(make_pusht_policy("random", world, rng, 2), SmoothRandom)
    with pytest.raises(ConfigError, match="push.*random"):
        make_pusht_policy("nope", world, rng, 2)


def test_smooth_random_actions_are_bounded_and_correlated(world):
    rng = np.random.default_rng(0)
    policy = SmoothRandom(world, rng, 200)
    s = world.sample_states(rng, 200)
    acts = np.stack([policy(s) for _ in range(30)])
    assert acts.shape == (30, 200, 2) and np.abs(acts).max() <= 1.0
    corr = np.corrcoef(acts[1:, :, 0].ravel(), acts[:-1, :, 0].ravel())[0, 1]
    assert corr > 0.6


def test_push_policy_moves_the_block_in_most_episodes(world):
    rng = np.random.default_rng(3)
    n = 16
    s0 = world.sample_states(rng, n)
    policy, s = make_pusht_policy("push", world, rng, n), s0
    for _ in range(64):
        a = policy(s)
        assert np.abs(a).max() <= 1.0
        s = world.step(s, a)
    moved, turned = world.errors(s, s0)
    assert ((moved > 40) | (turned > 0.5)).mean() >= 0.7
