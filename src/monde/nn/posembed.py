"""Fixed sine-cosine absolute position embeddings on a grid (as in ViT-MAE / V-JEPA 1).

Rotary embeddings make attention depend on *relative* offsets only, so an encoder with RoPE
alone is translation-equivariant: averaged over tokens, its features cannot say *where* things
are. A world in which absolute position matters (walls, floors, a fixed camera) needs that
information; adding this embedding to the tokens once, before the first block, provides it.
"""

from __future__ import annotations

import torch


def sincos_embedding(positions: torch.Tensor, dim: int, base: float = 10000.0) -> torch.Tensor:
    """Absolute embeddings of grid coordinates.

    The channels are split evenly over the axes; on each axis half are sines and half cosines
    of ``position * frequency`` with geometrically spaced frequencies. Channels left over
    (when ``dim`` does not divide evenly) are zero.

    Args:
        positions: ``[N, P]`` coordinates.
        dim: embedding width.

    Returns:
        ``[N, dim]`` float32.
    """
    n, p = positions.shape
    per_axis = (dim // (2 * p)) * 2
    half = per_axis // 2
    if half == 0:
        raise ValueError(f"dim={dim} is too small for a {p}-axis sine-cosine embedding")
    freqs = base ** (-torch.arange(half, dtype=torch.float32, device=positions.device) / half)
    ang = positions.float().unsqueeze(-1) * freqs  # [N, P, half]
    emb = torch.cat([ang.sin(), ang.cos()], dim=-1).reshape(n, p * per_axis)
    return torch.nn.functional.pad(emb, (0, dim - p * per_axis))
