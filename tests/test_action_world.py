"""Manipulation (action) world: shapes, determinism, grammar, what the pixels show, probe clips."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from monde.errors import ConfigError
from monde.worlds.manipulation import (
    ACTIONS,
    FIRST,
    TRANSITIONS,
    ManipulationConfig,
    ManipulationEpisodes,
    ManipulationWorld,
    anticipation_clips,
    anticipation_windows,
    recognition_clips,
    recognition_windows,
    segments,
)
from monde.worlds.manipulation_scene import LID_COLOR

A = {name: i for i, name in enumerate(ACTIONS)}


@pytest.fixture(scope="module")
def ep() -> ManipulationEpisodes:
    return ManipulationWorld().sample(48, 123)


def _segs(ep: ManipulationEpisodes, name: str):
    """(episode, first frame, end frame) of every complete segment of action ``name``."""
    b, s, e, lab = segments(ep)
    done = e < ep.labels.shape[1]  # the last segment of an episode may be cut short
    keep = (lab == A[name]) & done
    return list(zip(b[keep], s[keep], e[keep]))


def _centroid(frame: np.ndarray, color, tol: int = 30) -> np.ndarray | None:
    """Mean ``(x, y)`` in pixels of the pixels of ``frame [3, H, W]`` within ``tol`` of ``color``."""
    near = (np.abs(frame.astype(int) - np.asarray(color)[:, None, None]) <= tol).all(0)
    if near.sum() < 2:
        return None
    y, x = np.nonzero(near)
    return np.array([x.mean(), y.mean()])


def _palm_width(frame: np.ndarray) -> int:
    """Widest run of near-white pixels in any row: the palm, which spans both fingers."""
    white = (frame.min(0) > 200).astype(int)
    return int(white.sum(1).max())


# ---------------------------------------------------------------------------------- basics
def test_shapes_and_dtypes():
    cfg = ManipulationConfig(frames=20, size=32, n_objects=(2, 3))
    e = ManipulationWorld(cfg).sample(3, 0)
    assert e.video.shape == (3, 20, 3, 32, 32) and e.video.dtype == np.uint8
    assert e.labels.shape == (3, 20) and e.labels.dtype == np.int64
    assert e.segment_start.shape == (3, 20) and e.segment_start.dtype == bool
    assert e.hand.shape == (3, 20, 2) and e.hand.dtype == np.float32
    assert e.grip.shape == (3, 20) and e.lid.shape == (3, 20)
    assert e.blocks.shape == (3, 20, 3, 2) and e.block_size.shape == (3, 3)
    assert e.block_color.shape == (3, 3, 3) and e.block_color.dtype == np.uint8
    assert e.held.shape == e.target.shape == (3, 20) and e.held.dtype == np.int64
    assert e.has_box.shape == e.hinge.shape == (3,) and e.box.shape == (3, 4)
    assert ((e.labels >= 0) & (e.labels < len(ACTIONS))).all()
    assert e.segment_start[:, 0].all()
    n = (e.block_size > 0).sum(1)
    assert ((n >= 2) & (n <= 3)).all()
    assert np.isnan(e.blocks.transpose(0, 2, 1, 3)[e.block_size == 0]).all()
    assert len(ACTIONS) >= 8 and len(set(ACTIONS)) == len(ACTIONS)


def test_same_seed_same_episodes_and_different_seeds_differ():
    cfg = ManipulationConfig(frames=24, size=32)
    a, b = ManipulationWorld(cfg).sample(4, 7), ManipulationWorld(cfg).sample(4, np.random.default_rng(7))
    for f in dataclasses.fields(ManipulationEpisodes):
        assert np.array_equal(getattr(a, f.name), getattr(b, f.name), equal_nan=f.name != "video")
    assert not np.array_equal(a.video, ManipulationWorld(cfg).sample(4, 8).video)


def test_batch_is_a_function_of_seed_step_rank():
    world = ManipulationWorld(ManipulationConfig(frames=16, size=32))
    ref = world.batch(step=5, batch_size=2, seed=1, rank=0)
    assert np.array_equal(ref.video, world.batch(5, 2, seed=1, rank=0).video)
    for other in (world.batch(6, 2, 1, 0), world.batch(5, 2, 2, 0), world.batch(5, 2, 1, 1)):
        assert not np.array_equal(ref.video, other.video)


@pytest.mark.parametrize(
    "bad",
    [
        dict(frames=0), dict(size=8), dict(n_objects=(0, 2)), dict(n_objects=(3, 2)),
        dict(n_objects=(1, 9)), dict(n_objects=(5, 5)), dict(duration=(0, 3)), dict(duration=(6, 5)),
        dict(block_size=(0.0, 0.1)), dict(box_width=(0.3, 0.2)), dict(box_prob=1.5),
        dict(carry_prob=-0.1), dict(idle_prob=2.0), dict(task_weights=(0.0, 0.0, 0.0)),
        dict(task_weights=(-1.0, 1.0, 1.0)), dict(background=(0, 0, 300)),
    ],
)
def test_config_validation(bad):
    with pytest.raises(ConfigError, match="ManipulationConfig"):
        ManipulationWorld(ManipulationConfig(**bad))


# ---------------------------------------------------------------------------------- grammar
def test_labels_follow_the_grammar(ep):
    cfg = ManipulationConfig()
    T = ep.labels.shape[1]
    for b in range(len(ep.labels)):
        starts = np.nonzero(ep.segment_start[b])[0]
        seq = [ACTIONS[i] for i in ep.labels[b, starts]]
        assert seq[0] in FIRST
        for prev, nxt in zip(seq, seq[1:]):
            assert nxt in TRANSITIONS[prev], (b, prev, nxt)
        # The label is constant within a segment and each segment lasts `duration` frames.
        changes = np.nonzero(np.diff(ep.labels[b]))[0] + 1
        assert set(changes) <= set(starts)
        lengths = np.diff(np.append(starts, T))
        assert (lengths[:-1] >= cfg.duration[0]).all() and (lengths <= cfg.duration[1]).all()


def test_every_action_occurs_in_reasonable_proportion():
    e = ManipulationWorld(ManipulationConfig(size=16)).sample(192, 5)
    freq = np.bincount(e.labels.ravel(), minlength=len(ACTIONS)) / e.labels.size
    assert (freq > 0.02).all(), dict(zip(ACTIONS, freq.round(3)))


def test_reach_end_pose_tells_the_next_action(ep):
    """Anticipation is possible: where a reach ends decides what comes next."""
    b, s, e, lab = segments(ep)
    nxt = np.append(lab[1:], -1)
    seen = set()
    for i in np.nonzero((lab == A["reach"]) & (e < ep.labels.shape[1]))[0]:
        bb, last, k = b[i], e[i] - 1, ep.target[b[i], s[i]]
        hx, hy = ep.hand[bb, last]
        if nxt[i] == A["grasp"]:  # hand centred over the block, fingers open around it
            bx, size = ep.blocks[bb, last, k, 0], ep.block_size[bb, k]
            assert abs(hx - bx) < 1e-4 and ep.grip[bb, last] > size
        elif nxt[i] == A["push"]:  # hand low beside the block, fingers closed
            bx, size = ep.blocks[bb, last, k, 0], ep.block_size[bb, k]
            assert abs(hx - bx) > size / 2 and hy > 0.7 and ep.grip[bb, last] < 0.05
        else:  # open / close: the target is the box
            assert k == ep.blocks.shape[2] and ep.has_box[bb]
            assert (ep.lid[bb, last] == 0) == (nxt[i] == A["open"])
        seen.add(int(nxt[i]))
    assert {A["grasp"], A["push"]} <= seen


def test_a_single_frame_does_not_tell_the_next_action(ep):
    """Within one task, the pose that ends an action recurs at the end of a later one with a
    different successor (reach->push vs push->retreat, grasp->lift vs place->release,
    reach->grasp vs release->retreat|idle): anticipation needs the motion, not the last frame."""
    b, s, e, lab = segments(ep)
    T, found = ep.labels.shape[1], {}
    for i in range(len(b)):
        for first, later in (("reach", "push"), ("grasp", "place"), ("reach", "release")):
            if lab[i] != A[first] or i + 1 >= len(b) or b[i + 1] != b[i]:
                continue
            if first == "reach" and lab[i + 1] != A["push" if later == "push" else "grasp"]:
                continue
            j = next((j for j in range(i + 1, len(b)) if b[j] == b[i] and lab[j] == A[later]), None)
            if j is None or b[j] != b[i] or e[j] >= T:
                continue
            bb, k, t0, t1 = b[i], ep.target[b[i], s[i]], e[i] - 1, e[j] - 1
            assert ep.target[bb, s[j]] == k
            rel0, rel1 = ep.hand[bb, t0] - ep.blocks[bb, t0, k], ep.hand[bb, t1] - ep.blocks[bb, t1, k]
            assert np.allclose(rel0, rel1, atol=1e-5) and abs(ep.grip[bb, t0] - ep.grip[bb, t1]) < 1e-5
            assert lab[i + 1] != (lab[j + 1] if j + 1 < len(b) and b[j + 1] == bb else -1)
            found[later] = found.get(later, 0) + 1
    assert set(found) == {"push", "place", "release"}, found


# ------------------------------------------------------------------------------ pixel checks
def test_fingers_open_on_release_and_close_on_grasp(ep):
    pairs = 0
    for b, s, e in _segs(ep, "release"):
        g0 = [(bb, ss, ee) for bb, ss, ee in _segs(ep, "grasp") if bb == b and ee <= s]
        if not g0:
            continue
        _, _, grasp_end = g0[-1]
        assert ep.grip[b, e - 1] > ep.grip[b, grasp_end - 1] + 0.05
        assert _palm_width(ep.video[b, e - 1]) >= _palm_width(ep.video[b, grasp_end - 1]) + 3
        pairs += 1
    for b, s, e in _segs(ep, "grasp"):  # fingers close during the grasp itself
        assert _palm_width(ep.video[b, e - 1]) <= _palm_width(ep.video[b, s - 1]) - 3
    assert pairs >= 5


def test_lifted_block_moves_up_and_carried_block_sideways(ep):
    S = ep.video.shape[-1]
    n_lift = n_carry = 0
    for name in ("lift", "carry"):
        for b, s, e in _segs(ep, name):
            k = ep.held[b, s]
            assert k >= 0
            c0 = _centroid(ep.video[b, s - 1], ep.block_color[b, k])
            c1 = _centroid(ep.video[b, e - 1], ep.block_color[b, k])
            if name == "lift":
                assert c1[1] < c0[1] - 0.15 * S and abs(c1[0] - c0[0]) < 1
                n_lift += 1
            else:
                assert abs(c1[0] - c0[0]) > 0.08 * S and abs(c1[1] - c0[1]) < 1
                n_carry += 1
    assert n_lift >= 5 and n_carry >= 2


def test_pushed_block_slides_along_the_floor(ep):
    S, n = ep.video.shape[-1], 0
    for b, s, e in _segs(ep, "push"):
        k = ep.target[b, s]
        c0 = _centroid(ep.video[b, s - 1], ep.block_color[b, k])
        c1 = _centroid(ep.video[b, e - 1], ep.block_color[b, k])
        hand_dx = ep.hand[b, e - 1, 0] - ep.hand[b, s - 1, 0]
        assert abs(c1[0] - c0[0]) > 0.08 * S and abs(c1[1] - c0[1]) < 0.5
        assert np.sign(c1[0] - c0[0]) == np.sign(hand_dx)
        assert ep.held[b, s] == -1
        n += 1
    assert n >= 2


def test_lid_moves_during_open_and_close(ep):
    S, n = ep.video.shape[-1], 0
    for name, up in (("open", True), ("close", False)):
        for b, s, e in _segs(ep, name):
            c0 = _centroid(ep.video[b, s - 1], LID_COLOR, tol=20)
            c1 = _centroid(ep.video[b, e - 1], LID_COLOR, tol=20)
            assert c0 is not None and c1 is not None, "the lid is not drawn"
            dy = c1[1] - c0[1]
            assert (dy < -0.03 * S) if up else (dy > 0.03 * S), (name, dy)
            n += 1
    assert n >= 2


def test_idle_frames_do_not_change(ep):
    n = 0
    for b, s, e in _segs(ep, "idle"):
        if s > 0:
            assert (ep.video[b, s - 1:e] == ep.video[b, s - 1]).all()
            n += 1
    assert n >= 2


def test_retreat_moves_the_hand_up(ep):
    for b, s, e in _segs(ep, "retreat"):
        assert ep.hand[b, e - 1, 1] < ep.hand[b, s - 1, 1] - 0.05


# ------------------------------------------------------------------------------- probe clips
def _stamped(ep: ManipulationEpisodes) -> ManipulationEpisodes:
    """A copy whose frame (b, t) is stamped with its episode and time, to read back from clips."""
    B, T = ep.labels.shape
    video = np.zeros((B, T, 3, 2, 2), np.uint8)
    video[:, :, 0, 0, 0] = np.arange(T)
    video[:, :, 1, 0, 0] = np.arange(B)[:, None]
    return dataclasses.replace(ep, video=video)


@pytest.mark.parametrize("clip", [4, 8])
def test_recognition_clips_labels_and_no_leakage(ep, clip):
    st = _stamped(ep)
    video, labels = recognition_clips(st, clip, rng=0)
    assert video.shape == (len(labels), clip, 3, 2, 2) and labels.dtype == np.int64
    assert np.array_equal(recognition_clips(st, clip, rng=0)[1], labels)
    seg_id = np.cumsum(ep.segment_start, axis=1) - 1
    for v, lab in zip(video, labels):
        b, t = int(v[0, 1, 0, 0]), v[:, 0, 0, 0].astype(int)
        assert (v[:, 1, 0, 0] == b).all() and np.array_equal(t, t[0] + np.arange(clip))
        last = seg_id[b, t[-1]]
        assert ep.labels[b, t[-1]] == lab  # the clip ends inside the labelled segment...
        assert (seg_id[b, t] == last).sum() >= math.ceil(0.6 * clip)  # ...mostly covers it
    # Every segment at least `clip` long gets a clip lying fully inside it.
    b, s, e, _ = segments(ep)
    assert len(labels) >= ((e - s) >= clip).sum()
    bw, start, lw = recognition_windows(ep, clip, 0, min_cover=1.0)
    for bb, t0 in zip(bw, start):
        assert (seg_id[bb, t0:t0 + clip] == seg_id[bb, t0]).all()
    assert len(bw) == ((e - s) >= clip).sum()


@pytest.mark.parametrize("clip,gap", [(8, 0), (6, 3)])
def test_anticipation_clips_labels_and_no_leakage(ep, clip, gap):
    st = _stamped(ep)
    video, nxt, cur = anticipation_clips(st, clip, gap)
    assert video.shape == (len(nxt), clip, 3, 2, 2) and nxt.shape == cur.shape == (len(nxt),)
    for v, n, c in zip(video, nxt, cur):
        b, t = int(v[0, 1, 0, 0]), v[:, 0, 0, 0].astype(int)
        assert np.array_equal(t, t[0] + np.arange(clip))
        s = t[-1] + 1 + gap  # the anticipated action starts here...
        assert ep.segment_start[b, s] and ep.labels[b, s] == n and ep.labels[b, s - 1] == c
        assert n != c and ACTIONS[n] in TRANSITIONS[ACTIONS[c]]
        assert (t < s - gap).all()  # ...and no clip frame is at or after it (or in the gap)
    bb, ss = np.nonzero(ep.segment_start)
    assert len(nxt) == ((ss >= clip + gap) & (ss > 0)).sum()
    assert len(anticipation_windows(ep, clip, gap)[0]) == len(nxt)
