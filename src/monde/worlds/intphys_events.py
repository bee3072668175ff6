"""Event builders for :mod:`monde.worlds.intphys`: one function per principle.

Each builder draws ``m`` candidate scenes from the training world's own distribution, simulates
the *possible* twin with the ordinary physics, then makes the *impossible* twin by changing its
state from the onset frame on. It returns :class:`Events`, whose mask ``ok`` marks the
candidates where the event really happens and can be seen; the caller keeps only those
(rejection sampling).

Geometry follows :mod:`monde.worlds.balls` (frame units, ``y`` down, gravity towards ``+y``).
A ball is *visible* when its centre is outside every occluder (``BouncingBalls.visible``),
*clear* when its whole disc plus ``MARGIN`` pixels is, and *hidden* by a rectangle when its
whole disc plus that margin lies inside the rectangle.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from monde.worlds.balls import PALETTE, BouncingBalls

BEFORE = 4  # frames in which the ball must be visible right before the onset
AFTER = 4  # frames from the onset on in which the violation must show
MARGIN = 1.5  # pixels of slack for "clear" and "hidden" (anti-aliasing spreads a disc ~1 px)
JUMP = 0.3  # minimum teleport distance, frame sides
AIR = 0.25  # "airborne": centre at least this far above the lowest it can go
OVERLAP = 0.6  # pass-through: centres come within this fraction of the sum of radii
KICK = 0.6  # collision: change of relative velocity, frame sides per second


@dataclass
class Events:
    """``m`` candidate pairs (K balls, T frames, O occluders) and which of them are usable."""

    possible: np.ndarray  # float64 [m, T, K, 4] (x, y, vx, vy)
    impossible: np.ndarray  # float64 [m, T, K, 4]; NaN once a ball no longer exists
    radius: np.ndarray  # float64 [m, K]
    occluders: np.ndarray  # float32 [m, O, 4]
    onset: np.ndarray  # int [m]: first frame where the impossible twin differs
    ball: np.ndarray  # int [m]: the ball the violation happens to
    partner: np.ndarray  # int [m]: its collision partner (solidity), else -1
    after_radius: np.ndarray  # [m, K]: the impossible twin's radii from the onset on
    after_colors: np.ndarray  # uint8 [m, K, 3]: the impossible twin's colours from the onset on
    ok: np.ndarray  # bool [m]: the event happens and is visible


# ------------------------------------------------------------------------------- simulation
def simulate(world: BouncingBalls, pos, vel, radius) -> tuple[np.ndarray, np.ndarray]:
    """Roll out ``world.cfg.frames`` frames: state ``[B, T, K, 4]`` and contacts ``[B, T, K]``.

    ``contact[:, t, k]``: ball k touched another ball between frames t-1 and t, found by also
    stepping without collisions (walls act the same, so any difference is a ball-ball contact).
    """
    free = BouncingBalls(replace(world.cfg, collisions=False))
    B, K = pos.shape[:2]
    state = np.empty((B, world.cfg.frames, K, 4))
    contact = np.zeros(state.shape[:3], bool)
    state[:, 0, :, :2], state[:, 0, :, 2:] = pos, vel
    for t in range(1, world.cfg.frames):
        p, v = world.step(pos, vel, radius)
        q, u = free.step(pos, vel, radius)
        contact[:, t] = ((p != q) | (v != u)).any(-1)
        pos, vel = p, v
        state[:, t, :, :2], state[:, t, :, 2:] = pos, vel
    return state, contact


def resume(world: BouncingBalls, state: np.ndarray, start: np.ndarray, radius) -> np.ndarray:
    """Copy of ``state [B, T, K, 4]`` whose frames after ``start[b]`` are re-simulated by ``world``."""
    out = state.copy()
    for t in range(int(start.min()), state.shape[1] - 1):
        redo = start <= t
        p, v = world.step(out[redo, t, :, :2], out[redo, t, :, 2:], radius[redo])
        out[redo, t + 1, :, :2], out[redo, t + 1, :, 2:] = p, v
    return out


# --------------------------------------------------------------------------------- geometry
def visible(p: np.ndarray, occ: np.ndarray) -> np.ndarray:
    """Centres ``p [m, ..., 2]`` outside every occluder ``occ [m, O, 4]``: bool ``[m, ...]``."""
    o = occ.reshape(occ.shape[:1] + (1,) * (p.ndim - 2) + occ.shape[1:])
    x, y = p[..., 0, None], p[..., 1, None]
    return ~((x >= o[..., 0]) & (x <= o[..., 2]) & (y >= o[..., 1]) & (y <= o[..., 3])).any(-1)


def clear(p: np.ndarray, r: np.ndarray, occ: np.ndarray, size: int) -> np.ndarray:
    """Discs ``p [m, T, 2]`` of radius ``r [m]`` (plus margin) off every occluder: ``[m, T]``."""
    o = occ[:, None]  # [m, 1, O, 4]
    x, y = p[..., 0, None], p[..., 1, None]
    dx = np.maximum(np.maximum(o[..., 0] - x, x - o[..., 2]), 0)
    dy = np.maximum(np.maximum(o[..., 1] - y, y - o[..., 3]), 0)
    return (np.hypot(dx, dy) > (r + MARGIN / size)[:, None, None]).all(-1)


def hidden(p: np.ndarray, r: np.ndarray, rect: np.ndarray, size: int) -> np.ndarray:
    """Discs ``p [m, T, 2]`` of radius ``r [m]`` (plus margin) inside ``rect [m, 4]``: ``[m, T]``."""
    reach = (r + MARGIN / size)[:, None, None]
    return ((p - reach >= rect[:, None, :2]) & (p + reach <= rect[:, None, 2:])).all(-1)


def apart(state, radius, k, start, stop=None, margin=0.01) -> np.ndarray:
    """Ball ``k[b]`` stays ``margin`` away from the others at frames ``[start, stop)`` and halfway between."""
    m, T, K, _ = state.shape
    b, p = np.arange(m), state[..., :2]
    mid = np.concatenate([p[:, :1], (p[:, 1:] + p[:, :-1]) / 2], 1)
    reach = radius[b, k][:, None, None] + radius[:, None] + margin  # [m, 1, K]
    near = np.zeros((m, T, K), bool)
    for q in (p, mid):
        near |= np.linalg.norm(q - q[b, :, k][:, :, None], axis=-1) <= reach
    near[b, :, k] = False
    t, stop = np.arange(T), np.full(m, T) if stop is None else stop
    when = (t >= start[:, None]) & (t < stop[:, None])
    return ~(near & when[..., None]).any((1, 2))


def window(mask: np.ndarray, t: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """How many of ``mask[b, t[b] + lo .. t[b] + hi]`` hold (frames outside the clip count as False)."""
    idx = t[:, None] + np.arange(lo, hi + 1)
    inside = (idx >= 0) & (idx < mask.shape[1])
    return (mask[np.arange(len(t))[:, None], np.clip(idx, 0, mask.shape[1] - 1)] & inside).sum(1)


def every(mask, t, lo, hi) -> np.ndarray:
    """All of ``mask[b, t[b] + lo .. t[b] + hi]`` hold."""
    return window(mask, t, lo, hi) == hi - lo + 1


# ----------------------------------------------------------------------------------- events
def _scene(world: BouncingBalls, rng: np.random.Generator, m: int, onset: tuple[int, int]):
    pos, vel, radius = world.initial_state(m, rng)
    occ = world.sample_occluders(m, rng)
    state, contact = simulate(world, pos, vel, radius)
    k = rng.integers(world.cfg.n_balls, size=m)
    t0 = rng.integers(onset[0], onset[1] + 1, size=m)
    return state, contact, radius, occ, k, t0


def _events(world, state, imp, radius, occ, onset, k, ok, **kw) -> Events:
    m = len(ok)
    kw.setdefault("partner", np.full(m, -1))
    kw.setdefault("after_radius", radius)
    kw.setdefault("after_colors", np.repeat(world.colors[None], m, 0))
    return Events(state, imp, radius, occ, onset, k, ok=ok, **kw)


def permanence(world: BouncingBalls, rng, variant, onset) -> Events:
    """"vanish": an occluder sits on the ball's path; behind it the ball stops existing."""
    cfg, m = world.cfg, len(variant)
    state, contact, radius, occ, k, t0 = _scene(world, rng, m, onset)
    b, T = np.arange(m), cfg.frames
    rk, p = radius[b, k], state[b, :, k, :2]
    # Occluder 0 is centred on the ball at t0, big enough to hide it over a 0.04 stretch.
    wh = rng.uniform(*cfg.occluder_size, size=(m, 2))
    wh = np.maximum(wh, 2 * (rk + MARGIN / cfg.size)[:, None] + 0.04)
    lo = np.clip(p[b, t0] - wh / 2, 0, 1 - wh)
    occ[:, 0] = np.concatenate([lo, lo + wh], -1)
    hid = hidden(p, rk, occ[:, 0], cfg.size)
    # The onset is the first frame of the hidden run that contains t0.
    start, run = t0.copy(), hid[b, t0].copy()
    ok = run.copy()
    for d in range(1, T):
        run &= (t0 >= d) & hid[b, np.maximum(t0 - d, 0)]
        start -= run
    vis = visible(p, occ)
    ok &= (start >= onset[0]) & (start <= onset[1])
    ok &= window(vis, start, -6, -1) >= BEFORE
    ok &= window(vis, start, 1, 6) >= 1  # re-emerges in the possible twin
    # The others must not notice: ball k touches nobody from the onset on.
    gone = np.arange(T) >= start[:, None]
    ok &= ~(contact[b, :, k] & gone).any(1)
    imp = state.copy()
    mask = np.zeros(state.shape[:3], bool)
    mask[b, :, k] = gone
    imp[mask] = np.nan
    return _events(world, state, imp, radius, occ, start, k, ok)


def continuity(world: BouncingBalls, rng, variant, onset) -> Events:
    """"teleport": at the onset the ball jumps far away, then moves on under the same physics."""
    cfg, m = world.cfg, len(variant)
    state, _, radius, occ, k, t0 = _scene(world, rng, m, onset)
    b = np.arange(m)
    rk, p = radius[b, k], state[b, :, k, :2]
    span = (1 - 2 * rk)[:, None, None]
    cand = rk[:, None, None] + rng.random((m, 16, 2)) * span  # 16 tries per clip
    good = (np.linalg.norm(cand - p[b, t0][:, None], axis=-1) >= JUMP) & (
        np.linalg.norm(cand - p[b, t0 - 1][:, None], axis=-1) >= JUMP
    )
    others = state[b, t0, :, :2]  # [m, K, 2]
    gap = np.linalg.norm(cand[:, :, None] - others[:, None], axis=-1) - radius[:, None]
    gap[b, :, k] = np.inf
    good &= (gap - rk[:, None, None] > 0.02).all(-1) & clear(cand, rk, occ, cfg.size)
    ok = good.any(1)
    imp = state.copy()
    imp[b, t0, k, :2] = cand[b, good.argmax(1)]
    imp = resume(world, imp, t0, radius)
    ok &= every(visible(p, occ), t0, -BEFORE, 0)
    ok &= every(visible(imp[b, :, k, :2], occ), t0, 0, 1)
    return _events(world, state, imp, radius, occ, t0, k, ok)


def solidity(world: BouncingBalls, rng, variant, onset) -> Events:
    """"pass-through": from just before two balls collide, collisions are switched off."""
    cfg, m = world.cfg, len(variant)
    state, contact, radius, occ, _, _ = _scene(world, rng, m, onset)
    b, T, K = np.arange(m), cfg.frames, cfg.n_balls
    count = contact.sum(-1)
    t = np.arange(T)
    when = (count > 0) & (t >= onset[0]) & (t <= onset[1])
    ok, t0 = when.any(1), when.argmax(1)  # t0: first frame the collision changes
    touched = contact[b, t0]
    ok &= count[b, t0] == 2  # exactly one pair
    i, j = touched.argmax(1), K - 1 - touched[:, ::-1].argmax(1)
    imp = resume(BouncingBalls(replace(cfg, collisions=False)), state, t0 - 1, radius)
    vis, vis_imp = visible(state[..., :2], occ), visible(imp[..., :2], occ)
    for q in (i, j):
        ok &= every(vis[b, :, q], t0, -BEFORE, 1) & every(vis_imp[b, :, q], t0, 0, 2)
    # A clear event: the collision changes the relative velocity a lot ...
    rel = lambda s: s[b, t0, i, 2:] - s[b, t0, j, 2:]  # noqa: E731
    ok &= np.linalg.norm(rel(state) - rel(imp), axis=-1) >= KICK
    # ... and without it the discs overlap deeply.
    dist = np.linalg.norm(imp[b, :, i, :2] - imp[b, :, j, :2], axis=-1)
    close = dist <= OVERLAP * (radius[b, i] + radius[b, j])[:, None]
    ok &= window(close, t0, 0, AFTER) > 0
    return _events(world, state, imp, radius, occ, t0, i, ok, partner=j)


def gravity(world: BouncingBalls, rng, variant, onset) -> Events:
    """"reverse" (variant 0): the ball falls upward; "hover" (1): it stops dead in mid-air."""
    cfg, m = world.cfg, len(variant)
    state, contact, radius, occ, k, t0 = _scene(world, rng, m, onset)
    b, T = np.arange(m), cfg.frames
    rk, s = radius[b, k], state[b, :, k]  # [m], [m, T, 4]
    # Reverse: the ball alone, under negated gravity, from frame t0 - 1 on.
    up = BouncingBalls(replace(cfg, n_balls=1, gravity=-cfg.gravity, occluders=0))
    rev = resume(up, s[:, :, None], t0 - 1, rk[:, None])[:, :, 0]
    after = (np.arange(T) >= t0[:, None])[..., None]
    hover = np.concatenate(
        [np.where(after, s[b, t0 - 1, None, :2], s[..., :2]), np.where(after, 0.0, s[..., 2:])], -1
    )
    new = np.where((variant == 0)[:, None, None], rev, hover)
    imp = state.copy()
    imp[b, :, k] = new
    ok = every(1 - rk[:, None] - s[..., 1] >= AIR, t0, -1, 0)
    ok &= every(visible(s[..., :2], occ), t0, -BEFORE, AFTER - 1)
    ok &= every(visible(new[..., :2], occ), t0, 0, AFTER - 1)
    # Only ball k changes: it touches nobody from the onset on, in either twin.
    ok &= ~(contact[b, :, k] & after[..., 0]).any(1) & apart(imp, radius, k, t0)
    e = t0 + AFTER - 1
    ok &= np.linalg.norm(s[b, e, :2] - new[b, e, :2], axis=-1) >= 0.08
    ok &= (variant == 1) | (new[b, e, 3] < -0.2)  # reverse: really moving up by then
    return _events(world, state, imp, radius, occ, t0, k, ok)


def constancy(world: BouncingBalls, rng, variant, onset) -> Events:
    """"colour" (variant 0): the ball takes an unused palette colour; "size" (1): its radius
    is scaled by 0.55 or 1.6. Its motion does not change."""
    cfg, m = world.cfg, len(variant)
    state, contact, radius, occ, k, t0 = _scene(world, rng, m, onset)
    b, K = np.arange(m), cfg.n_balls
    colour = PALETTE[rng.integers(K, len(PALETTE), size=m)]
    scale = np.where(variant == 1, np.where(rng.random(m) < 0.5, 0.55, 1.6), 1.0)
    after_r = radius.copy()
    after_r[b, k] *= scale
    after_c = np.repeat(world.colors[None], m, 0)
    after_c[b, k] = np.where((variant == 0)[:, None], colour, world.colors[k])
    rk, p = radius[b, k], state[b, :, k, :2]
    big = np.maximum(rk, after_r[b, k])
    ok = every(visible(p, occ), t0, -BEFORE, AFTER - 1) & every(clear(p, big, occ, cfg.size), t0, -1, 2)
    # The motion is the old one, so from the onset on the ball must touch no other ball (a
    # rescaled one would bounce off at a distance, or overlap), nor a wall in the first frames.
    inside = ((p >= big[:, None, None]) & (p <= 1 - big[:, None, None])).all(-1)
    ok &= every(inside, t0, 0, AFTER - 1) & apart(state, np.maximum(radius, after_r), k, t0)
    ok &= ~(contact[b, :, k] & (np.arange(cfg.frames) >= t0[:, None])).any(1)
    return _events(world, state, state.copy(), radius, occ, t0, k, ok,
                   after_radius=after_r, after_colors=after_c)
