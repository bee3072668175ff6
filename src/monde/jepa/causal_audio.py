"""Frame-causal audio JEPA: latent maps of successive slices of a sound, and a forecaster.

The audio twin of :mod:`monde.jepa.causal_video`. A window of sound becomes a standardised
log-mel spectrogram; a convolutional encoder that never looks ahead in time
(:class:`~monde.nn.specconv.CausalSpecEncoder`) turns every ``step_frames`` spectrogram frames
into one latent map (``map_channels`` × ``bands`` frequency cells); a 1-D convolutional
predictor (:class:`~monde.nn.specconv.HistoryConv1dPredictor`) maps the ``context`` most
recent maps to the next one.

Training on windows of ``steps`` latent steps (``frames / step_frames``):

* **teacher forcing**: every step after the first ``context`` is forecast from the encoded
  steps before it; **rollout**: ``rollout`` steps forecast from ``context`` encoded ones at a
  random place in the window, predictions fed back in — both regressed onto the encoded
  steps (mean squared error in latent space, never the spectrogram);
* **VICReg** variance + covariance with every *cell's* channel vector as a sample, against
  collapse (the same recipe that made the video twin learn).

The spectrogram is standardised per window (mean and spread of the whole window, so a
microphone's gain does not matter); that level is the only thing a latent step takes from
later in the window — the encoder's convolutions see only the past.

Surprise (:meth:`CausalAudioJEPA.step_errors`): the squared error of each one-step forecast,
per frequency cell, reduced over cells by ``mean`` or ``max``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from monde.data.logmel import LogMel, MelConfig
from monde.jepa.model import LossOutput
from monde.jepa.regularizers import VICReg
from monde.nn.specconv import CausalSpecEncoder, HistoryConv1dPredictor
from monde.nn.tokenizers import standardised_spectrogram


@dataclass
class CausalAudioConfig:
    """Front end, sizes and loss weights of a frame-causal audio JEPA."""

    kind: str = "audio-causal"
    """Marks the model family in saved configs (do not change)."""
    sample_rate: int = 16000
    """Sample rate the model hears, Hz (files are resampled to it)."""
    n_fft: int = 1024
    """FFT size and window of the log-mel front end, samples."""
    hop: int = 160
    """Samples between spectrogram frames."""
    n_mels: int = 64
    """Mel bands (a multiple of ``2 ** len(widths)``)."""
    frames: int = 96
    """Spectrogram frames per window: the window is ``(frames - 1) * hop`` samples."""
    widths: tuple[int, ...] = (32, 64, 64)
    """Channels of the encoder's convolutions; each halves the frequency axis."""
    time_strides: tuple[int, ...] = (2, 2, 1)
    """Time stride of each encoder convolution; their product is ``step_frames``."""
    map_channels: int = 16
    """Channels of a step's latent map."""
    context: int = 6
    """Latent steps the predictor sees before the one it forecasts."""
    rollout: int = 3
    """Steps forecast free-running per training window."""
    predictor_hidden: int = 128
    """Channels of the predictor's hidden convolutions."""
    predictor_layers: int = 4
    """Convolutions in the predictor."""
    rollout_weight: float = 1.0
    """Weight of the rollout loss (teacher forcing has weight 1)."""
    std_weight: float = 10.0
    """VICReg variance term."""
    cov_weight: float = 1.0
    """VICReg covariance term."""

    @property
    def step_frames(self) -> int:
        """Spectrogram frames per latent step."""
        return math.prod(self.time_strides)

    @property
    def steps(self) -> int:
        """Latent steps per window."""
        return self.frames // self.step_frames

    @property
    def bands(self) -> int:
        """Frequency cells of a latent map."""
        return self.n_mels // 2 ** len(self.widths)

    @property
    def token_dim(self) -> int:
        """Size of one step's latent, flattened (``map_channels * bands``)."""
        return self.map_channels * self.bands

    @property
    def window_samples(self) -> int:
        """Samples in one window."""
        return (self.frames - 1) * self.hop

    def mel(self) -> MelConfig:
        return MelConfig(rate=self.sample_rate, n_fft=self.n_fft, hop=self.hop,
                         n_mels=self.n_mels)

    def validate(self) -> None:
        """Raise :class:`~monde.errors.ConfigError` on settings that cannot train."""
        from monde.errors import ConfigError

        self.mel().validate()
        if len(self.widths) != len(self.time_strides) or not self.widths:
            raise ConfigError(f"model.widths {self.widths} and model.time_strides "
                              f"{self.time_strides} need one entry per convolution (same length)")
        if min(self.time_strides) < 1 or self.n_mels % 2 ** len(self.widths):
            raise ConfigError(f"model.n_mels ({self.n_mels}) must be a multiple of "
                              f"{2 ** len(self.widths)} and model.time_strides >= 1")
        if self.frames % self.step_frames:
            raise ConfigError(f"model.frames ({self.frames}) must be a multiple of the product "
                              f"of model.time_strides ({self.step_frames})")
        if self.context < 1 or self.rollout < 1 or self.steps < self.context + self.rollout:
            raise ConfigError(f"a window has {self.steps} latent steps; it needs model.context "
                              f"({self.context}) + model.rollout ({self.rollout}), both >= 1")
        if self.predictor_layers < 2:
            raise ConfigError("model.predictor_layers must be >= 2")


class CausalAudioJEPA(nn.Module):
    """Front end, encoder and next-map predictor, with the training loss.

    ``forward(x)`` takes windows of sound ``[B, window_samples]`` at ``sample_rate``.
    """

    def __init__(self, cfg: CausalAudioConfig, seed: int = 0):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        torch.manual_seed(seed)
        self.frontend = LogMel(cfg.mel())
        self.encoder = CausalSpecEncoder(cfg.widths, cfg.time_strides, cfg.map_channels)
        self.predictor = HistoryConv1dPredictor(cfg.map_channels, cfg.context,
                                                cfg.predictor_hidden, cfg.predictor_layers)
        self.vicreg = VICReg(std_coeff=cfg.std_weight, cov_coeff=cfg.cov_weight)

    # ------------------------------------------------------------------ inference pieces
    def spectrogram(self, sound: torch.Tensor) -> torch.Tensor:
        """Standardised log-mel ``[B, 1, n_mels, frames]`` of sound ``[B, N]``."""
        return standardised_spectrogram(self.frontend, sound, self.cfg.frames)

    def encode(self, sound: torch.Tensor) -> torch.Tensor:
        """Latent maps ``[B, steps, map_channels, bands]`` of windows ``[B, N]``."""
        s = self.spectrogram(sound)
        z = self.encoder(s.to(self.encoder.head.weight.dtype))  # [B, C, bands, steps]
        return z.permute(0, 3, 1, 2)

    def tokens(self, sound: torch.Tensor) -> torch.Tensor:
        """One token per latent step, ``[B, steps, token_dim]`` (maps flattened)."""
        return self.encode(sound).flatten(2)

    def forecast(self, z: torch.Tensor) -> torch.Tensor:
        """One-step forecasts ``[B, T-K, C, F]`` of steps K..T-1 of maps ``z [B, T, C, F]``."""
        K = self.cfg.context
        B, T = z.shape[:2]
        hist = z.unfold(1, K, 1)[:, :T - K].permute(0, 1, 4, 2, 3).flatten(0, 1)
        return self.predictor(hist).reshape(B, T - K, *z.shape[2:])

    def rollout(self, z: torch.Tensor, steps: int) -> torch.Tensor:
        """``steps`` maps ``[B, steps, C, F]`` imagined from the first K of ``z [B, ≥K, C, F]``."""
        hist = list(z[:, :self.cfg.context].unbind(1))
        out = []
        for _ in range(steps):
            nxt = self.predictor(torch.stack(hist[-self.cfg.context:], 1))
            out.append(nxt)
            hist.append(nxt)
        return torch.stack(out, 1)

    @torch.no_grad()
    def step_errors(self, z: torch.Tensor,
                    cells: Literal["mean", "max"] = "mean") -> torch.Tensor:
        """Surprise of steps K..T-1 of windows with maps ``z [B, T, C, F]``: ``[B, T-K]``."""
        err = (self.forecast(z).float() - z[:, self.cfg.context:].float()).pow(2).sum(2)
        return err.amax(-1) if cells == "max" else err.mean(-1)

    # ------------------------------------------------------------------ training
    def forward(self, x: torch.Tensor, step: int = 0,
                generator: torch.Generator | None = None) -> LossOutput:
        c = self.cfg
        if x.dim() != 2:
            raise ValueError(f"expected windows of sound [B, N], got {tuple(x.shape)}")
        z = self.encode(x)  # [B, T, C, F]
        T = z.shape[1]
        start = int(torch.randint(0, T - c.context - c.rollout + 1, (1,), generator=generator))
        teacher = self.forecast(z)
        roll = self.rollout(z[:, start:], c.rollout)
        pred = F.mse_loss(teacher.float(), z[:, c.context:].float())
        rol = F.mse_loss(roll.float(), z[:, start + c.context:start + c.context + c.rollout].float())
        reg = self.vicreg(z.transpose(2, 3).reshape(-1, c.map_channels).float())
        loss = pred + c.rollout_weight * rol + reg.loss
        parts = {"pred": pred.detach(), "rollout": rol.detach(),
                 "std": reg.parts["vicreg_std"], "cov": reg.parts["vicreg_cov"]}
        return LossOutput(loss=loss, parts=parts, embeddings=z.mean(1).flatten(1).detach().float())

    def after_step(self, step: int, total_steps: int) -> None:
        """Nothing to update between steps (no EMA target)."""
