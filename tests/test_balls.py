"""Bouncing-balls world: determinism, physics invariants and rendering."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from monde.errors import ConfigError
from monde.worlds import OCCLUDER_COLOR, BallsClips, BallsConfig, BouncingBalls


def _energy(clips: BallsClips, gravity: float) -> np.ndarray:
    """Total energy per clip and frame, [B, T] (mass = r**2, potential zero on the floor)."""
    mass = clips.radius.astype(np.float64)[:, None] ** 2
    s = clips.state.astype(np.float64)
    per_ball = 0.5 * (s[..., 2] ** 2 + s[..., 3] ** 2) + gravity * (1 - s[..., 1])
    return (mass * per_ball).sum(-1)


def _overlap(clips: BallsClips) -> np.ndarray:
    """Penetration depth of every ball pair at every frame, [B, T, pairs] (negative = apart)."""
    pos, r = clips.state[..., :2], clips.radius
    dist = np.linalg.norm(pos[:, :, :, None] - pos[:, :, None], axis=-1)
    reach = r[:, None, :, None] + r[:, None, None, :]
    i, j = np.triu_indices(r.shape[1], 1)
    return (reach - dist)[:, :, i, j]


def test_shapes_and_dtypes():
    cfg = BallsConfig(frames=5, size=32, n_balls=4, occluders=2)
    c = BouncingBalls(cfg).sample(3, 0)
    assert c.video.shape == (3, 5, 3, 32, 32) and c.video.dtype == np.uint8
    assert c.state.shape == (3, 5, 4, 4) and c.state.dtype == np.float32
    assert c.radius.shape == (3, 4) and c.radius.dtype == np.float32
    assert c.visible.shape == (3, 5, 4) and c.visible.dtype == bool
    assert c.occluders.shape == (3, 2, 4) and c.occluders.dtype == np.float32
    assert ((c.radius >= 0.06) & (c.radius <= 0.10)).all()
    assert (c.occluders[..., 2:] > c.occluders[..., :2]).all()


def test_same_seed_same_clips_and_different_seeds_differ():
    world = BouncingBalls(BallsConfig(frames=4, occluders=1))
    a, b = world.sample(4, 7), BouncingBalls(BallsConfig(frames=4, occluders=1)).sample(4, 7)
    assert np.array_equal(a.video, b.video) and np.array_equal(a.state, b.state)
    assert np.array_equal(a.occluders, b.occluders)
    assert not np.array_equal(a.state, world.sample(4, 8).state)
    # A Generator is accepted as well as an int seed.
    assert np.array_equal(a.state, world.sample(4, np.random.default_rng(7)).state)


def test_batch_is_a_function_of_seed_step_rank():
    world = BouncingBalls(BallsConfig(frames=3))
    ref = world.batch(step=5, batch_size=2, seed=1, rank=0)
    assert np.array_equal(ref.video, world.batch(5, 2, seed=1, rank=0).video)
    for other in (world.batch(6, 2, 1, 0), world.batch(5, 2, 2, 0), world.batch(5, 2, 1, 1)):
        assert not np.array_equal(ref.state, other.state)


@pytest.mark.parametrize("gravity", [0.0, 2.0, 6.0])
def test_energy_conserved_with_elastic_bounces(gravity):
    cfg = BallsConfig(frames=90, n_balls=4, gravity=gravity)
    c = BouncingBalls(cfg).sample(16, 3)
    assert (_overlap(c) > -0.005).any(), "no ball-ball collision happened: test is vacuous"
    e = _energy(c, gravity)
    assert np.abs(e / e[:, :1] - 1).max() < 0.02


def test_restitution_below_one_loses_energy():
    cfg = BallsConfig(frames=60, gravity=0.0, restitution=0.5)
    e = _energy(BouncingBalls(cfg).sample(8, 0), 0.0)
    assert (e[:, -1] < 0.9 * e[:, 0]).all()


def test_balls_stay_inside_the_frame():
    c = BouncingBalls(BallsConfig(frames=60, gravity=4.0, speed=(2.0, 3.0))).sample(16, 1)
    pos, r = c.state[..., :2], c.radius[:, None, :, None]
    assert (pos >= r - 1e-5).all() and (pos <= 1 - r + 1e-5).all()


def test_no_overlap_after_collisions():
    cfg = BallsConfig(frames=60, n_balls=8, radius=(0.08, 0.12))
    ov = _overlap(BouncingBalls(cfg).sample(16, 2))
    assert (ov > -0.002).sum() > 20, "too few contacts for the test to mean anything"
    assert ov.max() < 0.5 / cfg.size  # under half a pixel


def test_momentum_and_kinetic_energy_conserved_in_collision():
    world = BouncingBalls(BallsConfig(n_balls=2, gravity=0.0))
    # Clip 0: an off-centre collision in mid-frame; clip 1: two balls that never meet.
    pos = np.array([[[0.35, 0.50], [0.65, 0.53]], [[0.3, 0.3], [0.7, 0.7]]])
    vel = np.array([[[1.0, 0.2], [-0.5, 0.0]], [[0.1, 0.0], [0.0, -0.1]]])
    radius = np.array([[0.08, 0.05], [0.06, 0.06]])
    mass = radius[..., None] ** 2
    p1, v1 = pos, vel
    for _ in range(8):
        p1, v1 = world.step(p1, v1, radius)
    assert ((p1 > radius[..., None] + 0.01) & (p1 < 1 - radius[..., None] - 0.01)).all()
    assert not np.allclose(v1[0], vel[0]), "the balls did not collide"
    np.testing.assert_allclose((mass * v1).sum(1), (mass * vel).sum(1), atol=1e-12)
    ke = lambda v: (mass[..., 0] * (v**2).sum(-1)).sum(-1)  # noqa: E731
    np.testing.assert_allclose(ke(v1), ke(vel), rtol=1e-9)
    assert np.array_equal(pos, np.array([[[0.35, 0.50], [0.65, 0.53]], [[0.3, 0.3], [0.7, 0.7]]]))


def test_gravity_accelerates_downward():
    world = BouncingBalls(BallsConfig(n_balls=1, gravity=3.0))
    pos, vel = world.step(np.array([[[0.5, 0.3]]]), np.zeros((1, 1, 2)), np.array([[0.05]]))
    np.testing.assert_allclose(vel[0, 0], [0.0, 3.0 / 30], rtol=1e-9)
    assert pos[0, 0, 1] > 0.3


def test_ball_colour_at_its_position():
    world = BouncingBalls(BallsConfig(frames=6, size=48, n_balls=3))
    c = world.sample(4, 5)
    px = (c.state[..., :2] * 48).astype(int)  # pixel containing each centre
    b, t, k = np.meshgrid(*map(np.arange, c.visible.shape), indexing="ij")
    rgb = c.video[b, t, :, px[..., 1], px[..., 0]]  # [B, T, K, 3]
    assert np.array_equal(rgb, np.broadcast_to(world.colors, rgb.shape))
    # Corners are background unless a ball sits there.
    img = world.render(np.array([[[0.5, 0.5]] * 3]), np.full((1, 3), 0.1))
    assert (img[0, :, 0, 0] == 0).all() and (img[0, :, 24, 24] == world.colors[2]).all()


def test_occluder_hides_a_ball():
    world = BouncingBalls(BallsConfig(n_balls=2))
    pos = np.array([[[0.5, 0.5], [0.15, 0.15]]])
    occ = np.array([[[0.4, 0.4, 0.6, 0.6]]], np.float32)
    img = world.render(pos, np.full((1, 2), 0.07), occ)
    assert tuple(img[0, :, 32, 32]) == OCCLUDER_COLOR
    assert (img[0, :, 9, 9] == world.colors[1]).all()
    assert world.visible(pos[:, None], occ).tolist() == [[[False, True]]]


def test_sampled_visibility_matches_pixels():
    cfg = BallsConfig(frames=20, occluders=3, occluder_size=(0.25, 0.4))
    c = BouncingBalls(cfg).sample(8, 4)
    assert (~c.visible).any() and c.visible.any()
    px = (c.state[..., :2] * cfg.size).astype(int)
    b, t, _ = np.meshgrid(*map(np.arange, c.visible.shape), indexing="ij")
    rgb = c.video[b, t, :, px[..., 1], px[..., 0]]
    grey = (rgb == OCCLUDER_COLOR).all(-1)
    # Away from occluder edges (where pixel and continuous tests may disagree) they must agree.
    o = c.occluders[:, None, None]
    x, y = c.state[..., 0, None, None], c.state[..., 1, None, None]
    edge = np.minimum(np.abs(x - o[..., [0, 2]]).min(-1), np.abs(y - o[..., [1, 3]]).min(-1))
    clear = (edge > 1.5 / cfg.size).all(-1)
    assert np.array_equal(grey[clear], ~c.visible[clear])


def test_path_occlusion_hides_balls_more_often_and_keeps_physics():
    """Occluders put across balls' paths hide a ball in many more clips; the motion is the
    same clips' motion (placement is drawn after the simulation), and 0 keeps old streams."""
    base = BallsConfig(frames=12, n_balls=2, occluders=1, occluder_size=(0.2, 0.3))
    plain, on = BouncingBalls(base), BouncingBalls(replace(base, path_occlusion=1.0))
    a, b = plain.sample(400, 3), on.sample(400, 3)
    assert np.array_equal(a.state, b.state)
    hid_a, hid_b = (~a.visible).any((1, 2)).mean(), (~b.visible).any((1, 2)).mean()
    assert hid_b > 0.9 and hid_b > hid_a + 0.3, (hid_a, hid_b)
    # Hidden, then seen again within the clip: the event the option exists for.
    back = (~b.visible[:, :-1] & b.visible[:, 1:]).any((1, 2)).mean()
    assert back > 0.4, back
    assert (b.occluders[..., :2] >= 0).all() and (b.occluders[..., 2:] <= 1 + 1e-6).all()
    half = BouncingBalls(replace(base, path_occlusion=0.5)).sample(400, 3)
    moved = (half.occluders != a.occluders).any((1, 2)).mean()
    assert 0.35 < moved < 0.65, moved
    assert np.array_equal(plain.sample(4, 9).video, BouncingBalls(base).sample(4, 9).video)


@pytest.mark.parametrize(
    "kwargs",
    [{"n_balls": 0}, {"radius": (0.2, 0.1)}, {"restitution": 1.5}, {"substeps": 0},
     {"path_occlusion": 1.5}],
)
def test_bad_config_raises(kwargs):
    with pytest.raises(ConfigError):
        BouncingBalls(BallsConfig(**kwargs))


def test_impossible_packing_raises():
    with pytest.raises(ConfigError, match="without overlap"):
        BouncingBalls(BallsConfig(n_balls=10, radius=(0.3, 0.3))).sample(2, 0)
