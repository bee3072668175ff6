"""Bouncing balls: a tiny, fast 2-D physics world that renders video clips on the fly.

Self-supervised video pretraining needs an endless stream of clips whose true state is known,
so that a linear probe can check what the encoder learned. This world is pure numpy and
vectorised over the batch (loops run only over time steps and ball pairs), so generating a
batch costs far less than a training step on it.

Conventions
-----------
* Positions are in frame units: ``(0, 0)`` is the top-left corner, ``(1, 1)`` the bottom-right,
  ``x`` grows to the right and ``y`` grows *downward* (image convention). Gravity pulls towards
  ``+y``.
* Velocities are in frame sides per second, radii in frame sides.
* A ball of radius ``r`` has mass ``r**2`` (a disc of uniform density).
* Potential energy per unit mass is ``gravity * (1 - y)`` (zero on the floor), so the total
  energy of a clip is ``sum_k r_k**2 * (|v_k|**2 / 2 + gravity * (1 - y_k))``.
* Ball ``k`` is always drawn with colour ``BouncingBalls.colors[k]``; occluders are grey
  rectangles drawn in front of every ball and never move within a clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monde.errors import ConfigError
from monde.worlds.seeding import as_rng as _rng

# Saturated colours, far from the black background, the grey occluders and one another.
PALETTE = np.array(
    [
        (230, 40, 40), (40, 200, 60), (50, 90, 240), (240, 220, 40), (220, 60, 220),
        (40, 220, 220), (250, 140, 20), (150, 80, 250), (250, 160, 180), (160, 250, 120),
    ],
    dtype=np.uint8,
)
OCCLUDER_COLOR = (128, 128, 128)
_MAX_TRIES = 200  # rejection-sampling rounds when placing balls without overlap


@dataclass
class BallsConfig:
    """Bouncing-balls world settings."""

    frames: int = 16
    """Frames per clip."""
    size: int = 64
    """Side of the square frame, in pixels."""
    n_balls: int = 3
    """Balls per clip (at most ``len(PALETTE)`` so that colours stay distinct)."""
    radius: tuple[float, float] = (0.06, 0.10)
    """Range of ball radii, as a fraction of the frame side (sampled uniformly per ball)."""
    speed: tuple[float, float] = (0.5, 1.5)
    """Range of initial speeds, frame sides per second (direction uniform)."""
    gravity: float = 2.0
    """Downward acceleration in frame sides per second squared; 0 disables gravity."""
    dt: float = 1 / 30
    """Seconds between two frames."""
    substeps: int = 4
    """Physics substeps per frame; more makes collisions more accurate."""
    restitution: float = 1.0
    """Fraction of the normal velocity kept in a bounce; 1.0 is perfectly elastic."""
    collisions: bool = True
    """Ball-ball collisions; False lets balls pass through each other (walls always reflect).
    Used only to make impossible clips (:mod:`monde.worlds.intphys`)."""
    occluders: int = 0
    """Static opaque grey rectangles per clip, drawn in front of the balls."""
    occluder_size: tuple[float, float] = (0.15, 0.35)
    """Range of occluder width and height, as a fraction of the frame side."""
    path_occlusion: float = 0.0
    """Fraction of clips whose first occluder is placed across a ball's path (centred on a
    random ball at a random frame, and at least big enough to hide it), so that balls are seen
    going behind an occluder and coming out again far more often than with occluders placed
    at random. 0 keeps the random placement (and the random stream of older versions)."""
    background: tuple[int, int, int] = (0, 0, 0)
    """Background RGB colour."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` for settings the simulator cannot honour."""
        def bad(msg: str) -> ConfigError:
            return ConfigError(f"BallsConfig: {msg}")

        if self.frames < 1 or self.size < 4:
            raise bad(f"frames must be >= 1 and size >= 4, got frames={self.frames}, size={self.size}")
        if not 1 <= self.n_balls <= len(PALETTE):
            raise bad(f"n_balls must be in [1, {len(PALETTE)}], got {self.n_balls}")
        lo, hi = self.radius
        if not 0 < lo <= hi < 0.5:
            raise bad(f"radius range must satisfy 0 < lo <= hi < 0.5, got {self.radius}")
        if not 0 <= self.speed[0] <= self.speed[1]:
            raise bad(f"speed range must satisfy 0 <= lo <= hi, got {self.speed}")
        if self.dt <= 0 or self.substeps < 1:
            raise bad(f"dt must be > 0 and substeps >= 1, got dt={self.dt}, substeps={self.substeps}")
        if not 0 <= self.restitution <= 1:
            raise bad(f"restitution must be in [0, 1], got {self.restitution}")
        if not 0 <= self.path_occlusion <= 1:
            raise bad(f"path_occlusion must be in [0, 1], got {self.path_occlusion}")
        if self.occluders < 0 or not 0 < self.occluder_size[0] <= self.occluder_size[1] <= 1:
            raise bad(
                f"occluders must be >= 0 and 0 < occluder_size lo <= hi <= 1, got "
                f"occluders={self.occluders}, occluder_size={self.occluder_size}"
            )


@dataclass
class BallsClips:
    """A batch of rendered clips with their true state (B clips, T frames, K balls, O occluders)."""

    video: np.ndarray
    """uint8 ``[B, T, 3, H, W]`` RGB frames."""
    state: np.ndarray
    """float32 ``[B, T, K, 4]``: ``(x, y, vx, vy)`` of each ball at each frame."""
    radius: np.ndarray
    """float32 ``[B, K]`` ball radii in frame sides."""
    visible: np.ndarray
    """bool ``[B, T, K]``: the ball centre is not hidden by an occluder."""
    occluders: np.ndarray
    """float32 ``[B, O, 4]``: ``(x0, y0, x1, y1)`` of each occluder in frame units."""



class BouncingBalls:
    """Deterministic (given a seed) bouncing-balls video generator; see the module docstring."""

    def __init__(self, cfg: BallsConfig | None = None):
        self.cfg = cfg if cfg is not None else BallsConfig()
        self.cfg.validate()
        self.colors = PALETTE[: self.cfg.n_balls]
        """uint8 ``[K, 3]``: RGB colour of ball ``k``."""

    # ----------------------------------------------------------------------------- sampling
    def sample(self, batch_size: int, rng: np.random.Generator | int) -> BallsClips:
        """Simulate and render ``batch_size`` clips; the same ``rng`` seed gives the same clips."""
        cfg, rng = self.cfg, _rng(rng)
        pos, vel, radius = self.initial_state(batch_size, rng)
        occ = self.sample_occluders(batch_size, rng)
        state = np.empty((batch_size, cfg.frames, cfg.n_balls, 4), np.float32)
        for t in range(cfg.frames):
            state[:, t, :, :2], state[:, t, :, 2:] = pos, vel
            if t + 1 < cfg.frames:
                pos, vel = self.step(pos, vel, radius)
        if cfg.path_occlusion > 0 and cfg.occluders > 0:
            occ = self._occlude_paths(occ, state, radius, rng)
        video = self._render(state[..., :2], radius, occ)
        return BallsClips(
            video=video,
            state=state,
            radius=radius.astype(np.float32),
            visible=self.visible(state[..., :2], occ),
            occluders=occ,
        )

    def batch(self, step: int, batch_size: int, seed: int = 0, rank: int = 0) -> BallsClips:
        """Deterministic function of ``(seed, step, rank)``: the trainer uses it so that resuming at step s reproduces exactly the data an uninterrupted run would have seen, and each DDP rank sees different clips."""
        # SeedSequence hashes the whole tuple, so nearby (seed, step, rank) give unrelated streams.
        return self.sample(batch_size, np.random.default_rng([seed, step, rank]))

    def initial_state(
        self, batch_size: int, rng: np.random.Generator | int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Random non-overlapping balls inside the frame.

        Returns ``pos [B, K, 2]``, ``vel [B, K, 2]`` and ``radius [B, K]`` (float64).
        """
        cfg, rng = self.cfg, _rng(rng)
        B, K = batch_size, cfg.n_balls
        radius = rng.uniform(*cfg.radius, size=(B, K))
        pos = np.empty((B, K, 2))
        # Place balls one at a time; redraw, for the clips where ball k overlaps an earlier
        # ball, only ball k. Bounded so that an impossible config fails instead of hanging.
        for k in range(K):
            todo = np.arange(B)
            for _ in range(_MAX_TRIES):
                r = radius[todo, k, None]
                pos[todo, k] = r + rng.random((todo.size, 2)) * (1 - 2 * r)
                if k == 0:
                    break
                gap = np.linalg.norm(pos[todo, :k] - pos[todo, k, None], axis=-1)
                clash = (gap < radius[todo, :k] + radius[todo, k, None]).any(axis=1)
                todo = todo[clash]
                if todo.size == 0:
                    break
            else:
                raise ConfigError(
                    f"BallsConfig: could not place {K} balls of radius {cfg.radius} without "
                    "overlap; use fewer or smaller balls"
                )
        speed = rng.uniform(*cfg.speed, size=(B, K))
        angle = rng.uniform(0, 2 * np.pi, size=(B, K))
        vel = np.stack([speed * np.cos(angle), speed * np.sin(angle)], axis=-1)
        return pos, vel, radius

    def _occlude_paths(self, occ: np.ndarray, state: np.ndarray, radius: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
        """Move occluder 0 of a ``path_occlusion`` fraction of clips onto a ball's path.

        ``occ [B, O, 4]``, ``state [B, T, K, 4]``, ``radius [B, K]``; returns a new ``occ``. The
        occluder is centred on ball ``k`` at frame ``t0`` (both uniform) and is at least the
        ball's diameter plus 0.06 wide and high, so the ball disappears behind it for a few
        frames; it stays inside the frame.
        """
        cfg = self.cfg
        B, T, K = state.shape[:3]
        pick = rng.random(B) < cfg.path_occlusion
        k, t0 = rng.integers(K, size=B), rng.integers(T, size=B)
        wh = rng.uniform(*cfg.occluder_size, size=(B, 2))
        b = np.arange(B)
        wh = np.minimum(np.maximum(wh, 2 * radius[b, k, None] + 0.06), 1.0)
        lo = np.clip(state[b, t0, k, :2] - wh / 2, 0, 1 - wh)
        occ = occ.copy()
        occ[pick, 0] = np.concatenate([lo, lo + wh], -1)[pick]
        return occ

    def sample_occluders(self, batch_size: int, rng: np.random.Generator | int) -> np.ndarray:
        """Random occluders, float32 ``[B, O, 4]`` as ``(x0, y0, x1, y1)`` inside the frame."""
        cfg, rng = self.cfg, _rng(rng)
        shape = (batch_size, cfg.occluders, 2)
        wh = rng.uniform(*cfg.occluder_size, size=shape)
        lo = rng.random(shape) * (1 - wh)
        return np.concatenate([lo, lo + wh], axis=-1).astype(np.float32)

    # ------------------------------------------------------------------------------ physics
    def step(
        self, pos: np.ndarray, vel: np.ndarray, radius: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Advance one frame (``cfg.substeps`` substeps); returns new ``pos, vel [B, K, 2]``.

        The inputs are not modified. Each substep moves balls exactly under constant gravity,
        then twice resolves ball-ball collisions (unless ``cfg.collisions`` is False) and reflects
        balls off the walls.
        """
        cfg = self.cfg
        pos = np.array(pos, dtype=np.float64)
        vel = np.array(vel, dtype=np.float64)
        radius = np.asarray(radius, dtype=np.float64)
        h = cfg.dt / cfg.substeps
        g = np.array([0.0, cfg.gravity])
        mass = radius**2
        pairs = [(i, j) for i in range(cfg.n_balls) for j in range(i + 1, cfg.n_balls)]
        if not cfg.collisions:
            pairs = []
        for _ in range(cfg.substeps):
            # Exact for constant acceleration, so free flight conserves energy to rounding.
            pos += vel * h + 0.5 * g * h * h
            vel += g * h
            # A second pass resolves contacts that the first one created (a ball pushed into
            # a wall, or into a third ball); it keeps overlaps well under a pixel.
            for _ in range(2):
                for i, j in pairs:
                    self._collide(pos, vel, radius, mass, i, j)
                self._walls(pos, vel, radius)
        return pos, vel

    def _collide(self, pos, vel, radius, mass, i: int, j: int) -> None:
        """Elastic (up to restitution) collision of balls i and j, in place, for every clip."""
        d = pos[:, j] - pos[:, i]  # [B, 2]
        dist = np.sqrt((d * d).sum(-1))
        overlap = radius[:, i] + radius[:, j] - dist
        hit = overlap > 0
        if not hit.any():
            return
        n = d / np.maximum(dist, 1e-12)[:, None]
        mi, mj = mass[:, i], mass[:, j]
        closing = ((vel[:, i] - vel[:, j]) * n).sum(-1)  # > 0 when approaching
        # Impulse along the normal: exchanges the normal components (weighted by mass),
        # so momentum and, for restitution 1, kinetic energy are conserved.
        impulse = np.where(hit & (closing > 0), (1 + self.cfg.restitution) * closing / (mi + mj), 0)
        vel[:, i] -= (impulse * mj)[:, None] * n
        vel[:, j] += (impulse * mi)[:, None] * n
        # Push apart in inverse proportion to mass: the centre of mass stays put, so the
        # potential energy under gravity is unchanged by the correction.
        push = np.where(hit, overlap, 0) / (mi + mj)
        pos[:, i] -= (push * mj)[:, None] * n
        pos[:, j] += (push * mi)[:, None] * n

    def _walls(self, pos, vel, radius) -> None:
        """Reflect balls that crossed a wall, in place, keeping the energy of vertical bounces."""
        e, g = self.cfg.restitution, self.cfg.gravity
        r = radius
        for axis in (0, 1):
            p, v = pos[..., axis], vel[..., axis]
            low, high = p < r, p > 1 - r
            new_p = np.where(low, 2 * r - p, np.where(high, 2 * (1 - r) - p, p))
            if axis == 1 and g != 0:
                # Mirroring the position moves the ball along gravity; rescale |vy| so that
                # |v|^2/2 - g*y is unchanged instead of gaining or losing energy per bounce.
                v2 = v * v + 2 * g * (new_p - p)
                v = np.where(v2 > 0, np.sign(v) * np.sqrt(np.maximum(v2, 0)), 0)
            bounce = (low & (v < 0)) | (high & (v > 0))
            vel[..., axis] = np.where(bounce, -e * v, v)
            # Clip guards against a mirror overshooting the opposite wall (very fast balls).
            pos[..., axis] = np.clip(new_p, r, 1 - r)

    # ---------------------------------------------------------------------------- rendering
    def visible(self, pos: np.ndarray, occluders: np.ndarray) -> np.ndarray:
        """bool ``[B, T, K]``: centre of each ball (``pos [B, T, K, 2]``) outside every occluder."""
        if occluders.shape[1] == 0:
            return np.ones(pos.shape[:-1], dtype=bool)
        x, y = pos[..., 0, None], pos[..., 1, None]  # [B, T, K, 1]
        o = occluders[:, None, None]  # [B, 1, 1, O, 4]
        inside = (x >= o[..., 0]) & (x <= o[..., 2]) & (y >= o[..., 1]) & (y <= o[..., 3])
        return ~inside.any(-1)

    def render(
        self, pos: np.ndarray, radius: np.ndarray, occluders: np.ndarray | None = None
    ) -> np.ndarray:
        """Draw one frame per clip: ``pos [B, K, 2]``, ``radius [B, K]``, ``occluders [B, O, 4]``.

        Returns uint8 ``[B, 3, H, W]``. Discs are anti-aliased over about one pixel.
        """
        return self._render(np.asarray(pos)[:, None], np.asarray(radius), occluders)[:, 0]

    def _render(
        self,
        pos: np.ndarray,
        radius: np.ndarray,
        occluders: np.ndarray | None,
        colors: np.ndarray | None = None,
    ) -> np.ndarray:
        """Draw ``pos [B, T, K, 2]`` into uint8 ``[B, T, 3, H, W]`` (occluders are static).

        ``colors`` overrides :attr:`colors`: RGB ``[K, 3]``, per clip ``[B, K, 3]`` or per
        frame ``[B, T, K, 3]``.
        """
        cfg = self.cfg
        S = cfg.size
        B, T, K, _ = pos.shape
        N = B * T
        # Ball-major layout [K, N, ...] keeps each ball's slices contiguous in the loop below.
        pos_px = pos.reshape(N, K, 2).transpose(1, 0, 2).astype(np.float32) * S  # [K, N, 2]
        r_px = np.repeat(radius.astype(np.float32).T * S, T, axis=1)  # [K, N]
        # Each disc only touches a small square window; drawing there instead of over the
        # whole frame is ~16x less work at the default sizes. The window is clamped inside
        # the frame, which still covers every on-screen pixel of the disc.
        w = min(S, int(np.ceil(2 * r_px.max(initial=0) + 2)) + 1)
        origin = np.clip(np.floor(pos_px - w / 2), 0, S - w)  # [K, N, 2] float32
        local = np.arange(w, dtype=np.float32) + 0.5
        dx2 = (origin[..., 0, None] + local - pos_px[..., 0, None]) ** 2  # [K, N, w]
        dy2 = (origin[..., 1, None] + local - pos_px[..., 1, None]) ** 2  # [K, N, w]
        dist = np.sqrt(dy2[..., :, None] + dx2[..., None, :])  # [K, N, w, w]
        # Coverage ramps from 1 to 0 across the one pixel straddling the rim.
        alpha = np.clip(r_px[..., None, None] + 0.5 - dist, 0.0, 1.0).reshape(K, N, 1, w * w)
        video = np.empty((N, 3, S, S), np.uint8)
        video[:] = np.asarray(cfg.background, np.uint8)[:, None, None]
        flat = video.reshape(-1)
        # Flat indices of each window's pixels in each channel: [K, N, 3, w*w].
        pix = (np.arange(w)[:, None] * S + np.arange(w)[None, :]).reshape(-1)
        corner = origin.astype(np.intp)
        base = np.arange(N) * (3 * S * S) + corner[..., 1] * S + corner[..., 0]  # [K, N]
        idx = base[..., None, None] + (np.arange(3) * S * S)[:, None] + pix
        if colors is None or np.ndim(colors) == 2:
            rgb = self.colors if colors is None else colors
            colors = np.asarray(rgb, np.float32)[:, :, None]  # [K, 3, 1]
        else:  # per clip or per frame: [K, N, 3, 1], in the same ball-major layout
            c = np.asarray(colors, np.float32)
            c = np.broadcast_to(c[:, None] if c.ndim == 3 else c, (B, T, K, 3))
            colors = c.reshape(N, K, 3).transpose(1, 0, 2)[..., None]
        for k in range(K):  # painter's order: later balls are drawn over earlier ones
            under = flat[idx[k]].astype(np.float32)  # [N, 3, w*w]
            flat[idx[k]] = (under + alpha[k] * (colors[k] - under) + 0.5).astype(np.uint8)
        video = video.reshape(B, T, 3, S, S)
        if occluders is not None and occluders.shape[1] > 0:
            centres = (np.arange(S, dtype=np.float32) + 0.5) / S  # pixel centres, frame units
            o = occluders[:, :, None]  # [B, O, 1, 4]
            in_x = (centres >= o[..., 0]) & (centres < o[..., 2])  # [B, O, W]
            in_y = (centres >= o[..., 1]) & (centres < o[..., 3])  # [B, O, H]
            mask = (in_y[..., :, None] & in_x[..., None, :]).any(1)  # [B, H, W]
            grey = np.array(OCCLUDER_COLOR, np.uint8)[:, None, None]
            np.copyto(video, grey, where=mask[:, None, None])
        return video
