"""Manipulation world: side-view videos of a gripper performing actions drawn from a grammar.

A video JEPA is pretrained on these unlabeled videos; with the encoder frozen, probes then
*recognise* the current action from a short clip (:func:`recognition_clips`) and *anticipate*
the next one from the clip just before it starts (:func:`anticipation_clips`). Every action has
its own motion (who moves, which way, whether the fingers open or close), visible within a few
frames. The next action follows from the grammar (:data:`TRANSITIONS`) and from what the hand
did: a reach that ends beside a block leads to a push, one that ends around it to a grasp, one
that ends on the lid's knob to open or close. Some choices are random (after ``lift``, ``carry``
or ``place``; after ``retreat``, ``reach`` or ``idle``). A single frame is not enough: the pose
that ends a reach-for-push also ends the push, grasp and place end alike, and so do reach and
release, each followed by a different action.

The scene (:mod:`monde.worlds.manipulation_scene`) is a floor with 1 to 3 coloured square blocks,
optionally a box whose hinged lid opens, and a parallel gripper hanging from an arm. Each action
lasts a random number of frames and eases (smoothstep) from its start pose to an end pose drawn
when it begins; positions, sizes, colours, targets and speeds vary per episode. Positions are
in frame units, ``x`` to the right and ``y`` downward.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monde.errors import ConfigError
from monde.worlds.manipulation_scene import (
    BLOCK_PALETTE,
    FINGER_LEN,
    FINGER_W,
    FLOOR,
    KNOB_GAP,
    OPEN_ANGLE,
    PUSH_GAP,
    REST_Y,
    SPACING,
    X_HI,
    X_LO,
    Scene,
    carry_spots,
    knob_hand,
    push_options,
    render,
)
from monde.worlds.seeding import as_rng as _rng

ACTIONS: tuple[str, ...] = (
    "idle", "reach", "grasp", "lift", "carry", "place", "release", "retreat", "push", "open", "close",
)
"""Action class names; the index of a name is its label id."""
FIRST: tuple[str, ...] = ("idle", "reach")
"""Actions an episode may start with."""
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "idle": ("reach", "retreat"),  # retreat only when the idle came after a release
    "reach": ("grasp", "push", "open", "close"),  # decided by where the reach ends
    "grasp": ("lift",),
    "lift": ("carry", "place"),
    "carry": ("place",),
    "place": ("release",),
    "release": ("retreat", "idle"),
    "retreat": ("reach", "idle"),
    "push": ("retreat",),
    "open": ("retreat",),
    "close": ("retreat",),
}
"""Allowed successors of each action; an action never follows itself."""

GRIP_ABOVE = 0.015  # gap between a held block's top and the palm
OPEN_MARGIN = 0.035  # finger gap beyond each side of a block when open
LIFT_BOTTOM = (0.38, 0.55)  # height range of a lifted block's bottom (clears the box)
CARRY_MIN, RETREAT_DX = 0.12, 0.15  # least carry distance; largest sideways retreat
_ID = {name: i for i, name in enumerate(ACTIONS)}


@dataclass
class ManipulationConfig:
    """Manipulation world settings."""

    frames: int = 64
    """Frames per episode."""
    size: int = 64
    """Side of the square frame, in pixels."""
    n_objects: tuple[int, int] = (1, 3)
    """Range (inclusive) of blocks per episode; the box is extra."""
    duration: tuple[int, int] = (5, 10)
    """Range (inclusive) of frames per action."""
    block_size: tuple[float, float] = (0.07, 0.11)
    """Range of block sides, as a fraction of the frame side."""
    box_prob: float = 0.8
    """Probability that an episode has a box with a lid."""
    box_width: tuple[float, float] = (0.16, 0.22)
    """Range of box widths (also the lid length), fraction of the frame side."""
    box_height: tuple[float, float] = (0.10, 0.14)
    """Range of box heights, fraction of the frame side."""
    task_weights: tuple[float, float, float] = (0.3, 0.3, 0.4)
    """Relative odds, at each ``reach``, of pick-and-place, push and open/close the box (tasks
    that are impossible at that moment are dropped; pick-and-place is always possible)."""
    carry_prob: float = 0.8
    """Probability of ``carry`` (rather than ``place`` at once) after ``lift``, when there is room."""
    idle_prob: float = 0.25
    """Probability of ``idle`` at the start of an episode and after ``retreat`` or ``release``."""
    background: tuple[int, int, int] = (15, 15, 25)
    """Background RGB colour."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` for settings the world cannot honour."""
        def bad(msg: str) -> ConfigError:
            return ConfigError(f"ManipulationConfig: {msg}")

        if self.frames < 1 or self.size < 16:
            raise bad(f"frames must be >= 1 and size >= 16, got frames={self.frames}, size={self.size}")
        lo, hi = self.n_objects
        if not 1 <= lo <= hi <= len(BLOCK_PALETTE):
            raise bad(f"n_objects must satisfy 1 <= lo <= hi <= {len(BLOCK_PALETTE)}, "
                      f"got {self.n_objects}")
        if not 1 <= self.duration[0] <= self.duration[1]:
            raise bad(f"duration must satisfy 1 <= lo <= hi, got {self.duration}")
        for name, top in (("block_size", 0.15), ("box_width", 0.4), ("box_height", 0.2)):
            r = getattr(self, name)
            if not 0 < r[0] <= r[1] <= top:
                raise bad(f"{name} must satisfy 0 < lo <= hi <= {top}, got {r}")
        need = hi * (self.block_size[1] + SPACING) - SPACING
        need += (self.box_width[1] + SPACING) if self.box_prob > 0 else 0
        if need > X_HI - X_LO:
            raise bad(f"{hi} blocks of side {self.block_size[1]} (and a box) need {need:.2f} of "
                      f"floor but only {X_HI - X_LO:.2f} is available; use fewer or smaller objects")
        for name in ("box_prob", "carry_prob", "idle_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise bad(f"{name} must be in [0, 1], got {getattr(self, name)}")
        w = self.task_weights
        if len(w) != 3 or min(w) < 0 or sum(w) <= 0:
            raise bad(f"task_weights must be 3 non-negative numbers with a positive sum, got {w}")
        if len(self.background) != 3 or not all(0 <= c <= 255 for c in self.background):
            raise bad(f"background must be an RGB triple in [0, 255], got {self.background}")


@dataclass
class ManipulationEpisodes:
    """A batch of rendered episodes with their true state (B episodes, T frames, K block slots).

    Episodes with fewer than K blocks leave the extra slots empty (size 0, position NaN).
    """

    video: np.ndarray
    """uint8 ``[B, T, 3, H, W]`` RGB frames."""
    labels: np.ndarray
    """int64 ``[B, T]``: id (index into :data:`ACTIONS`) of the action at each frame."""
    segment_start: np.ndarray
    """bool ``[B, T]``: the frame is the first of an action (always true at frame 0)."""
    hand: np.ndarray
    """float32 ``[B, T, 2]``: bottom centre of the gripper's palm ``(x, y)``."""
    grip: np.ndarray
    """float32 ``[B, T]``: gap between the fingers' inner edges."""
    blocks: np.ndarray
    """float32 ``[B, T, K, 2]``: centre ``(x, y)`` of each block (NaN for empty slots)."""
    block_size: np.ndarray
    """float32 ``[B, K]``: block sides (0 for empty slots)."""
    block_color: np.ndarray
    """uint8 ``[B, K, 3]``: block RGB colours."""
    held: np.ndarray
    """int64 ``[B, T]``: block in the fingers, from ``grasp`` to ``release`` inclusive; -1 if none."""
    target: np.ndarray
    """int64 ``[B, T]``: object the current task acts on (block index, K: the box), -1 when idle."""
    has_box: np.ndarray
    """bool ``[B]``: the episode has a box."""
    box: np.ndarray
    """float32 ``[B, 4]``: box body ``(x0, y0, x1, y1)`` (NaN without a box)."""
    hinge: np.ndarray
    """float32 ``[B]``: +1 if the lid is hinged at the box's left corner, -1 right, 0 no box."""
    lid: np.ndarray
    """float32 ``[B, T]``: lid angle in radians (0 closed, :data:`OPEN_ANGLE` open)."""



class ManipulationWorld:
    """Deterministic (given a seed) generator of manipulation episodes; see the module docstring."""

    def __init__(self, cfg: ManipulationConfig | None = None):
        self.cfg = cfg if cfg is not None else ManipulationConfig()
        self.cfg.validate()

    def sample(self, batch_size: int, rng: np.random.Generator | int) -> ManipulationEpisodes:
        """Generate and render ``batch_size`` episodes; the same seed gives the same episodes."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        rng = _rng(rng)
        eps = [self._episode(rng) for _ in range(batch_size)]
        f32 = {"hand", "grip", "blocks", "block_size", "box", "hinge", "lid"}
        fields = {k: np.stack([e[k] for e in eps]) for k in eps[0]}
        fields = {k: v.astype(np.float32) if k in f32 else v for k, v in fields.items()}
        ep = ManipulationEpisodes(video=np.empty(0, np.uint8), **fields)
        ep.video = render(ep, self.cfg.size, self.cfg.background)
        return ep

    def batch(self, step: int, batch_size: int, seed: int = 0, rank: int = 0) -> ManipulationEpisodes:
        """Deterministic function of ``(seed, step, rank)``, as :meth:`BouncingBalls.batch`."""
        return self.sample(batch_size, np.random.default_rng([seed, step, rank]))

    # ---------------------------------------------------------------------------- one episode
    def _episode(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Play the grammar on a random scene; returns its per-frame state (no video)."""
        cfg, sc = self.cfg, Scene(self.cfg, rng)
        act = "idle" if rng.random() < cfg.idle_prob else "reach"
        k, after_release, spots, push = -1, False, np.zeros(0), (1, [0.0])
        while sc.t < cfg.frames:
            a = _ID[act]
            if 0 <= k < sc.n:
                x, h = sc.blocks[k, 0], sc.size[k] / 2
            if act == "idle":
                sc.play(a, -1)
                nxt = "retreat" if after_release else "reach"
            elif act == "reach":  # the task, hence the next action, shows in where the reach ends
                pushes = [(j, *p) for j in range(sc.n)
                          for p in push_options(sc.blocks[j, 0], sc.size[j] / 2, sc.spans(j))]
                w = np.array(cfg.task_weights) * [1, bool(pushes), sc.has_box]
                task = rng.choice(3, p=w / w.sum()) if w.sum() > 0 else 0
                if task == 0:  # pick: fingers open around the block
                    k = int(rng.integers(sc.n))
                    x, h = sc.blocks[k, 0], sc.size[k] / 2
                    sc.play(a, k, hand=(x, FLOOR - 2 * h - GRIP_ABOVE), gap=2 * h + 2 * OPEN_MARGIN,
                            path="down")
                    nxt = "grasp"
                elif task == 1:  # push: closed fingers low beside the block
                    k, *push = pushes[rng.integers(len(pushes))]
                    x, h = sc.blocks[k, 0], sc.size[k] / 2
                    hx = x - push[0] * (h + PUSH_GAP / 2 + FINGER_W + 0.005)
                    sc.play(a, k, hand=(hx, FLOOR - 0.01 - FINGER_LEN), gap=PUSH_GAP, path="down")
                    nxt = "push"
                else:  # the box: fingers around the lid's knob
                    k = cfg.n_objects[1]
                    sc.play(a, k, hand=knob_hand(sc.box, sc.hinge, sc.lid), gap=KNOB_GAP, path="down")
                    nxt = "open" if sc.lid == 0 else "close"
            elif act == "grasp":
                sc.held = k
                sc.play(a, k, gap=2 * h)
                nxt = "lift"
            elif act == "lift":
                sc.play(a, k, hand=sc.hand - (0, FLOOR - rng.uniform(*LIFT_BOTTOM)), carry=k)
                spots = carry_spots(x, h, sc.spans(k), CARRY_MIN)
                nxt = "carry" if len(spots) and rng.random() < cfg.carry_prob else "place"
            elif act == "carry":
                sc.play(a, k, hand=(spots[rng.integers(len(spots))], sc.hand[1]), carry=k)
                nxt = "place"
            elif act == "place":
                sc.play(a, k, hand=(sc.hand[0], FLOOR - 2 * h - GRIP_ABOVE), carry=k)
                nxt = "release"
            elif act == "release":
                sc.play(a, k, gap=2 * h + 2 * OPEN_MARGIN)
                sc.held = -1
                after_release = rng.random() < cfg.idle_prob
                nxt = "idle" if after_release else "retreat"
            elif act == "retreat":
                edge = sc.gap / 2 + FINGER_W + 0.01  # keep the fingers in view
                hx = np.clip(sc.hand[0] + rng.uniform(-RETREAT_DX, RETREAT_DX), edge, 1 - edge)
                sc.play(a, k, hand=(hx, rng.uniform(*REST_Y)), path="up")
                after_release = False
                nxt = "idle" if rng.random() < cfg.idle_prob else "reach"
            elif act == "push":
                side, dists = push
                sc.play(a, k, hand=sc.hand + (side * dists[rng.integers(len(dists))], 0), carry=k)
                nxt = "retreat"
            else:  # open or close
                sc.play(a, k, lid=OPEN_ANGLE if act == "open" else 0.0)
                nxt = "retreat"
            act = nxt
        return sc.record()


# ---------------------------------------------------------------------------------- probe clips
def segments(ep: ManipulationEpisodes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every action segment, in episode then time order: episode, first frame, end frame
    (exclusive) and label, each int64 ``[S]``."""
    b, s = np.nonzero(ep.segment_start)
    last = np.append(b[1:] != b[:-1], True)
    e = np.where(last, ep.labels.shape[1], np.append(s[1:], 0))
    return b, s, e, ep.labels[b, s]


def _cut(ep: ManipulationEpisodes, b: np.ndarray, start: np.ndarray, clip: int) -> np.ndarray:
    return ep.video[b[:, None], start[:, None] + np.arange(clip)]


def recognition_windows(ep: ManipulationEpisodes, clip: int, rng: np.random.Generator | int,
                        min_cover: float = 0.6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One window of ``clip`` frames per segment: episode ``[N]``, first frame ``[N]``, label ``[N]``.

    A segment at least ``clip`` long gets a window at a random place inside it. A shorter one
    gets the window that *ends* on its last frame (padded with the frames before it, never with
    the next action), kept only if the segment fills at least ``min_cover`` of the window and
    the window starts at or after frame 0.
    """
    b, s, e, lab = segments(ep)
    n = e - s
    inside = n >= clip
    offset = (_rng(rng).random(len(s)) * (n - clip + 1)).astype(np.int64)
    start = np.where(inside, s + offset, e - clip)
    keep = (inside | (n >= min_cover * clip)) & (start >= 0)
    return b[keep], start[keep], lab[keep]


def recognition_clips(ep: ManipulationEpisodes, clip: int, rng: np.random.Generator | int,
                      min_cover: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Clips for action recognition (see :func:`recognition_windows`).

    Returns video uint8 ``[N, clip, 3, H, W]`` and labels int64 ``[N]``. No clip contains a frame
    of the action that follows its labelled one.
    """
    b, start, lab = recognition_windows(ep, clip, rng, min_cover)
    return _cut(ep, b, start, clip), lab


def anticipation_windows(ep: ManipulationEpisodes, clip: int, gap: int = 0
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One window per action that starts at a frame ``s >= clip + gap`` (``s > 0``).

    Returns the episode, the window's first frame ``s - gap - clip``, the next-action label (at
    ``s``) and the current-action label (at ``s - 1``), each int64 ``[N]``.
    """
    b, s, _, lab = segments(ep)
    keep = (s >= clip + gap) & (s > 0)
    b, s = b[keep], s[keep]
    return b, s - gap - clip, lab[keep], ep.labels[b, s - 1]


def anticipation_clips(ep: ManipulationEpisodes, clip: int, gap: int = 0
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clips for next-action anticipation: each ends ``gap`` frames before an action starts.

    Returns video uint8 ``[N, clip, 3, H, W]``, next-action labels int64 ``[N]`` and the labels
    of the action in progress just before it starts ``[N]``. Only frames before the anticipated
    action are used.
    """
    b, start, nxt, cur = anticipation_windows(ep, clip, gap)
    return _cut(ep, b, start, clip), nxt, cur
