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


def apply_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs of ``x`` by ``angles``.

    Args:
        x: ``[B, H, N, Dh]`` queries or keys.
        angles: ``[B, N, R]`` or ``[N, R]`` with ``2 * R <= Dh``.

    Returns:
        ``[B, H, N, Dh]``, same dtype as ``x``.
    """
    rot = 2 * angles.shape[-1]
    if angles.dim() == 3:
        angles = angles.unsqueeze(1)  # broadcast over heads
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    xr, rest = x[..., :rot], x[..., rot:]
    x0, x1 = xr[..., 0::2], xr[..., 1::2]
    out = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)
    return torch.cat((out, rest), dim=-1) if rest.shape[-1] else out
