"""Encoder and predictor networks of a JEPA."""

from __future__ import annotations

import torch
from torch import nn

from monde.jepa.config import EncoderConfig, PredictorConfig
from monde.jepa.masks import gather_tokens
from monde.nn import (
    PatchTokenizer,
    SeriesTokenizer,
    SpectrogramTokenizer,
    Tokens,
    Transformer,
    TubeletTokenizer,
)
from monde.nn.posembed import sincos_embedding

POS_AXES = {"video": 3, "image": 2, "series": 1, "audio": 2}


def build_tokenizer(cfg: EncoderConfig) -> nn.Module:
    """The tokenizer for ``cfg.modality``."""
    if cfg.modality == "video":
        return TubeletTokenizer(cfg.channels, cfg.dim, cfg.patch, cfg.tubelet)
    if cfg.modality == "image":
        return PatchTokenizer(cfg.channels, cfg.dim, cfg.patch)
    if cfg.modality == "series":
        return SeriesTokenizer(cfg.channels, cfg.dim, cfg.patch)
    if cfg.modality == "audio":
        from monde.data.logmel import LogMel, MelConfig

        mel = MelConfig(rate=cfg.sample_rate, n_fft=cfg.n_fft, hop=cfg.hop, n_mels=cfg.height)
        mel.validate()
        return SpectrogramTokenizer(LogMel(mel), cfg.dim, cfg.patch, cfg.width)
    raise ValueError(f"unknown modality {cfg.modality!r}")


class Encoder(nn.Module):
    """Tokenizer + transformer. The same module serves as context and (EMA) target encoder."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = build_tokenizer(cfg)
        self.backbone = Transformer(cfg.dim, cfg.depth, cfg.heads, POS_AXES[cfg.modality],
                                    cfg.mlp_ratio, cfg.attn_impl)

    def tokenize(self, x: torch.Tensor) -> Tokens:
        """Raw input (see :class:`EncoderConfig`) → tokens ``[B, N, D]``."""
        tokens = self.tokenizer(x)
        if self.cfg.abs_pos:
            pe = sincos_embedding(tokens.positions, self.cfg.dim).to(tokens.values.dtype)
            tokens = Tokens(tokens.values + pe, tokens.positions, tokens.grid)
        return tokens

    def forward(self, tokens: Tokens, keep_idx: torch.Tensor | None = None) -> torch.Tensor:
        """Encode all tokens, or only ``keep_idx [B, K]`` of them.

        Returns:
            ``[B, N, D]`` (or ``[B, K, D]``).
        """
        x, pos = tokens.values, tokens.positions
        if keep_idx is not None:
            x, pos = gather_tokens(x, keep_idx), pos[keep_idx]  # pos: [B, K, P]
        return self.backbone(x, pos)

    def block_outputs(self, tokens: Tokens) -> list[torch.Tensor]:
        """Every transformer block's output ``[B, N, D]`` for all tokens (before the final norm)."""
        return self.backbone.block_outputs(tokens.values, tokens.positions)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Raw input → ``[B, N, D]`` latents of every token."""
        return self(self.tokenize(x))


class Predictor(nn.Module):
    """Narrow transformer: context latents + mask tokens at target positions → target latents.

    The context is projected to the predictor width; each target position gets a shared,
    learned mask token (its identity comes from RoPE on its position), and the output at the
    target positions is projected back to the encoder width.
    """

    def __init__(self, enc_dim: int, cfg: PredictorConfig, pos_axes: int,
                 out_dim: int | None = None):
        super().__init__()
        self.embed = nn.Linear(enc_dim, cfg.dim)
        self.mask_token = nn.Parameter(torch.zeros(cfg.dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.backbone = Transformer(cfg.dim, cfg.depth, cfg.heads, pos_axes)
        self.head = nn.Linear(cfg.dim, out_dim or enc_dim)  # out_dim: pixel targets

    def forward(self, context: torch.Tensor, context_idx: torch.Tensor,
                target_idx: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Predict target latents.

        Args:
            context: ``[B, Nc, D]`` context-encoder output.
            context_idx: ``[B, Nc]`` grid indices of the context tokens.
            target_idx: ``[B, Nt]`` grid indices to predict.
            positions: ``[N, P]`` grid coordinates of all tokens.

        Returns:
            ``[B, Nt, D]`` predicted latents (``[B, Nt, out_dim]`` with pixel targets).
        """
        b, nt = target_idx.shape
        ctx = self.embed(context)
        masks = self.mask_token.to(ctx.dtype).expand(b, nt, -1)
        x = torch.cat([ctx, masks], dim=1)
        pos = torch.cat([positions[context_idx], positions[target_idx]], dim=1)
        y = self.backbone(x, pos)
        return self.head(y[:, -nt:])
