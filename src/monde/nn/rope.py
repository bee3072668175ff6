"""Rotary position embeddings (RoPE) on 1-D, 2-D and 3-D grids.

Each attention head's channels are split into one chunk per grid axis (time; height, width;
time, height, width). Within a chunk, consecutive channel pairs are rotated by an angle
``position * frequency`` with geometrically spaced frequencies, as in RoFormer. Because a
rotation by ``a`` followed by the inverse rotation by ``b`` is a rotation by ``a - b``, the
dot product of a rotated query and key depends only on their *relative* offset on each axis —
which is what lets one model handle masked subsets of tokens and other grid sizes.
"""

from __future__ import annotations

import torch


def rope_frequencies(head_dim: int, n_axes: int, base: float = 10000.0) -> torch.Tensor:
    """Frequencies per rotated channel pair.

    Args:
        head_dim: channels per attention head.
        n_axes: grid axes sharing the head (1, 2 or 3).
        base: the largest wavelength scale.

    Returns:
        ``[n_axes, pairs_per_axis]`` float32; ``2 * n_axes * pairs_per_axis <= head_dim``
        (leftover channels, if any, are not rotated).
    """
    pairs = head_dim // (2 * n_axes)
    if pairs == 0:
        raise ValueError(f"head_dim={head_dim} is too small for {n_axes}-axis RoPE")
    exponents = torch.arange(pairs, dtype=torch.float32) / pairs
    freqs = base ** (-exponents)
    return freqs.unsqueeze(0).expand(n_axes, pairs).contiguous()


def rope_angles(positions: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Rotation angle of every channel pair at every position.

    Args:
        positions: ``[..., N, P]`` token coordinates (``P == freqs.shape[0]``).
        freqs: ``[P, pairs]`` from :func:`rope_frequencies`.

    Returns:
        ``[..., N, P * pairs]`` angles.
    """
    ang = positions.unsqueeze(-1).float() * freqs.to(positions.device)  # [..., N, P, pairs]
    return ang.flatten(-2)


def rope_cos_sin(angles: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos`` and ``sin`` of ``angles [..., N, R]`` shaped to broadcast over heads: ``[B|1, 1, N, R]``.

    Computed once per transformer forward and shared by every block (all blocks rotate by the
    same angles), in the dtype the attention runs in.
    """
    if angles.dim() == 2:
        angles = angles.unsqueeze(0)
    angles = angles.unsqueeze(1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: torch.Tensor, angles: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate channel pairs of ``x`` by ``angles``.

    Channel ``i`` of the first ``R`` is paired with channel ``R + i`` ("rotate half" layout:
    two contiguous slices instead of strided pairs, which is cheaper on CPU).

    Args:
        x: ``[B, H, N, Dh]`` queries or keys.
        angles: ``[B, N, R]`` or ``[N, R]`` with ``2 * R <= Dh``, or the ``(cos, sin)`` pair
            from :func:`rope_cos_sin`.

    Returns:
        ``[B, H, N, Dh]``, same dtype as ``x``.
    """
    cos, sin = angles if isinstance(angles, tuple) else rope_cos_sin(angles, x.dtype)
    r = cos.shape[-1]
    x1, x2, rest = x[..., :r], x[..., r:2 * r], x[..., 2 * r:]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos, rest), dim=-1)
