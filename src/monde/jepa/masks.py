"""Which tokens the context encoder sees and which the predictor must predict.

Tokens are laid out row-major over a grid: video ``(T', H', W')`` → ``n = (t*H' + h)*W' + w``,
image ``(H', W')``, series ``(C, P)``. Every generator here returns a :class:`MaskPair` of
sorted, disjoint, non-empty index sets, and is deterministic given a seeded ``torch.Generator``.

Batching: masks are drawn per sample, but a batch needs rectangular index tensors, so each
sample's index set is cut down to the smallest count in the batch by dropping a *random*
subset of its indices (the I-JEPA/V-JEPA collators do the same by truncation). The dropped
tokens are simply unused: they never move from target to context, so the sets stay disjoint.
To keep that loss small, block *shapes* are drawn once per batch (as in I-JEPA's collator)
and only their positions per sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch

from monde.errors import ConfigError


@dataclass
class MaskPair:
    """The context/target split of one batch."""

    context_idx: torch.Tensor
    """``long [B, Nc]``: sorted token indices the context encoder sees."""
    target_idx: torch.Tensor
    """``long [B, Nt]``: sorted token indices the predictor must predict (disjoint from context)."""

    def to(self, device: torch.device | str) -> MaskPair:
        """Both index tensors on ``device``."""
        return MaskPair(self.context_idx.to(device), self.target_idx.to(device))


class MaskGenerator(Protocol):
    """Anything that draws a :class:`MaskPair` for a batch over a fixed token grid."""

    grid: tuple[int, ...]

    def __call__(self, batch_size: int, generator: torch.Generator | None = None) -> MaskPair: ...


def gather_tokens(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Select tokens per sample: ``x [B, N, D]``, ``idx long [B, K]`` → ``[B, K, D]``."""
    if x.dim() != 3 or idx.dim() != 2 or idx.shape[0] != x.shape[0]:
        raise ValueError(f"expected x [B, N, D] and idx [B, K], got {tuple(x.shape)} and "
                         f"{tuple(idx.shape)}")
    return torch.gather(x, 1, idx.to(x.device).unsqueeze(-1).expand(-1, -1, x.shape[-1]))


# --------------------------------------------------------------------------- helpers


def _check(grid: tuple[int, ...], ndim: int | None, name: str) -> tuple[int, ...]:
    grid = tuple(int(s) for s in grid)
    if (ndim is not None and len(grid) != ndim) or not grid or min(grid) < 1:
        want = f"{ndim} positive sizes" if ndim else "positive sizes"
        raise ConfigError(f"{name} needs a token grid of {want}, got {grid}")
    return grid


def _check_range(rng: tuple[float, float], name: str, hi: float = 1.0) -> None:
    if not 0 < rng[0] <= rng[1] <= hi:
        raise ConfigError(f"{name} must satisfy 0 < low <= high <= {hi}, got {rng}")


def _uniform(lo: float, hi: float, g: torch.Generator | None) -> float:
    return lo + (hi - lo) * torch.rand(1, generator=g).item()


def _block_size(scale: tuple[float, float], aspect: tuple[float, float], h: int, w: int,
                g: torch.Generator | None) -> tuple[int, int]:
    """A block shape ``(bh, bw)`` covering about ``scale`` of an ``h × w`` grid."""
    area = _uniform(*scale, g) * h * w
    # Log-uniform aspect ratio, so that tall (r) and wide (1/r) blocks are equally likely.
    r = math.exp(_uniform(math.log(aspect[0]), math.log(aspect[1]), g))
    bh = max(1, min(h, round(math.sqrt(area * r))))
    bw = max(1, min(w, round(math.sqrt(area / r))))
    return bh, bw


def _blocks(n: int, size: tuple[int, int], h: int, w: int,
            g: torch.Generator | None) -> torch.Tensor:
    """``bool [h*w]``: the union of ``n`` blocks of ``size`` at uniform random positions."""
    bh, bw = size
    tops = torch.randint(0, h - bh + 1, (n,), generator=g).tolist()
    lefts = torch.randint(0, w - bw + 1, (n,), generator=g).tolist()
    m = torch.zeros(h, w, dtype=torch.bool)
    for t, left in zip(tops, lefts):
        m[t:t + bh, left:left + bw] = True
    return m.flatten()


def _ensure_min_context(ctx: torch.Tensor, tgt: torch.Tensor, m: int,
                        g: torch.Generator | None) -> None:
    """Grow ``ctx`` (in place) to ``m`` units: free units first, then targets (keeping one).

    Only reached after the retries failed (tiny grids, huge blocks); it guarantees a usable
    context rather than a crash or an empty encoder input.
    """
    need = m - int(ctx.sum())
    for pool, spare in ((~ctx & ~tgt, 0), (tgt, 1)):
        if need <= 0:
            return
        idx = pool.nonzero().squeeze(1)
        take = idx[torch.randperm(len(idx), generator=g)[:max(0, min(need, len(idx) - spare))]]
        ctx[take], tgt[take] = True, False
        need -= len(take)


def _equalize(masks: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """``bool [B, U]`` → same, with random True entries dropped so every row has the minimum."""
    counts = masks.sum(1)
    k = int(counts.min())
    for b in (counts > k).nonzero().flatten().tolist():
        on = masks[b].nonzero().squeeze(1)
        masks[b, on[torch.randperm(len(on), generator=g)[:len(on) - k]]] = False
    return masks


def _draw_batch(batch_size: int, units: int, draw, min_context: int, max_tries: int,
                g: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Context and target ``bool [B, units]`` with equal counts per row.

    ``draw()`` returns one sample's disjoint ``(context, target)`` masks; it is redrawn until the
    context has ``min_context`` units, which is then forced if the tries run out.
    """
    ctx = torch.zeros(batch_size, units, dtype=torch.bool)
    tgt = torch.zeros_like(ctx)
    for b in range(batch_size):
        for _ in range(max_tries):
            c, t = draw()
            if int(c.sum()) >= min_context:
                break
        _ensure_min_context(c, t, min_context, g)
        ctx[b], tgt[b] = c, t
    return _equalize(ctx, g), _equalize(tgt, g)


def _to_idx(masks: torch.Tensor) -> torch.Tensor:
    """``bool [B, N]`` with equal row counts → ``long [B, K]`` sorted indices."""
    # nonzero() walks row-major, so each row's indices come out sorted.
    return masks.nonzero()[:, 1].reshape(masks.shape[0], -1)


def _time_coord(grid: tuple[int, ...], axis: int) -> torch.Tensor:
    """``long [N]``: the coordinate along ``axis`` of every token of the row-major grid."""
    shape = [1] * len(grid)
    shape[axis] = grid[axis]
    return torch.arange(grid[axis]).view(shape).expand(grid).reshape(-1)


def _composition(total: int, parts: int, g: torch.Generator | None) -> list[int]:
    """A uniformly random split of ``total`` into ``parts`` positive integers."""
    cuts = (torch.randperm(total - 1, generator=g)[:parts - 1] + 1).sort().values.tolist()
    edges = [0, *cuts, total]
    return [b - a for a, b in zip(edges[:-1], edges[1:])]


# --------------------------------------------------------------------------- generators


@dataclass
class MultiBlock2D:
    """I-JEPA masks on an image grid ``(H, W)``: target = union of blocks, context = a large
    block minus the targets."""

    grid: tuple[int, ...]
    """Token grid ``(H, W)``."""
    n_targets: int = 4
    """Target blocks per sample; the predictor must predict their union."""
    target_scale: tuple[float, float] = (0.15, 0.2)
    """Range of each target block's area as a fraction of the grid."""
    target_aspect: tuple[float, float] = (0.75, 1.5)
    """Range of the target blocks' height/width ratio."""
    context_scale: tuple[float, float] = (0.85, 1.0)
    """Range of the (square) context block's area fraction, before removing the targets."""
    min_context: int = 4
    """Fewest context tokens a sample may have (resampled, then forced)."""
    max_tries: int = 20
    """Resampling attempts per sample before forcing ``min_context``."""

    def __post_init__(self) -> None:
        self.grid = _check(self.grid, 2, "MultiBlock2D")
        _check_range(self.target_scale, "target_scale")
        _check_range(self.context_scale, "context_scale")
        _check_range(self.target_aspect, "target_aspect", hi=math.inf)
        if self.n_targets < 1 or not 1 <= self.min_context < math.prod(self.grid):
            raise ConfigError(f"MultiBlock2D needs n_targets >= 1 and 1 <= min_context < tokens "
                              f"({math.prod(self.grid)}); lower min_context for small grids")

    def __call__(self, batch_size: int, generator: torch.Generator | None = None) -> MaskPair:
        g, (h, w) = generator, self.grid
        tsize = _block_size(self.target_scale, self.target_aspect, h, w, g)
        csize = _block_size(self.context_scale, (1.0, 1.0), h, w, g)

        def draw() -> tuple[torch.Tensor, torch.Tensor]:
            t = _blocks(self.n_targets, tsize, h, w, g)
            return _blocks(1, csize, h, w, g) & ~t, t

        ctx, tgt = _draw_batch(batch_size, h * w, draw, self.min_context, self.max_tries, g)
        return MaskPair(_to_idx(ctx), _to_idx(tgt))


@dataclass
class TubeMultiBlock3D:
    """V-JEPA masks on a video grid ``(T, H, W)``: the union of spatial blocks, repeated over
    every time step ("tubes"), is the target; the context is everything else."""

    grid: tuple[int, ...]
    """Token grid ``(T, H, W)``."""
    n_blocks: int = 8
    """Spatial blocks per sample."""
    block_scale: tuple[float, float] = (0.15, 0.15)
    """Range of each block's area as a fraction of the ``H × W`` frame."""
    aspect: tuple[float, float] = (0.75, 1.5)
    """Range of the blocks' height/width ratio."""
    min_context: int = 4
    """Fewest context tokens a sample may have (rounded up to whole tubes)."""
    max_tries: int = 20
    """Resampling attempts per sample before forcing ``min_context``."""

    def __post_init__(self) -> None:
        self.grid = _check(self.grid, 3, "TubeMultiBlock3D")
        _check_range(self.block_scale, "block_scale")
        _check_range(self.aspect, "aspect", hi=math.inf)
        t, h, w = self.grid
        if self.n_blocks < 1 or not 1 <= -(-self.min_context // t) < h * w:
            raise ConfigError(f"TubeMultiBlock3D needs n_blocks >= 1 and 1 <= min_context with "
                              f"fewer tubes than {h * w}; lower min_context for small grids")

    def __call__(self, batch_size: int, generator: torch.Generator | None = None) -> MaskPair:
        g, (t, h, w) = generator, self.grid
        size = _block_size(self.block_scale, self.aspect, h, w, g)
        m = -(-self.min_context // t)  # context tubes needed

        def draw() -> tuple[torch.Tensor, torch.Tensor]:
            s = _blocks(self.n_blocks, size, h, w, g)
            return ~s, s

        # Equalised as whole tubes (every count is a multiple of T), so each kept target or
        # context location still spans all frames; then repeated over time, t-major like tokens.
        ctx, tgt = _draw_batch(batch_size, h * w, draw, m, self.max_tries, g)
        ctx, tgt = ctx.repeat(1, t), tgt.repeat(1, t)
        return MaskPair(_to_idx(ctx), _to_idx(tgt))


VJEPA_MASKS: tuple[dict, ...] = (
    {"n_blocks": 8, "block_scale": (0.15, 0.15)},  # short-range: many small tubes
    {"n_blocks": 2, "block_scale": (0.7, 0.7)},  # long-range: two large tubes
)
"""The two V-JEPA tube settings, alternated during training (see :func:`vjepa_masks`)."""


def vjepa_masks(grid: tuple[int, ...], **overrides) -> list[TubeMultiBlock3D]:
    """The V-JEPA short- and long-range tube generators for ``grid``; wrap in :class:`MaskMixture`.

    ``overrides`` (e.g. ``aspect``, ``min_context``) apply to both.
    """
    return [TubeMultiBlock3D(grid=grid, **{**s, **overrides}) for s in VJEPA_MASKS]


@dataclass
class MaskMixture:
    """Picks one of several generators per batch, uniformly with the caller's generator."""

    generators: list
    """Mask generators sharing one grid."""

    def __post_init__(self) -> None:
        if not self.generators or len({tuple(m.grid) for m in self.generators}) != 1:
            raise ConfigError("MaskMixture needs at least one generator, all on the same grid")

    @property
    def grid(self) -> tuple[int, ...]:
        """The shared token grid."""
        return self.generators[0].grid

    def __call__(self, batch_size: int, generator: torch.Generator | None = None) -> MaskPair:
        i = int(torch.randint(len(self.generators), (1,), generator=generator))
        return self.generators[i](batch_size, generator)


@dataclass
class TimeBlocks:
    """Series masks: ``n_blocks`` contiguous time spans, across all other axes (all channels),
    covering exactly ``round(mask_ratio * P)`` of the ``P`` time steps."""

    grid: tuple[int, ...]
    """Token grid, e.g. ``(C, P)`` channels × time patches."""
    n_blocks: int = 2
    """Separate masked spans per sample (fewer when time is too short to fit them apart)."""
    mask_ratio: float = 0.5
    """Fraction of time steps to mask (at least one step is masked and one kept)."""
    time_axis: int = -1
    """Which grid axis is time."""

    def __post_init__(self) -> None:
        self.grid = _check(self.grid, None, "TimeBlocks")
        if self.grid[self.time_axis] < 2 or self.n_blocks < 1 or not 0 < self.mask_ratio < 1:
            raise ConfigError(f"TimeBlocks needs >= 2 time steps, n_blocks >= 1 and 0 < mask_ratio "
                              f"< 1; got grid {self.grid}, time_axis {self.time_axis}")

    def __call__(self, batch_size: int, generator: torch.Generator | None = None) -> MaskPair:
        p = self.grid[self.time_axis]
        k = min(max(round(self.mask_ratio * p), 1), p - 1)
        # Spans must be separated by at least one kept step, or they would merge into one.
        n = min(self.n_blocks, k, p - k + 1)
        tm = torch.zeros(batch_size, p, dtype=torch.bool)
        for b in range(batch_size):
            spans = _composition(k, n, generator)
            # n+1 gaps: the n-1 interior ones >= 1, the two ends >= 0.
            gaps = [x - 1 for x in _composition(p - k - (n - 1) + n + 1, n + 1, generator)]
            pos = gaps[0]
            for i, length in enumerate(spans):
                tm[b, pos:pos + length] = True
                pos += length + gaps[i + 1] + 1
        tok = tm[:, _time_coord(self.grid, self.time_axis)]  # [B, N], equal counts by construction
        return MaskPair(_to_idx(~tok), _to_idx(tok))


@dataclass
class CausalFuture:
    """"Predict the future": context = tokens with ``t < C``, targets = ``C <= t < C + horizon``.

    Deterministic: the same split for every sample (the generator is accepted and unused).
    """

    grid: tuple[int, ...]
    """Token grid, e.g. ``(T, H, W)``."""
    context_steps: int | None = None
    """Time steps given as context; ``None`` uses ``context_ratio``."""
    context_ratio: float = 0.5
    """Fraction of time steps given as context (rounded, kept within ``[1, T-1]``)."""
    horizon: int | None = None
    """Future time steps to predict; ``None`` predicts all the rest."""
    time_axis: int = 0
    """Which grid axis is time."""

    def __post_init__(self) -> None:
        self.grid = _check(self.grid, None, "CausalFuture")
        c, end = self.steps()
        if not 1 <= c < end <= self.grid[self.time_axis]:
            raise ConfigError(f"CausalFuture needs 1 <= context_steps < {self.grid[self.time_axis]} "
                              f"time steps and horizon >= 1; got context {c}, horizon {self.horizon}")

    def steps(self) -> tuple[int, int]:
        """``(C, end)``: context steps ``[0, C)`` and target steps ``[C, end)``."""
        t = self.grid[self.time_axis]
        c = self.context_steps
        if c is None:
            c = min(max(round(self.context_ratio * t), 1), t - 1)
        end = t if self.horizon is None else min(c + self.horizon, t)
        return c, end

    def __call__(self, batch_size: int, generator: torch.Generator | None = None) -> MaskPair:
        c, end = self.steps()
        t = _time_coord(self.grid, self.time_axis)
        ctx = (t < c).nonzero().squeeze(1)
        tgt = ((t >= c) & (t < end)).nonzero().squeeze(1)
        return MaskPair(ctx.repeat(batch_size, 1), tgt.repeat(batch_size, 1))



@dataclass
class RandomTokens:
    """Each sample masks a uniformly random ``mask_ratio`` of its tokens, one by one.

    Unlike tubes, a masked token usually has its neighbours in space and time in the context,
    so predicting it means interpolating what moves through it: a ball hidden at one time step
    is seen a step before and after, and its place there follows from where it was and how it
    moved. That asks the encoder for positions and velocities rather than for what a whole
    masked region is likely to hold.
    """

    grid: tuple[int, ...]
    """Token grid, e.g. ``(T, H, W)``."""
    mask_ratio: float = 0.75
    """Fraction of the tokens to predict (at least one is predicted and one kept)."""

    def __post_init__(self) -> None:
        self.grid = _check(self.grid, None, "RandomTokens")
        if not 0 < self.mask_ratio < 1 or math.prod(self.grid) < 2:
            raise ConfigError(f"RandomTokens needs 0 < mask_ratio < 1 and at least 2 tokens; got "
                              f"mask_ratio {self.mask_ratio}, grid {self.grid}")

    def __call__(self, batch_size: int, generator: torch.Generator | None = None) -> MaskPair:
        n = math.prod(self.grid)
        k = min(max(round(self.mask_ratio * n), 1), n - 1)
        order = torch.rand(batch_size, n, generator=generator).argsort(dim=1)
        return MaskPair(order[:, k:].sort(dim=1).values, order[:, :k].sort(dim=1).values)
