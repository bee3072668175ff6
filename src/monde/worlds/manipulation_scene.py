"""Scene of :mod:`monde.worlds.manipulation`: geometry, floor layout, motion and drawing (numpy).

Coordinates are in frame units as in the rest of :mod:`monde.worlds`: ``(0, 0)`` is the top-left
corner, ``x`` grows to the right and ``y`` grows downward. The scene is a side view:

* the floor is the horizontal line ``y = FLOOR``; below it a darker table;
* a block of side ``s`` with centre ``(x, y)`` covers ``[x - s/2, x + s/2] x [y - s/2, y + s/2]``
  and rests on the floor when ``y = FLOOR - s/2``;
* the box is a filled rectangle ``(x0, y0, x1, FLOOR)``; its lid is a plank of length
  ``x1 - x0`` hinged at the top corner on the ``hinge`` side (+1: left corner, the lid points
  right when closed; -1: right corner), rotated upward by the lid angle, with a knob near its
  free end;
* the hand is a parallel gripper hanging from an arm that comes from the top of the frame. Its
  position ``(hx, hy)`` is the bottom centre of the palm; the two fingers hang below the palm,
  their inner edges at ``hx -/+ gap/2``, and the palm spans the outer edges of the fingers, so
  the whole gripper visibly widens when the fingers open.

:class:`Scene` holds one episode's state while the grammar (in :mod:`monde.worlds.manipulation`)
plays actions on it; :func:`render` draws a batch of recorded episodes, anti-aliased.
"""

from __future__ import annotations

import numpy as np

FLOOR = 0.86
"""Height of the floor line (frame units, measured from the top)."""
X_LO, X_HI = 0.07, 0.93
"""Floor span that objects stand on."""
SPACING = 0.07
"""Least free floor between two objects: room for a finger opened around a block."""
FINGER_LEN, FINGER_W = 0.10, 0.03
"""Finger length and width."""
PALM_H, ARM_W = 0.03, 0.03
"""Palm height and arm width."""
PUSH_GAP, PUSH_DIST = 0.03, (0.12, 0.30)
"""Finger gap while pushing; range of push distances."""
LID_T, KNOB_W, KNOB_H, KNOB_IN = 0.025, 0.03, 0.05, 0.03
"""Lid thickness; knob width and height; distance of the knob from the lid's free end."""
GRIP_BELOW_TIP = 0.045
"""While the hand holds the knob its fingertips are this far below the knob tip."""
KNOB_GAP = 0.06
"""Finger gap around the knob."""
OPEN_ANGLE = 1.75
"""Lid angle when open, in radians (about 100 degrees: it leans past vertical and stays)."""
REST_Y = (0.12, 0.30)
"""Range of palm heights of a hand at rest (start of an episode, end of a retreat)."""

HAND_COLOR = (230, 230, 230)
ARM_COLOR = (160, 160, 170)
BOX_COLOR = (140, 95, 55)
LID_COLOR = (190, 140, 85)
FLOOR_COLOR = (120, 120, 120)
TABLE_COLOR = (45, 45, 52)
# Saturated block colours, far from the grey/white hand, the brown box and the dark background.
BLOCK_PALETTE = np.array(
    [(230, 40, 40), (40, 200, 60), (50, 90, 240), (240, 220, 40), (220, 60, 220),
     (40, 220, 220), (150, 80, 250), (250, 150, 190)],
    dtype=np.uint8,
)


def lid_geometry(box: np.ndarray, hinge: np.ndarray, angle: np.ndarray) -> tuple[np.ndarray, ...]:
    """Lid plank and knob of boxes ``box [..., 4]``, ``hinge [...]`` at lid ``angle [...]`` (radians).

    Returns ``(p0, p1, knob_base, knob_tip)``, each ``[..., 2]``: the plank's centre line runs
    from the hinge ``p0`` to the free end ``p1``, the knob from its base to its tip.
    """
    x0, y0, x1, hinge, angle = np.broadcast_arrays(box[..., 0], box[..., 1], box[..., 2], hinge, angle)
    c, s = np.cos(angle), np.sin(angle)
    p0 = np.stack([np.where(hinge > 0, x0, x1), y0 - LID_T / 2], -1)
    u = np.stack([hinge * c, -s], -1)  # along the plank, from the hinge
    n = np.stack([-hinge * s, -c], -1)  # the plank's upper normal
    p1 = p0 + (x1 - x0)[..., None] * u
    base = p1 - KNOB_IN * u + (LID_T / 2) * n
    return p0, p1, base, base + KNOB_H * n


def knob_hand(box: np.ndarray, hinge: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Hand position ``[..., 2]`` holding the knob (fingers around the knob tip) at lid ``angle``."""
    tip = lid_geometry(box, hinge, angle)[3]
    return tip - np.array([0.0, FINGER_LEN - GRIP_BELOW_TIP])


# ------------------------------------------------------------------------------ floor layout
def layout(widths: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random centres of objects of the given widths on the floor, at least ``SPACING`` apart."""
    m = len(widths)
    free = (X_HI - X_LO) - widths.sum() - (m - 1) * SPACING
    extra = rng.dirichlet(np.ones(m + 1)) * free
    centre, x = np.empty(m), X_LO + extra[0]
    for i, j in enumerate(rng.permutation(m)):
        centre[j] = x + widths[j] / 2
        x += widths[j] + SPACING + extra[i + 1]
    return centre


def is_clear(spans: np.ndarray, lo: float, hi: float) -> bool:
    """The floor interval ``[lo, hi]`` overlaps none of ``spans [M, 2]`` (``(lo, hi)`` rows)."""
    return bool(((hi <= spans[:, 0]) | (lo >= spans[:, 1])).all())


def push_options(x: float, h: float, spans: np.ndarray) -> list[tuple[int, list[float]]]:
    """``(direction, feasible distances)`` for pushing a block (centre ``x``, half side ``h``)
    along the floor with the hand beside it, clear of the other objects' ``spans``."""
    opts = []
    reach = h + PUSH_GAP + 2 * FINGER_W + 0.005  # from the block centre to the hand's far side
    for side in (-1, 1):
        dists = []
        for d in np.linspace(*PUSH_DIST, 7):
            lo, hi = min(x, x + side * d) - h, max(x, x + side * d) + h
            hand = sorted((x - side * reach, x + side * (d - reach)))
            if (X_LO <= lo and hi <= X_HI and 0.01 <= hand[0] and hand[1] <= 0.99
                    and is_clear(spans, lo - SPACING, hi + SPACING)
                    and is_clear(spans, *sorted((x - side * reach, x - side * h)))):
                dists.append(d)
        if dists:
            opts.append((side, dists))
    return opts


def carry_spots(x: float, h: float, spans: np.ndarray, min_move: float) -> np.ndarray:
    """Floor positions at least ``min_move`` from ``x`` where a block of half side ``h`` fits."""
    grid = np.linspace(X_LO + h, X_HI - h, 61)
    ok = [abs(c - x) >= min_move and is_clear(spans, c - h - SPACING, c + h + SPACING) for c in grid]
    return grid[np.array(ok, bool)]


# ------------------------------------------------------------------------------------ scene
class Scene:
    """One episode's objects and hand while actions are played on them; records every frame.

    Built at random from a :class:`ManipulationConfig` ``cfg`` (K = ``cfg.n_objects[1]`` block
    slots, the first ``n`` used); :meth:`play` runs one action; :meth:`record` returns the
    per-frame arrays named as the fields of :class:`ManipulationEpisodes`, without a batch axis.
    """

    def __init__(self, cfg, rng: np.random.Generator):
        self.rng, self.duration, T, K = rng, cfg.duration, cfg.frames, cfg.n_objects[1]
        n = self.n = int(rng.integers(cfg.n_objects[0], K + 1))
        self.size = np.zeros(K)
        self.size[:n] = rng.uniform(*cfg.block_size, n)
        self.color = np.zeros((K, 3), np.uint8)
        self.color[:n] = BLOCK_PALETTE[rng.choice(len(BLOCK_PALETTE), n, replace=False)]
        self.has_box, self.box, self.hinge = bool(rng.random() < cfg.box_prob), np.full(4, np.nan), 0.0
        widths = self.size[:n]
        if self.has_box:
            bw, bh = rng.uniform(*cfg.box_width), rng.uniform(*cfg.box_height)
            widths = np.append(widths, bw)
        centre = layout(widths, rng)
        if self.has_box:
            self.box = np.array([centre[n] - bw / 2, FLOOR - bh, centre[n] + bw / 2, FLOOR])
            self.hinge = rng.choice([-1.0, 1.0])
            edge = KNOB_GAP / 2 + FINGER_W  # an open lid leans out on the hinge side: stay in view
            if not edge <= knob_hand(self.box, self.hinge, OPEN_ANGLE)[0] <= 1 - edge:
                self.hinge = -self.hinge
        self.blocks = np.full((K, 2), np.nan)
        self.blocks[:n, 0], self.blocks[:n, 1] = centre[:n], FLOOR - self.size[:n] / 2
        self.hand = np.array([rng.uniform(0.15, 0.85), rng.uniform(*REST_Y)])
        self.gap, self.held, self.t = rng.uniform(0.05, 0.12), -1, 0
        self.lid = OPEN_ANGLE * float(self.has_box and rng.random() < 0.5)
        self.out = dict(
            labels=np.zeros(T, np.int64), segment_start=np.zeros(T, bool), hand=np.zeros((T, 2)),
            grip=np.zeros(T), blocks=np.zeros((T, K, 2)), held=np.full(T, -1),
            target=np.full(T, -1), lid=np.zeros(T),
        )

    def spans(self, skip: int) -> np.ndarray:
        """Floor spans ``[M, 2]`` of the box and of every block but ``skip``."""
        keep = np.arange(self.n) != skip
        sp = self.blocks[:self.n, 0, None][keep] + self.size[:self.n, None][keep] * [-0.5, 0.5]
        return np.concatenate([sp, self.box[None, [0, 2]]]) if self.has_box else sp

    def play(self, label: int, target: int, hand=None, gap=None, lid=None, carry: int = -1,
             path: str | None = None) -> None:
        """Play one action of random duration, easing from the current state to the end state.

        ``hand`` end position (``None``: stays), ``gap`` end finger gap, ``lid`` end lid angle
        (the hand then holds the knob and follows it); block ``carry`` moves with the hand;
        ``path`` "down" moves sideways first and down last (an approach from above), "up" the
        reverse. Frames past the end of the episode are dropped.
        """
        d = int(self.rng.integers(self.duration[0], self.duration[1] + 1))
        tau = np.arange(1, d + 1) / d
        e = _ease(tau)
        if lid is not None:
            ang = self.lid + (lid - self.lid) * e
            hp = knob_hand(self.box, self.hinge, ang)
        else:
            ang, ex, ey = np.full(d, self.lid), e, e
            if path == "down":
                ex, ey = _ease(tau / 0.7), _ease((tau - 0.3) / 0.7)
            elif path == "up":
                ex, ey = _ease((tau - 0.3) / 0.7), _ease(tau / 0.7)
            h1 = self.hand if hand is None else np.asarray(hand, float)
            hp = self.hand + (h1 - self.hand) * np.stack([ex, ey], -1)
        gp = self.gap + ((self.gap if gap is None else gap) - self.gap) * e
        bp = np.repeat(self.blocks[None], d, 0)
        if carry >= 0:
            bp[:, carry] += hp - self.hand
        t, o = self.t, self.out
        m = min(d, len(o["labels"]) - t)
        o["segment_start"][t] = True
        o["labels"][t:t + m], o["target"][t:t + m], o["held"][t:t + m] = label, target, self.held
        o["hand"][t:t + m], o["grip"][t:t + m] = hp[:m], gp[:m]
        o["blocks"][t:t + m], o["lid"][t:t + m] = bp[:m], ang[:m]
        self.t, self.hand, self.gap, self.lid, self.blocks = t + d, hp[-1], gp[-1], ang[-1], bp[-1]

    def record(self) -> dict[str, np.ndarray]:
        """Per-frame state and per-episode constants, as :class:`ManipulationEpisodes` fields."""
        return dict(self.out, block_size=self.size, block_color=self.color,
                    has_box=np.array(self.has_box), box=self.box, hinge=np.array(self.hinge))


def _ease(tau: np.ndarray) -> np.ndarray:
    """Smoothstep on ``[0, 1]``: zero velocity at both ends."""
    tau = np.clip(tau, 0.0, 1.0)
    return tau * tau * (3 - 2 * tau)


# --------------------------------------------------------------------------------- painting
def paint_rects(video, frame, x0, y0, x1, y1, color) -> None:
    """Alpha-blend one axis-aligned rectangle into each listed frame, in place.

    ``video`` uint8 ``[N, 3, S, S]``; ``frame`` int ``[M]`` (distinct) frame indices; ``x0, y0,
    x1, y1`` float ``[M]`` edges in pixels; ``color`` ``[3]`` or ``[M, 3]``. Edge pixels get their
    exact covered area as opacity, so sub-pixel motion stays visible.
    """
    if frame.size == 0:
        return
    S = video.shape[-1]
    ww = min(S, int(np.ceil((x1 - x0).max())) + 2)
    wh = min(S, int(np.ceil((y1 - y0).max())) + 2)
    ox = np.clip(np.floor(x0), 0, S - ww).astype(np.intp)
    oy = np.clip(np.floor(y0), 0, S - wh).astype(np.intp)
    px = ox[:, None] + np.arange(ww)
    py = oy[:, None] + np.arange(wh)
    cx = np.clip(np.minimum(x1[:, None], px + 1) - np.maximum(x0[:, None], px), 0, 1)
    cy = np.clip(np.minimum(y1[:, None], py + 1) - np.maximum(y0[:, None], py), 0, 1)
    alpha = (cy[:, :, None] * cx[:, None, :]).reshape(len(frame), 1, wh * ww)
    _blend(video, frame, oy, ox, wh, ww, alpha.astype(np.float32), color)


def paint_segments(video, frame, p0, p1, half, color) -> None:
    """Alpha-blend one thick segment (round caps) into each listed frame, in place.

    ``p0, p1`` float ``[M, 2]`` end points in pixels, ``half`` the half thickness in pixels; other
    arguments as in :func:`paint_rects`.
    """
    if frame.size == 0:
        return
    S = video.shape[-1]
    lo = np.minimum(p0, p1) - half - 1
    w = min(S, int(np.ceil((np.abs(p1 - p0) + 2 * half + 3).max())))
    o = np.clip(np.floor(lo), 0, S - w).astype(np.intp)  # [M, 2] window corner (x, y)
    c = np.arange(w, dtype=np.float32) + 0.5
    qx = (o[:, 0, None] + c - p0[:, 0, None])[:, None, :]  # [M, 1, w]
    qy = (o[:, 1, None] + c - p0[:, 1, None])[:, :, None]  # [M, w, 1]
    d = (p1 - p0)[:, :, None, None]
    t = np.clip((qx * d[:, 0] + qy * d[:, 1]) / np.maximum((d * d).sum(1), 1e-9), 0, 1)
    dist = np.hypot(qx - t * d[:, 0], qy - t * d[:, 1])
    alpha = np.clip(half + 0.5 - dist, 0, 1).reshape(len(frame), 1, w * w)
    _blend(video, frame, o[:, 1], o[:, 0], w, w, alpha.astype(np.float32), color)


def _blend(video, frame, oy, ox, wh, ww, alpha, color) -> None:
    """Blend ``color`` with opacity ``alpha [M, 1, wh*ww]`` into windows at ``(oy, ox)``."""
    S = video.shape[-1]
    flat = video.reshape(-1)
    pix = (np.arange(wh)[:, None] * S + np.arange(ww)).reshape(-1)
    base = frame.astype(np.intp) * (3 * S * S) + oy * S + ox
    idx = base[:, None, None] + (np.arange(3) * S * S)[:, None] + pix  # [M, 3, wh*ww]
    col = np.asarray(color, np.float32).reshape(-1, 3)[:, :, None]
    under = flat[idx].astype(np.float32)
    flat[idx] = (under + alpha * (col - under) + 0.5).astype(np.uint8)


def render(ep, size: int, background: tuple[int, int, int]) -> np.ndarray:
    """Draw the scenes of ``ep`` (a :class:`ManipulationEpisodes` without video) at ``size`` px.

    Returns uint8 ``[B, T, 3, size, size]``. Painter's order: table, box, lid, blocks, hand.
    """
    B, T = ep.labels.shape
    S, N = size, B * T
    rows = (np.arange(S) + 0.5) / S
    still = np.empty((B, 3, S, S), np.uint8)  # what never moves: background, table, box body
    still[:] = np.asarray(background, np.uint8)[:, None, None]
    still[:, :, rows > FLOOR] = np.asarray(TABLE_COLOR, np.uint8)[:, None, None]
    b = np.arange(B)
    line = np.full(B, FLOOR * S)
    paint_rects(still, b, 0 * line, line - 0.5, line * 0 + S, line + 0.5, FLOOR_COLOR)
    box = np.nan_to_num(ep.box) * S
    paint_rects(still, b[ep.has_box], *box[ep.has_box].T, BOX_COLOR)
    video = np.repeat(still, T, axis=0)  # [N, 3, S, S]

    frames = np.arange(N)
    f_box = frames[np.repeat(ep.has_box, T)]
    if f_box.size:
        bb = np.repeat(ep.box, T, 0)[f_box]
        p0, p1, k0, k1 = lid_geometry(bb, np.repeat(ep.hinge, T)[f_box], ep.lid.reshape(-1)[f_box])
        paint_segments(video, f_box, p0 * S, p1 * S, LID_T * S / 2, LID_COLOR)
        paint_segments(video, f_box, k0 * S, k1 * S, KNOB_W * S / 2, LID_COLOR)

    xy = ep.blocks.reshape(N, -1, 2) * S
    half = np.repeat(ep.block_size, T, 0) * S / 2  # [N, K]
    color = np.repeat(ep.block_color, T, 0)
    for k in range(xy.shape[1]):
        f = frames[half[:, k] > 0]
        x, y, h = xy[f, k, 0], xy[f, k, 1], half[f, k]
        paint_rects(video, f, x - h, y - h, x + h, y + h, color[f, k])

    hx, hy = ep.hand.reshape(N, 2).T * S
    g = ep.grip.reshape(N) * S / 2
    fw, fl, ph, aw = FINGER_W * S, FINGER_LEN * S, PALM_H * S, ARM_W * S / 2
    paint_rects(video, frames, hx - aw, hy * 0 - 1, hx + aw, hy - ph, ARM_COLOR)
    paint_rects(video, frames, hx - g - fw, hy - ph, hx + g + fw, hy, HAND_COLOR)
    paint_rects(video, frames, hx - g - fw, hy, hx - g, hy + fl, HAND_COLOR)
    paint_rects(video, frames, hx + g, hy, hx + g + fw, hy + fl, HAND_COLOR)
    return video.reshape(B, T, 3, S, S)
