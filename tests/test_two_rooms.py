"""Two-Rooms world: wall and door physics, action clipping, rendering, tasks, Gymnasium API."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from monde.errors import ConfigError
from monde.worlds.two_rooms import AGENT_LEVEL, TwoRooms, TwoRoomsConfig


@pytest.fixture(scope="module")
def world() -> TwoRooms:
    return TwoRooms()


def test_random_walks_never_enter_the_wall_or_leave_the_arena(world):
    rng = np.random.default_rng(0)
    c = world.cfg
    pos = world.sample_positions(rng, 2000, inset=0.0)
    assert not world.in_wall(pos).any()
    crossed = np.zeros(len(pos), bool)
    room0 = world.room(pos)
    for _ in range(300):
        # Larger than max_speed on purpose: step() must clip them.
        pos = world.step(pos, rng.normal(0, 2.0, pos.shape))
        assert not world.in_wall(pos).any()
        assert (pos >= world.lo).all() and (pos <= world.hi).all()
        # Inside the slab an agent can only be in the doorway.
        slab = np.abs(pos[:, 0] - world.center) < c.wall_half
        assert (np.abs(pos[slab, 1] - c.door_y) < c.door_half).all()
        crossed |= world.room(pos) != room0
    # The door is actually passable: some random walkers changed rooms.
    assert crossed.any()


def test_the_wall_blocks_and_the_door_lets_through(world):
    c = world.cfg
    start = np.array([[10.0, 10.0], [10.0, 54.0], [10.0, c.door_y]])
    pos = start.copy()
    push = np.tile([c.max_speed, 0.0], (len(pos), 1))
    for _ in range(60):
        pos = world.step(pos, push)
    # Far from the door: stopped at the wall's left face, y unchanged.
    assert (world.room(pos[:2]) == 0).all()
    np.testing.assert_allclose(pos[:2, 0], world.center - c.wall_half, atol=1e-4)
    np.testing.assert_allclose(pos[:2, 1], start[:2, 1])
    # Lined up with the door: through it, into the right room, up to the border.
    assert world.room(pos[2:])[0] == 1
    assert pos[2, 0] == pytest.approx(world.hi)


def test_blocked_moves_slide_along_the_wall(world):
    c = world.cfg
    face = world.center - c.wall_half - 1e-6
    pos = world.step(np.array([[face, 10.0]]), np.array([[1.5, 1.5]]))
    assert pos[0, 0] == pytest.approx(face) and pos[0, 1] == pytest.approx(11.5)


def test_the_door_frame_keeps_an_agent_in_the_doorway(world):
    c = world.cfg
    for dy in (c.max_speed, -c.max_speed):
        pos = np.array([[world.center + 0.7, c.door_y]])
        for _ in range(10):
            pos = world.step(pos, np.array([[0.0, dy]]))
            # Pushed along the doorway: it slides to the frame and stays in the slab.
            assert pos[0, 0] == pytest.approx(world.center + 0.7)
            assert abs(pos[0, 1] - c.door_y) < c.door_half
        assert abs(pos[0, 1] - c.door_y) == pytest.approx(c.door_half, abs=1e-4)


def test_clip_action_caps_the_norm_and_keeps_small_actions(world):
    v = world.cfg.max_speed
    rng = np.random.default_rng(1)
    big = rng.normal(0, 10, (500, 2))
    big = big[np.linalg.norm(big, axis=1) > v]
    clipped = world.clip_action(big)
    np.testing.assert_allclose(np.linalg.norm(clipped, axis=1), v, rtol=1e-9)
    # Same direction.
    cos = (clipped * big).sum(1) / (np.linalg.norm(clipped, axis=1) * np.linalg.norm(big, axis=1))
    np.testing.assert_allclose(cos, 1.0, rtol=1e-9)
    small = np.array([[0.1, -0.2], [1.0, 1.0], [0.0, 0.0], [-v + 1e-3, 0.0]])
    np.testing.assert_array_equal(world.clip_action(small), small)
    # NaN becomes 0 rather than poisoning the state.
    assert np.isfinite(world.clip_action(np.array([[np.nan, 1.0]]))).all()


def test_render_shape_and_the_brightest_pixel_is_the_agent(world):
    rng = np.random.default_rng(2)
    pos = world.sample_positions(rng, 50)
    img = world.render(pos)
    assert img.shape == (50, 1, 64, 64) and img.dtype == np.uint8
    for p, im in zip(pos, img[:, 0]):
        row, col = np.unravel_index(np.argmax(im), im.shape)
        assert abs(col + 0.5 - p[0]) <= 0.5 + 1e-6 and abs(row + 0.5 - p[1]) <= 0.5 + 1e-6
        assert im.max() > 200
    # The wall and the border are drawn, the door is a gap.
    empty = world.background
    assert empty[5, 32] > 0 and empty[32, 32] == 0 and empty[0, 10] > 0 and empty[10, 10] == 0
    # An agent sitting exactly on a pixel centre gets full brightness there.
    centred = world.render(np.array([[10.5, 20.5]]))[0, 0]
    assert centred[20, 10] == AGENT_LEVEL
    rgb = world.render_rgb(np.array([10.5, 20.5]), goal=np.array([50.5, 40.5]))
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.uint8
    assert rgb[40, 50, 1] > 150 and rgb[40, 50, 0] == 0  # the goal is green


def test_sample_task_opposite_rooms_and_deterministic(world):
    c = world.cfg
    start, goal = world.sample_task(np.random.default_rng(3), 400)
    assert start.shape == goal.shape == (400, 2)
    assert (world.room(start) != world.room(goal)).all()
    for p in (start, goal):
        assert not world.in_wall(p).any()
        assert (np.abs(p[:, 0] - world.center) >= c.wall_half + 2.0 - 1e-9).all()
        assert (p >= world.lo + 2.0 - 1e-9).all() and (p <= world.hi - 2.0 + 1e-9).all()
    # Both rooms are used for starts.
    assert set(world.room(start)) == {0, 1}
    again = world.sample_task(np.random.default_rng(3), 400)
    np.testing.assert_array_equal(start, again[0])
    np.testing.assert_array_equal(goal, again[1])
    other = world.sample_task(np.random.default_rng(4), 400)
    assert not np.array_equal(start, other[0])


def test_sample_positions_in_the_requested_rooms(world):
    room = np.array([0, 1] * 50)
    pos = world.sample_positions(np.random.default_rng(5), 100, room)
    np.testing.assert_array_equal(world.room(pos), room)


def test_success_radius(world):
    r = world.cfg.success_radius
    goal = np.array([[20.0, 20.0]])
    inside = np.array([[20.0 + r - 0.01, 20.0]])
    outside = np.array([[20.0, 20.0 + r + 0.01]])
    assert world.success(inside, goal)[0] and not world.success(outside, goal)[0]
    assert world.success(goal, goal)[0]


@pytest.mark.parametrize("kwargs, message", [
    ({"max_speed": 5.0}, "max_speed"),
    ({"size": 8}, "size"),
    ({"door_half": 0.0}, "door_half"),
])
def test_invalid_world_config(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TwoRoomsConfig(**kwargs).validate()
    with pytest.raises(ConfigError):
        TwoRooms(TwoRoomsConfig(**kwargs))


# ---------------------------------------------------------------------------- Gymnasium
def test_gym_env_passes_the_checker():
    pytest.importorskip("gymnasium")
    from gymnasium.utils.env_checker import check_env

    from monde.worlds.gym_envs import TwoRoomsEnv

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(TwoRoomsEnv(), skip_render_check=False)


def test_gym_env_reaches_the_goal_and_terminates():
    pytest.importorskip("gymnasium")
    from monde.worlds.gym_envs import TwoRoomsEnv

    env = TwoRoomsEnv()
    obs, info = env.reset(seed=0, options={"start": [10.0, 10.0], "goal": [17.0, 10.0]})
    assert obs["pixels"].shape == (1, 64, 64) and obs["pixels"].dtype == np.uint8
    np.testing.assert_allclose(obs["proprio"], [10.0, 10.0])
    assert not info["success"] and info["goal_pixels"].shape == (1, 64, 64)
    obs, reward, terminated, truncated, info = env.step(np.array([2.0, 0.0], np.float32))
    assert (reward, terminated, truncated) == (0.0, False, False)
    obs, reward, terminated, truncated, info = env.step(np.array([2.0, 0.0], np.float32))
    assert reward == 1.0 and terminated and not truncated and info["success"]
    np.testing.assert_allclose(obs["proprio"], [14.0, 10.0])
    assert env.render().shape == (64, 64, 3)


def test_gym_env_truncates_and_resets_deterministically():
    pytest.importorskip("gymnasium")
    from monde.worlds.gym_envs import TwoRoomsEnv, make

    env = TwoRoomsEnv(max_steps=3)
    a, info_a = env.reset(seed=7)
    b, info_b = TwoRoomsEnv().reset(seed=7)
    np.testing.assert_array_equal(a["proprio"], b["proprio"])
    np.testing.assert_array_equal(info_a["goal"], info_b["goal"])
    w = env.world
    assert w.room(a["proprio"][None])[0] != w.room(info_a["goal"][None])[0]
    for t in range(3):
        *_, terminated, truncated, _ = env.step(np.zeros(2, np.float32))
        assert not terminated and truncated == (t == 2)
    assert isinstance(make("two-rooms"), TwoRoomsEnv)
    with pytest.raises(ConfigError, match="unknown world"):
        make("mars")
