"""Typed configs of the JEPA model parts. Defaults live here and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class EncoderConfig:
    """The context/target encoder: a tokenizer followed by a transformer."""

    modality: Literal["video", "image", "series", "audio"] = "video"
    """Which tokenizer to use: tubelets (video), patches (image), per-channel patches (series)
    or time–frequency patches of a log-mel spectrogram (audio)."""
    channels: int = 3
    """Input channels (3 for RGB; the number of sensors for series; 1 for audio: mono)."""
    frames: int = 16
    """Frames per clip the model is trained on (video); used to check inputs."""
    height: int = 64
    """Input height in pixels (video/image); for series, the window length in steps; for
    audio, the number of mel bands."""
    width: int = 64
    """Input width in pixels (video/image); unused for series; for audio, spectrogram frames
    per window (a window is ``(width - 1) * hop`` samples)."""
    sample_rate: int = 16000
    """Audio: samples per second the model hears (files are resampled to it)."""
    n_fft: int = 400
    """Audio: FFT size (and window length) of the log-mel front end, in samples."""
    hop: int = 160
    """Audio: samples between spectrogram frames."""
    patch: int = 8
    """Spatial patch side in pixels (or time steps per patch for series)."""
    tubelet: int = 2
    """Frames per video token."""
    dim: int = 192
    """Token width."""
    depth: int = 6
    """Transformer blocks."""
    heads: int = 3
    """Attention heads (``dim / heads`` must be even per rotary axis)."""
    mlp_ratio: float = 4.0
    """MLP hidden width as a multiple of ``dim``."""
    abs_pos: bool = False
    """Add fixed sine-cosine absolute position embeddings to the tokens (besides RoPE in every
    attention layer), so features can say *where* things are, not only relative layout."""
    attn_impl: Literal["auto", "sdpa", "math"] = "auto"
    """Attention kernel; ``auto`` uses matmul-softmax for short CPU sequences, SDPA otherwise."""


@dataclass
class PredictorConfig:
    """The narrow transformer that predicts target latents from context latents."""

    dim: int = 96
    """Predictor width (narrower than the encoder, as in I-JEPA/V-JEPA)."""
    depth: int = 4
    """Transformer blocks."""
    heads: int = 3
    """Attention heads."""


@dataclass
class MaskConfig:
    """Which tokens the context sees and which the predictor must predict."""

    kind: Literal["vjepa", "vjepa+causal", "tube", "causal", "multiblock", "time",
                  "audio", "random"] = "vjepa"
    """``vjepa``: alternate short-range (8×15%) and long-range (2×70%) tube masks;
    ``vjepa+causal``: those two plus "see the first c time steps, predict the rest" for every
    c in ``[1, T-1]``, drawn uniformly per batch — what a model needs to score surprise;
    ``tube``: one tube multi-block setting; ``causal``: see the first frames, predict the rest;
    ``multiblock``: I-JEPA 2-D blocks (images); ``time``: contiguous time spans (series);
    ``audio``: on a (frequency, time) grid, one of time–frequency blocks, time spans,
    frequency bands, or "hear the first half, predict the rest", drawn per batch;
    ``random``: each sample predicts a random ``mask_ratio`` of its tokens (any grid)."""
    n_blocks: int = 8
    """Blocks per mask (``tube``/``multiblock``/``time``)."""
    block_scale: float = 0.15
    """Area (or time) fraction of each block."""
    context_ratio: float = 0.5
    """For ``causal``: fraction of the time steps given as context."""
    mask_ratio: float = 0.5
    """For ``time``: fraction of time steps masked; for ``random``: fraction of tokens."""


@dataclass
class ObjectiveConfig:
    """The JEPA loss and its anti-collapse mechanism."""

    target: Literal["latent", "pixels"] = "latent"
    """``latent``: the JEPA objective. ``pixels``: the generative baseline — the same encoder
    and predictor regress the raw pixels of the target tokens instead (no target encoder, no
    anti-collapse term), so latent vs pixel prediction can be compared with all else equal."""
    loss: Literal["l1", "smooth_l1", "mse"] = "l1"
    """Latent prediction loss against layer-normed targets."""
    anti_collapse: Literal["ema", "sigreg", "vicreg"] = "ema"
    """``ema``: target encoder is a momentum copy; ``sigreg``/``vicreg``: the target is the
    online encoder under stop-gradient and a regulariser on context embeddings prevents collapse."""
    target_layers: int = 1
    """Targets from the last ``k`` blocks of the target encoder: each block's output
    layer-normed, averaged, layer-normed again (data2vec's targets). 1 = the final output only
    (I-/V-JEPA). Lower blocks keep more of the input; averaging them makes the targets harder
    to collapse onto a few directions."""
    ema_start: float = 0.996
    """EMA momentum at step 0 (rises linearly to ``ema_end``)."""
    ema_end: float = 1.0
    """EMA momentum at the last step."""
    reg_weight: float = 0.05
    """Weight of the SIGReg/VICReg term (ignored for ``ema``)."""
    sigreg_slices: int = 256
    """Random 1-D projections for SIGReg."""
    vicreg_std: float = 25.0
    """VICReg variance coefficient (relative to ``reg_weight``)."""
    vicreg_cov: float = 1.0
    """VICReg covariance coefficient (relative to ``reg_weight``)."""


@dataclass
class ModelConfig:
    """A whole JEPA: encoder, predictor, masks and objective."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
