"""Blocks: attention with RoPE, transformer, tokenizers and embedders (torch only)."""

from monde.nn.convnet import ConvEncoder, mlp
from monde.nn.rope import apply_rope, rope_angles, rope_frequencies
from monde.nn.tokenizers import (
    PatchTokenizer,
    PlantTokenizer,
    SeriesTokenizer,
    SpectrogramTokenizer,
    TubeletTokenizer,
    VectorEmbedder,
)
from monde.nn.tokens import Tokens, grid_positions
from monde.nn.transformer import Attention, Block, Transformer, attention

__all__ = [
    "Attention", "Block", "ConvEncoder", "PatchTokenizer", "PlantTokenizer", "SeriesTokenizer", "SpectrogramTokenizer",
    "Tokens",
    "Transformer", "TubeletTokenizer", "VectorEmbedder", "apply_rope", "attention", "grid_positions",
    "mlp", "rope_angles", "rope_frequencies",
]
