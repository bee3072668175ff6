"""Pre-norm transformer with rotary attention."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from monde.nn.rope import apply_rope, rope_angles, rope_cos_sin, rope_frequencies

AttnImpl = Literal["auto", "sdpa", "math"]

# On CPU in bf16, a plain matmul-softmax beats the fused SDPA kernel up to 256 keys; when a
# gradient is needed it still wins at 512 (forward + backward 1.6x faster at [16, 6, 512, 64])
# and is level at 1024, where the score matrix grows too large to keep. Without a gradient
# above 256 keys, and in fp32, SDPA is as fast or faster. Measured on a 2-core Zen 5: see
# docs/results.md.
_MATH_MAX_TOKENS = 256
_MATH_MAX_TOKENS_GRAD = 512


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, impl: AttnImpl = "auto") -> torch.Tensor:
    """Scaled dot-product attention without a mask.

    Args:
        q, k, v: ``[B, H, N, Dh]``.
        impl: ``"sdpa"`` (PyTorch's fused kernel), ``"math"`` (explicit matmul-softmax) or
            ``"auto"`` (on CPU in bf16: math up to 256 keys, or 512 when a gradient is
            needed; SDPA otherwise).

    Returns:
        ``[B, H, N, Dh]``.
    """
    if impl == "auto":
        needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad
                                                   or v.requires_grad)
        limit = _MATH_MAX_TOKENS_GRAD if needs_grad else _MATH_MAX_TOKENS
        short_cpu_bf16 = (q.device.type == "cpu" and q.dtype == torch.bfloat16
                          and k.shape[-2] <= limit)
        impl = "math" if short_cpu_bf16 else "sdpa"
    if impl == "sdpa":
        return F.scaled_dot_product_attention(q, k, v)
    # Autocast would run softmax in fp32 (a copy of the whole score matrix each way); in bf16
    # it is ~5x cheaper on CPU and as accurate as the bf16 matmuls around it.
    with torch.autocast(q.device.type, enabled=False):
        scores = q @ (k.transpose(-2, -1) * q.shape[-1] ** -0.5)
        return scores.softmax(dim=-1) @ v


class Attention(nn.Module):
    """Multi-head self-attention with RoPE on the token positions."""

    def __init__(self, dim: int, heads: int, pos_axes: int, rope_base: float = 10000.0,
                 impl: AttnImpl = "auto"):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}")
        self.heads, self.impl = heads, impl
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.register_buffer("freqs", rope_frequencies(dim // heads, pos_axes, rope_base),
                             persistent=False)

    def rotation(self, positions: torch.Tensor, dtype: torch.dtype):
        """RoPE ``(cos, sin)`` for ``positions [B, N, P]`` or ``[N, P]``."""
        return rope_cos_sin(rope_angles(positions, self.freqs), dtype)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, rotation=None) -> torch.Tensor:
        """x: ``[B, N, D]``; positions: ``[B, N, P]`` or ``[N, P]``; ``rotation``: a
        precomputed :meth:`rotation` (shared by all blocks). Returns ``[B, N, D]``."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if rotation is None:
            rotation = self.rotation(positions, q.dtype)
        # q and k are strided views into the fused projection: RoPE's sliced multiplies run
        # 10–30% faster on contiguous copies (CPU, fp32 and bf16).
        q, k = apply_rope(q.contiguous(), rotation), apply_rope(k.contiguous(), rotation)
        out = attention(q, k, v, self.impl)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))`` then ``x + mlp(norm(x))``."""

    def __init__(self, dim: int, heads: int, pos_axes: int, mlp_ratio: float = 4.0,
                 impl: AttnImpl = "auto"):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, pos_axes, impl=impl)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, positions: torch.Tensor, rotation=None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), positions, rotation)
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    """A stack of :class:`Block` followed by a final LayerNorm.

    ``blocks`` is a ``ModuleList`` so that FSDP2 can shard each block on its own.
    """

    def __init__(self, dim: int, depth: int, heads: int, pos_axes: int, mlp_ratio: float = 4.0,
                 impl: AttnImpl = "auto"):
        super().__init__()
        self.blocks = nn.ModuleList(
            Block(dim, heads, pos_axes, mlp_ratio, impl) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """x: ``[B, N, D]``; positions: ``[B, N, P]`` or ``[N, P]``. Returns ``[B, N, D]``."""
        return self.norm(self.block_outputs(x, positions)[-1])

    def block_outputs(self, x: torch.Tensor, positions: torch.Tensor) -> list[torch.Tensor]:
        """Every block's output ``[B, N, D]`` (before the final norm), first block first; the
        input itself when there are no blocks."""
        if not len(self.blocks):
            return [x]
        dtype = torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(
            x.device.type) else x.dtype
        rotation = self.blocks[0].attn.rotation(positions, dtype)
        outs = []
        for block in self.blocks:
            x = block(x, positions, rotation)
            outs.append(x)
        return outs


def _init_weights(m: nn.Module) -> None:
    # Truncated-normal init with std 0.02, as in ViT/I-JEPA; it keeps early activations small.
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
