"""Masks for plants on a ``(G, P)`` grid of channel groups × time patches: hide channel
groups (cross-sensor structure) or the last time patches (forecasting), and mix families with
weights. Same conventions as :mod:`monde.jepa.masks` (sorted, disjoint, equal counts)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from monde.errors import ConfigError
from monde.jepa.masks import MaskPair, _check, _check_range, _time_coord, _to_idx, _uniform


@dataclass
class ChannelBlocks:
    """Plant masks on a ``(G, P)`` grid (channel groups × time patches): hide a random set of
    channel groups over a random time span and predict them from the other groups and times.

    This is what teaches a sensor model the *cross-channel* structure of a plant (which
    sensors agree with which), the way time masks teach it dynamics. The number of groups and
    the span length are drawn once per batch, their positions per sample, so counts are equal.
    """

    grid: tuple[int, int]
    """Token grid ``(G, P)``."""
    group_ratio: tuple[float, float] = (0.15, 0.5)
    """Range of the fraction of groups hidden."""
    time_ratio: tuple[float, float] = (0.25, 1.0)
    """Range of the fraction of time patches the hidden span covers."""

    def __post_init__(self) -> None:
        self.grid = _check(self.grid, 2, "ChannelBlocks")
        _check_range(self.group_ratio, "group_ratio")
        _check_range(self.time_ratio, "time_ratio")
        if self.grid[0] < 2:
            raise ConfigError(f"ChannelBlocks needs at least 2 channel groups, got grid {self.grid}")

    def __call__(self, batch_size: int, generator: torch.Generator | None = None) -> MaskPair:
        g_n, p = self.grid
        k = min(max(round(_uniform(*self.group_ratio, generator) * g_n), 1), g_n - 1)
        span = min(max(round(_uniform(*self.time_ratio, generator) * p), 1), p)
        tgt = torch.zeros(batch_size, g_n, p, dtype=torch.bool)
        for b in range(batch_size):
            groups = torch.randperm(g_n, generator=generator)[:k]
            t0 = int(torch.randint(p - span + 1, (1,), generator=generator))
            tgt[b, groups, t0:t0 + span] = True
        tgt = tgt.reshape(batch_size, -1)
        return MaskPair(_to_idx(~tgt), _to_idx(tgt))


@dataclass
class FutureSteps:
    """Forecast masks: context = every token before the last ``k`` time steps, targets = those
    ``k`` steps (all other axes), with ``k`` drawn per batch from ``[1, max_steps]``."""

    grid: tuple[int, ...]
    """Token grid with time on ``time_axis``."""
    max_steps: int = 1
    """Largest number of future time steps to predict (kept below the grid's length)."""
    time_axis: int = -1
    """Which grid axis is time."""

    def __post_init__(self) -> None:
        self.grid = _check(self.grid, None, "FutureSteps")
        if self.grid[self.time_axis] < 2 or self.max_steps < 1:
            raise ConfigError(f"FutureSteps needs >= 2 time steps and max_steps >= 1, got grid "
                              f"{self.grid} and max_steps {self.max_steps}")

    def __call__(self, batch_size: int, generator: torch.Generator | None = None) -> MaskPair:
        p = self.grid[self.time_axis]
        hi = min(self.max_steps, p - 1)
        k = 1 + int(torch.randint(hi, (1,), generator=generator))
        t = _time_coord(self.grid, self.time_axis)
        ctx, tgt = (t < p - k).nonzero().squeeze(1), (t >= p - k).nonzero().squeeze(1)
        return MaskPair(ctx.repeat(batch_size, 1), tgt.repeat(batch_size, 1))


class WeightedMasks:
    """Draws one mask family per batch with the given weights (``None`` families skipped)."""

    def __init__(self, generators: list, weights: list[float]):
        self.generators, self.weights = generators, torch.tensor(weights, dtype=torch.float64)
        self.grid = next(g for g in generators if g is not None).grid

    def __call__(self, batch_size: int, generator: torch.Generator | None = None) -> MaskPair:
        i = int(torch.multinomial(self.weights, 1, generator=generator))
        return self.generators[i](batch_size, generator)
