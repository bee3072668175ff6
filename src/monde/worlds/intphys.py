"""Intuitive-physics benchmark: matched possible / impossible clips of the bouncing-balls world.

A video world model is trained only on physically possible clips (:meth:`IntPhys.training_world`);
its *surprise* should then be higher on an impossible clip than on the clip's possible twin.
Both twins share one simulated scene, identical up to the onset of the violation, so only the
violation can explain a difference. Five principles, after the IntPhys / developmental
psychology literature:

* ``permanence`` ("vanish"): a ball goes behind an occluder and never comes out.
* ``continuity`` ("teleport"): a ball jumps at least 0.3 frame sides, then moves on.
* ``solidity`` ("pass-through"): two balls about to collide pass through each other.
* ``gravity`` ("reverse", "hover"): an airborne ball falls upward, or stops dead in the air.
* ``constancy`` ("colour", "size"): a visible ball changes colour, or radius (x0.55 or x1.6).

The possible twin is always an ordinary clip of the training world's physics (same gravity,
``dt``, radii, walls, collisions); only the occluder placement (permanence) differs. Candidates
are drawn and kept by rejection sampling, so that each event really happens, with the ball in
view for at least 4 frames before it, and shows within 4 frames of the onset: a model with
about 6 frames of context can know what should have happened.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from monde.errors import ConfigError
from monde.worlds import intphys_events as events
from monde.worlds.balls import PALETTE, BallsConfig, BouncingBalls

PRINCIPLES = ("permanence", "continuity", "solidity", "gravity", "constancy")
VARIANTS = {
    "permanence": ("vanish",),
    "continuity": ("teleport",),
    "solidity": ("pass-through",),
    "gravity": ("reverse", "hover"),
    "constancy": ("colour", "size"),
}
"""Kinds of violation per principle; clip ``i`` of a batch gets variant ``i % len(...)``."""
_CHUNK = 128  # candidates per rejection-sampling round (fixed, so n does not change the draws)
_MAX_ROUNDS = 100


@dataclass
class IntPhysConfig:
    """Scene statistics and physics shared by the training world and the test pairs."""

    frames: int = 24
    """Frames per test clip."""
    size: int = 64
    """Side of the square frame, in pixels."""
    n_balls: int = 2
    """Balls per clip (solidity needs 2; at most ``len(PALETTE) - 1`` so a colour stays unused)."""
    radius: tuple[float, float] = (0.08, 0.11)
    """Range of ball radii, frame sides."""
    speed: tuple[float, float] = (0.8, 1.6)
    """Range of initial speeds, frame sides per second."""
    gravity: float = 2.0
    """Downward acceleration, frame sides per second squared."""
    dt: float = 1 / 15
    """Seconds between frames: faster motion per frame than the balls default, so that an
    event fits in a short model window."""
    occluders: int = 1
    """Grey occluders per clip (permanence needs at least 1)."""
    occluder_size: tuple[float, float] = (0.22, 0.32)
    """Range of occluder width and height, frame sides (permanence enlarges one when the
    ball would not fit behind it)."""
    onset: tuple[int, int] = (8, 16)
    """Inclusive range of frames in which the violation starts."""

    def balls(self, frames: int | None = None) -> BallsConfig:
        """The training world: a BallsConfig with the same physics and scene statistics
        (``frames`` defaults to :attr:`frames`)."""
        return BallsConfig(
            frames=self.frames if frames is None else frames, size=self.size,
            n_balls=self.n_balls, radius=tuple(self.radius), speed=tuple(self.speed),
            gravity=self.gravity, dt=self.dt, occluders=self.occluders,
            occluder_size=tuple(self.occluder_size),
        )

    def validate(self) -> None:
        """Raise :class:`ConfigError` for settings that cannot give visible events."""
        lo, hi = self.onset
        before, after = events.BEFORE, events.AFTER
        if not before <= lo <= hi <= self.frames - after - 1:
            raise ConfigError(
                f"IntPhysConfig: onset must satisfy {before} <= lo <= hi <= frames - {after + 1} "
                f"(the ball is watched {before} frames before and {after} after), got "
                f"onset={self.onset}, frames={self.frames}"
            )
        if not 1 <= self.n_balls < len(PALETTE):
            raise ConfigError(
                f"IntPhysConfig: n_balls must be in [1, {len(PALETTE) - 1}] (constancy needs an "
                f"unused colour), got {self.n_balls}"
            )
        try:
            self.balls().validate()
        except ConfigError as e:
            raise ConfigError(f"IntPhysConfig: {str(e).removeprefix('BallsConfig: ')}") from None


@dataclass
class PhysicsPairs:
    """``B`` matched clips of one principle (T frames, K balls, O occluders)."""

    principle: str
    possible: np.ndarray
    """uint8 ``[B, T, 3, H, W]``: clips that obey the training world's physics."""
    impossible: np.ndarray
    """uint8 ``[B, T, 3, H, W]``: their twins, pixel-identical before ``onset``."""
    onset: np.ndarray
    """int ``[B]``: first frame where the impossible clip's underlying state differs."""
    variant: list[str]
    """Kind of violation per clip (see :data:`VARIANTS`)."""
    ball: np.ndarray | None = None
    """int ``[B]``: the ball the violation happens to (drawn in ``PALETTE[ball]`` until then)."""
    partner: np.ndarray | None = None
    """int ``[B]``: the other ball of the collision (solidity), else -1."""
    possible_state: np.ndarray | None = None
    """float32 ``[B, T, K, 4]``: ``(x, y, vx, vy)`` of each ball in the possible twin."""
    impossible_state: np.ndarray | None = None
    """float32 ``[B, T, K, 4]``: the same for the impossible twin; NaN once a ball is gone."""
    radius: np.ndarray | None = None
    """float32 ``[B, K]``: radii (constancy "size" scales ``ball``'s from the onset on)."""
    occluders: np.ndarray | None = None
    """float32 ``[B, O, 4]``: ``(x0, y0, x1, y1)`` of the occluders, shared by both twins."""


class IntPhys:
    """Generator of matched possible / impossible clip pairs; see the module docstring."""

    def __init__(self, cfg: IntPhysConfig | None = None):
        self.cfg = cfg if cfg is not None else IntPhysConfig()
        self.cfg.validate()
        self.world = BouncingBalls(self.cfg.balls())

    def training_world(self, frames: int | None = None) -> BouncingBalls:
        """The world to train on: possible clips only, same physics as the pairs."""
        return BouncingBalls(self.cfg.balls(frames))

    def all_pairs(self, n: int, seed: int) -> dict[str, PhysicsPairs]:
        """:meth:`pairs` for every principle in :data:`PRINCIPLES`."""
        return {p: self.pairs(p, n, seed) for p in PRINCIPLES}

    def pairs(self, principle: str, n: int, seed: int) -> PhysicsPairs:
        """``n`` pairs of ``principle``; a deterministic function of ``(principle, n, seed)``
        (and the first ``m`` pairs do not depend on ``n >= m``)."""
        cfg = self.cfg
        if principle not in PRINCIPLES:
            raise ConfigError(f"unknown principle {principle!r}; choose one of {', '.join(PRINCIPLES)}")
        if n < 1 or seed < 0:
            raise ConfigError(f"pairs needs n >= 1 and seed >= 0, got n={n}, seed={seed}")
        if principle == "permanence" and cfg.occluders < 1:
            raise ConfigError("permanence needs an occluder to hide behind: set occluders >= 1")
        if principle == "solidity" and cfg.n_balls < 2:
            raise ConfigError("solidity needs two balls to collide: set n_balls >= 2")
        build, names = getattr(events, principle), VARIANTS[principle]
        V = len(names)
        want = [len(range(v, n, V)) for v in range(V)]
        kept: list[list[tuple[events.Events, np.ndarray]]] = [[] for _ in range(V)]
        have = [0] * V
        for rnd in range(_MAX_ROUNDS):
            rng = np.random.default_rng([seed, PRINCIPLES.index(principle), rnd])
            variant = np.arange(_CHUNK) % V
            ev = build(self.world, rng, variant, cfg.onset)
            for v in range(V):
                idx = np.flatnonzero(ev.ok & (variant == v))[: want[v] - have[v]]
                kept[v].append((ev, idx))
                have[v] += idx.size
            if have == want:
                break
        else:
            raise ConfigError(
                f"IntPhys: found only {sum(have)} of {n} {principle} events in "
                f"{_MAX_ROUNDS * _CHUNK} scenes; widen onset or use more frames, balls or speed"
            )
        # Interleave the variants: clip i gets variant i % V.
        order = np.concatenate([np.arange(v, n, V) for v in range(V)])
        ev = _gather([e for per in kept for e in per], order)
        possible, impossible = self._render(ev)
        f32 = lambda a: a.astype(np.float32)  # noqa: E731
        return PhysicsPairs(
            principle=principle, possible=possible, impossible=impossible,
            onset=ev.onset.astype(np.int64), variant=[names[i % V] for i in range(n)],
            ball=ev.ball.astype(np.int64), partner=ev.partner.astype(np.int64),
            possible_state=f32(ev.possible), impossible_state=f32(ev.impossible),
            radius=f32(ev.radius), occluders=f32(ev.occluders),
        )

    def _render(self, ev: events.Events) -> tuple[np.ndarray, np.ndarray]:
        """Draw both twins; the impossible one with its colours and radii from the onset on."""
        w, T = self.world, self.cfg.frames
        possible = w._render(ev.possible[..., :2], ev.radius, ev.occluders)
        # A ball that no longer exists is drawn far outside the frame, where it covers nothing.
        pos = np.nan_to_num(ev.impossible[..., :2], nan=-2.0)
        after = np.arange(T)[None] >= ev.onset[:, None]  # [B, T]
        colors = None
        if (ev.after_colors != w.colors).any():
            colors = np.where(after[..., None, None], ev.after_colors[:, None], w.colors)
        impossible = w._render(pos, ev.radius, ev.occluders, colors)
        resized = (ev.after_radius != ev.radius).any(1)
        if resized.any():
            sub = w._render(pos[resized], ev.after_radius[resized], ev.occluders[resized],
                            None if colors is None else colors[resized])
            keep = after[resized][:, :, None, None, None]
            impossible[resized] = np.where(keep, sub, impossible[resized])
        return possible, impossible


def _gather(parts: list[tuple[events.Events, np.ndarray]], order: np.ndarray) -> events.Events:
    """Concatenate the kept rows of several candidate batches, then put row ``r`` at ``order[r]``."""
    out = {}
    for f in fields(events.Events):
        rows = np.concatenate([getattr(e, f.name)[idx] for e, idx in parts])
        placed = np.empty_like(rows)
        placed[order] = rows
        out[f.name] = placed
    return events.Events(**out)
