"""Intuitive-physics pairs: matched twins, the events themselves, and the training world."""

from __future__ import annotations

import numpy as np
import pytest

from monde.errors import ConfigError
from monde.worlds.balls import PALETTE, BallsConfig, BouncingBalls
from monde.worlds.intphys import PRINCIPLES, VARIANTS, IntPhys, IntPhysConfig

N = 16


@pytest.fixture(scope="module")
def ip() -> IntPhys:
    return IntPhys()


@pytest.fixture(scope="module")
def pairs(ip):
    return ip.all_pairs(N, seed=0)


def _pixels(frame: np.ndarray, rgb) -> np.ndarray:
    """bool ``[..., H, W]``: pixels of ``frame [..., 3, H, W]`` exactly of colour ``rgb``."""
    return (frame == np.asarray(rgb, np.uint8)[:, None, None]).all(-3)


def test_shapes_dtypes_and_variants(ip, pairs):
    cfg = ip.cfg
    assert tuple(pairs) == PRINCIPLES
    for name, r in pairs.items():
        assert r.principle == name
        for clip in (r.possible, r.impossible):
            assert clip.shape == (N, cfg.frames, 3, cfg.size, cfg.size) and clip.dtype == np.uint8
        assert r.onset.shape == (N,) and np.issubdtype(r.onset.dtype, np.integer)
        assert ((r.onset >= cfg.onset[0]) & (r.onset <= cfg.onset[1])).all()
        names = VARIANTS[name]
        assert r.variant == [names[i % len(names)] for i in range(N)]
        assert r.possible_state.shape == r.impossible_state.shape == (N, cfg.frames, cfg.n_balls, 4)
        assert r.radius.shape == (N, cfg.n_balls) and r.occluders.shape == (N, cfg.occluders, 4)
        assert ((r.ball >= 0) & (r.ball < cfg.n_balls)).all()


def test_deterministic_given_seed(ip):
    a, b = ip.pairs("gravity", 6, 3), IntPhys().pairs("gravity", 6, 3)
    for f in ("possible", "impossible", "onset", "possible_state"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
    assert a.variant == b.variant
    assert not np.array_equal(a.possible, ip.pairs("gravity", 6, 4).possible)
    # The first pairs do not depend on how many are asked for.
    c = ip.pairs("gravity", 3, 3)
    assert np.array_equal(c.impossible, a.impossible[:3]) and c.variant == a.variant[:3]


def test_twins_identical_before_onset_and_different_soon_after(pairs):
    for name, r in pairs.items():
        for i, o in enumerate(r.onset):
            assert np.array_equal(r.possible[i, :o], r.impossible[i, :o]), (name, i)
            same = np.array_equal(r.possible_state[i, :o], r.impossible_state[i, :o])
            assert same, (name, i)
            differs = (r.possible[i, o:] != r.impossible[i, o:]).any((1, 2, 3))
            # The violation shows at the onset, or (permanence) when the ball should re-emerge.
            assert differs.any() and differs.argmax() <= (6 if name == "permanence" else 0), (name, i)


def test_ball_seen_before_the_onset(pairs):
    """The ball the violation is about is in view in at least 4 of the 6 frames before it."""
    for name, r in pairs.items():
        for i, o in enumerate(r.onset):
            for k in (r.ball[i], r.partner[i]) if name == "solidity" else (r.ball[i],):
                seen = _pixels(r.possible[i, o - 6:o], PALETTE[k]).sum((-1, -2)) >= 3
                assert seen.sum() >= 4, (name, i)


def test_possible_twins_follow_the_training_physics(ip, pairs):
    world = ip.training_world()
    for name, r in pairs.items():
        s, radius = r.possible_state.astype(np.float64), r.radius.astype(np.float64)
        for t in range(1, ip.cfg.frames):  # one step at a time: the states are float32
            pos, vel = world.step(s[:, t - 1, :, :2], s[:, t - 1, :, 2:], radius)
            np.testing.assert_allclose(pos, s[:, t, :, :2], atol=1e-4, err_msg=name)
            np.testing.assert_allclose(vel, s[:, t, :, 2:], atol=1e-3, err_msg=name)
        lo, hi = ip.cfg.radius
        assert ((r.radius >= lo - 1e-6) & (r.radius <= hi + 1e-6)).all()


def test_training_world_has_the_same_physics(ip):
    cfg, world = ip.cfg, ip.training_world()
    wc = world.cfg
    assert (wc.gravity, wc.dt, wc.n_balls, wc.size, wc.occluders) == (
        cfg.gravity, cfg.dt, cfg.n_balls, cfg.size, cfg.occluders)
    assert tuple(wc.radius) == cfg.radius and tuple(wc.speed) == cfg.speed and wc.collisions
    assert wc.frames == cfg.frames and ip.training_world(frames=8).cfg.frames == 8
    clips = ip.training_world(frames=8).sample(2, 0)
    assert clips.video.shape == (2, 8, 3, cfg.size, cfg.size)


def test_permanence_ball_never_comes_back(pairs):
    r = pairs["permanence"]
    for i, o in enumerate(r.onset):
        rgb = PALETTE[r.ball[i]]
        poss = _pixels(r.possible[i], rgb).sum((-1, -2))
        imp = _pixels(r.impossible[i], rgb).sum((-1, -2))
        assert poss[o] == 0, "the ball is fully hidden at the onset"
        assert (imp[o:] == 0).all(), "the vanished ball was drawn"
        assert poss[o + 1:o + 7].max() >= 10, "the ball does not re-emerge in the possible twin"
        assert np.isnan(r.impossible_state[i, o:, r.ball[i]]).all()
        # The other balls are untouched.
        others = np.arange(r.radius.shape[1]) != r.ball[i]
        assert np.array_equal(r.possible_state[i][:, others], r.impossible_state[i][:, others])


def test_continuity_ball_jumps(ip, pairs):
    r, S = pairs["continuity"], ip.cfg.size
    for i, o in enumerate(r.onset):
        k = r.ball[i]
        sp, si = r.possible_state[i, :, k], r.impossible_state[i, :, k]
        assert np.linalg.norm(si[o, :2] - sp[o, :2]) >= 0.3
        assert np.linalg.norm(si[o, :2] - si[o - 1, :2]) >= 0.3
        assert np.linalg.norm(sp[o, :2] - sp[o - 1, :2]) < 0.2  # at most ~2.8 sides/s
        assert np.array_equal(si[o, 2:], sp[o, 2:]), "the motion continues from the new place"
        x, y = (si[o, :2] * S).astype(int)
        assert (r.impossible[i, o, :, y, x] == PALETTE[k]).all()
        assert not (r.possible[i, o, :, y, x] == PALETTE[k]).all()


def test_solidity_balls_bounce_or_pass_through(pairs):
    r = pairs["solidity"]
    idx = np.arange(N)
    a, b = r.ball, r.partner
    reach = r.radius[idx, a] + r.radius[idx, b]
    after = r.onset[:, None] + np.arange(5)  # the onset and the 4 frames after it
    rel_v = {n: s[idx, r.onset, a, 2:] - s[idx, r.onset, b, 2:]
             for n, s in (("p", r.possible_state), ("i", r.impossible_state))}
    dist = {n: np.linalg.norm(s[idx[:, None], after, a[:, None], :2]
                              - s[idx[:, None], after, b[:, None], :2], axis=-1).min(1)
            for n, s in (("p", r.possible_state), ("i", r.impossible_state))}
    # Possible: the collision changes the relative velocity (compared with the impossible
    # twin, which was the same at onset - 1 and moved freely since), and the discs stay apart.
    assert (np.linalg.norm(rel_v["p"] - rel_v["i"], axis=-1) > 0.5).all()
    assert (dist["p"] > reach - 1 / 64).all()
    # Impossible: the centres come much closer than the sum of radii.
    assert (dist["i"] < 0.7 * reach).all()
    assert (a != b).all()


def test_gravity_reverse_and_hover(ip, pairs):
    r, g, dt = pairs["gravity"], ip.cfg.gravity, ip.cfg.dt
    for i, o in enumerate(r.onset):
        k = r.ball[i]
        sp, si = r.possible_state[i, :, k], r.impossible_state[i, :, k]
        if r.variant[i] == "reverse":
            # Accelerating upward (vy falls) and moving up a few frames later.
            assert si[o + 3, 3] < min(si[o - 1, 3], 0), i
            assert si[o, 3] == pytest.approx(si[o - 1, 3] - g * dt, abs=1e-4)
            assert sp[o, 3] == pytest.approx(sp[o - 1, 3] + g * dt, abs=1e-4)
        else:
            assert (si[o:, 2:] == 0).all() and (si[o:, :2] == si[o - 1, :2]).all()
            # The ball's pixels freeze in the impossible twin and move in the possible one.
            imp = _pixels(r.impossible[i, o - 1:], PALETTE[k])
            assert imp[0].sum() >= 10 and (imp == imp[:1]).all()
            poss = _pixels(r.possible[i, o - 1:o + 3], PALETTE[k])
            assert not (poss == poss[:1]).all()
        assert 1 - r.radius[i, k] - sp[o, 1] >= 0.25, "airborne at the onset"
    assert set(r.variant) == {"reverse", "hover"}


def test_constancy_colour_or_size_changes(ip, pairs):
    r, K = pairs["constancy"], ip.cfg.n_balls
    unused = PALETTE[K:]
    for i, o in enumerate(r.onset):
        k = r.ball[i]
        np.testing.assert_array_equal(r.possible_state[i], r.impossible_state[i])  # same motion
        old_p = _pixels(r.possible[i, o:o + 4], PALETTE[k]).sum((-1, -2))
        old_i = _pixels(r.impossible[i, o:o + 4], PALETTE[k]).sum((-1, -2))
        new = sum(_pixels(r.impossible[i], c).sum((-1, -2)) for c in unused)
        assert (old_p >= 10).all()
        if r.variant[i] == "colour":
            assert (old_i == 0).all() and (new[:o] == 0).all() and (new[o:o + 4] >= 10).all()
        else:
            ratio = old_i / old_p
            assert ((ratio < 0.5) | (ratio > 1.8)).all(), ratio
            assert (new == 0).all()
    assert set(r.variant) == {"colour", "size"}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"onset": (2, 10)}, "onset"),
        ({"onset": (8, 22)}, "onset"),
        ({"onset": (12, 8)}, "onset"),
        ({"n_balls": len(PALETTE)}, "n_balls"),
        ({"radius": (0.2, 0.1)}, "radius"),
        ({"occluders": -1}, "occluders"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ConfigError, match=f"IntPhysConfig.*{match}"):
        IntPhys(IntPhysConfig(**kwargs))


def test_bad_requests_raise(ip):
    with pytest.raises(ConfigError) as e:
        ip.pairs("buoyancy", 4, 0)
    assert all(p in str(e.value) for p in PRINCIPLES)
    with pytest.raises(ConfigError, match="n_balls >= 2"):
        IntPhys(IntPhysConfig(n_balls=1)).pairs("solidity", 2, 0)
    with pytest.raises(ConfigError, match="occluders >= 1"):
        IntPhys(IntPhysConfig(occluders=0)).pairs("permanence", 2, 0)
    with pytest.raises(ConfigError):
        ip.pairs("gravity", 0, 0)


def test_balls_without_collisions_pass_through():
    pos = np.array([[[0.3, 0.5], [0.7, 0.5]]])
    vel = np.array([[[1.0, 0.0], [-1.0, 0.0]]])
    radius = np.full((1, 2), 0.08)
    runs = {}
    for flag in (True, False):
        world = BouncingBalls(BallsConfig(n_balls=2, gravity=0.0, collisions=flag))
        p, v = pos, vel
        for _ in range(9):  # 0.3 s: they meet after ~0.12 s
            p, v = world.step(p, v, radius)
        runs[flag] = p[0, :, 0]
    assert runs[True][0] < 0.5 < runs[True][1]  # bounced back
    assert runs[False][0] > 0.5 > runs[False][1]  # passed through
    # Walls still reflect without ball-ball collisions.
    world = BouncingBalls(BallsConfig(n_balls=1, gravity=0.0, collisions=False))
    p, v = world.step(np.array([[[0.1, 0.5]]]), np.array([[[-3.0, 0.0]]]), np.array([[0.08]]))
    assert v[0, 0, 0] > 0


def test_render_colour_override():
    world = BouncingBalls(BallsConfig(n_balls=2, size=32))
    pos = np.array([[[[0.3, 0.3], [0.7, 0.7]]] * 3])  # [1, 3, 2, 2]
    radius = np.full((1, 2), 0.1)
    ref = world._render(pos, radius, None)
    assert np.array_equal(ref, world._render(pos, radius, None, world.colors))
    per_frame = np.broadcast_to(world.colors, (1, 3, 2, 3)).copy()
    per_frame[0, 2, 1] = PALETTE[5]
    out = world._render(pos, radius, None, per_frame)
    assert np.array_equal(out[:, :2], ref[:, :2])
    assert (out[0, 2, :, 22, 22] == PALETTE[5]).all() and (ref[0, 2, :, 22, 22] == PALETTE[1]).all()
