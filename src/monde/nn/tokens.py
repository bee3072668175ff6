"""The one data type every tokenizer returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Tokens:
    """Tokens of a batch, laid out row-major over a grid.

    Attributes:
        values: ``[B, N, D]`` token embeddings.
        positions: ``[N, P]`` float coordinates of each token on its grid, shared by the batch
            (``P`` = number of rotary axes: 1 for time, 2 for images, 3 for video).
        grid: the token grid, e.g. ``(T', H', W')``; ``prod(grid) == N``. Masks use it.
    """

    values: torch.Tensor
    positions: torch.Tensor
    grid: tuple[int, ...]


def grid_positions(grid: tuple[int, ...], device: torch.device | None = None) -> torch.Tensor:
    """Integer coordinates of a row-major grid as floats.

    >>> grid_positions((2, 3)).tolist()[:4]
    [[0.0, 0.0], [0.0, 1.0], [0.0, 2.0], [1.0, 0.0]]

    Returns:
        ``[prod(grid), len(grid)]`` float32.
    """
    axes = [torch.arange(n, dtype=torch.float32, device=device) for n in grid]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=-1)
