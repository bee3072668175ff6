"""Spectral audio JEPA: a machine's whole-window spectrum, and what its parts say about the rest.

A rotating machine's health shows in the *structure* of its spectrum — which harmonics of the
shaft it makes, how its high band pulses — more than in how one moment follows the last (a
machine that has been faulty all along forecasts itself perfectly well). This family learns
that structure by masked prediction *along frequency*:

* the front end (:class:`~monde.data.spectrum.MachineSpectrum`) turns a window of sound into
  channels on a log-frequency grid (tones, envelope spectrum and, if on, fluctuation),
  standardised per grid point with statistics fitted on training sound and saved with the
  model;
* an encoder of dilated residual 1-D convolutions along the grid (translation-equivariant: a
  faster shaft is a shift) halves the axis twice, giving one latent vector of ``latent``
  channels per 4 grid points (an eighth of an octave at 32 points per octave);
* the predictor sees the encoder's latents of the *masked* spectrum (1–3 spans of 4–16
  positions, half an octave to two, zeroed with a mask channel) and predicts the latents of
  the full spectrum at the masked positions: the harmonics, resonances and modulation a
  normal machine has there, given the rest. Loss: mean squared error at masked positions, plus
  VICReg variance and covariance over every position's vector (against collapse; the same
  recipe that made the frame-causal families learn).

Surprise (:meth:`SpectralAudioJEPA.position_errors`): every position is masked once in each of
two staggered tilings of ``score_span`` positions, and its prediction error is averaged; a
window's surprise is the mean over positions. No calibration: the number is the model's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from monde.data.spectrum import MachineSpectrum, SpectrumConfig
from monde.jepa.model import LossOutput
from monde.jepa.regularizers import VICReg
from monde.nn.convnet import residual_stack

_DOWN = 4  # grid points per latent position (two stride-2 convolutions)


@dataclass
class SpectralAudioConfig:
    """Front end, sizes, masks and loss weights of a spectral audio JEPA."""

    kind: str = "audio-spectral"
    """Marks the model family in saved configs (do not change)."""
    spectrum: SpectrumConfig = field(default_factory=SpectrumConfig)
    """The front end; ``spectrum.samples`` is the window the model hears."""
    width: int = 64
    """Channels of the encoder's and predictor's convolutions (a multiple of 8)."""
    latent: int = 32
    """Channels of a latent position."""
    spans: tuple[int, int] = (1, 3)
    """Range of the number of masked spans per training window."""
    span: tuple[int, int] = (4, 16)
    """Range of a masked span's length, latent positions."""
    score_span: int = 8
    """Span length of the fixed tilings that score surprise, latent positions."""
    std_weight: float = 10.0
    """VICReg variance term."""
    cov_weight: float = 1.0
    """VICReg covariance term."""
    target_grad: bool = True
    """Let the prediction loss reach the targets' encoding. False detaches them (stop-gradient;
    VICReg still acts on them): the encoder is then not rewarded for dropping what the rest
    of the spectrum cannot predict — such as a healthy machine's 1x level, which is drawn
    independently of its harmonics, and is exactly what imbalance changes."""

    @property
    def sample_rate(self) -> int:
        return self.spectrum.rate

    @property
    def window_samples(self) -> int:
        return self.spectrum.samples

    @property
    def positions(self) -> int:
        """Latent positions along the frequency axis."""
        return self.spectrum.bins // _DOWN

    def validate(self) -> None:
        """Raise :class:`~monde.errors.ConfigError` on settings that cannot train."""
        from monde.errors import ConfigError

        self.spectrum.validate()
        if self.spectrum.bins % _DOWN:
            raise ConfigError(f"model.spectrum: octaves * per_octave ({self.spectrum.bins}) must "
                              f"be a multiple of {_DOWN}")
        if self.width < 8 or self.width % 8 or self.latent < 2:
            raise ConfigError(f"model.width ({self.width}) must be a multiple of 8 and "
                              f"model.latent ({self.latent}) >= 2")
        lo, hi = self.span
        if not (1 <= self.spans[0] <= self.spans[1] and 1 <= lo <= hi <= self.positions
                and 1 <= self.score_span <= self.positions):
            raise ConfigError(f"model.spans {self.spans}, model.span {self.span} and "
                              f"model.score_span ({self.score_span}) must be ranges >= 1 within "
                              f"the {self.positions} latent positions")


class SpectralAudioJEPA(nn.Module):
    """Front end, normaliser, encoder and masked predictor, with the training loss.

    ``forward(x)`` takes windows of sound ``[B, window_samples]`` at ``sample_rate``.
    """

    def __init__(self, cfg: SpectralAudioConfig, seed: int = 0):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        torch.manual_seed(seed)
        self.frontend = MachineSpectrum(cfg.spectrum)
        bins, w, ch = cfg.spectrum.bins, cfg.width, cfg.spectrum.channels
        # Per grid point statistics of every channel, fitted on training sound.
        self.register_buffer("mean", torch.zeros(ch, bins))
        self.register_buffer("std", torch.ones(ch, bins))
        # Input: the spectrum's channels and a mask channel (1 where the spectrum is hidden).
        self.encoder = nn.Sequential(
            nn.Conv1d(ch + 1, w, 5, padding=2), nn.GELU(), residual_stack(w, (1, 2, 4)),
            nn.Conv1d(w, w, 4, stride=2, padding=1), residual_stack(w, (1, 2, 4, 8)),
            nn.Conv1d(w, w, 4, stride=2, padding=1), residual_stack(w, (1, 2, 4, 8, 16)),
            nn.GroupNorm(8, w), nn.Conv1d(w, cfg.latent, 1))
        self.predictor = nn.Sequential(
            nn.Conv1d(cfg.latent + 1, w, 3, padding=1), nn.GELU(),
            residual_stack(w, (1, 2, 4, 8, 16, 1)), nn.GroupNorm(8, w),
            nn.Conv1d(w, cfg.latent, 1))
        self.vicreg = VICReg(std_coeff=cfg.std_weight, cov_coeff=cfg.cov_weight)

    # ------------------------------------------------------------------ inference pieces
    @torch.no_grad()
    def fit_normalization(self, sound: torch.Tensor) -> None:
        """Set the per grid point statistics from training windows ``sound [B, N]``."""
        spec = self.frontend(sound)
        self.mean.copy_(spec.mean(0))
        self.std.copy_(spec.std(0).clamp_min(0.1))  # the envelope's zeroed points stay finite

    def spectrum(self, sound: torch.Tensor) -> torch.Tensor:
        """Standardised spectrum ``[B, channels, bins]`` of windows ``[B, N]``."""
        return (self.frontend(sound) - self.mean) / self.std

    def encode_spectrum(self, spec: torch.Tensor,
                        masked: torch.Tensor | None = None) -> torch.Tensor:
        """Latents ``[B, latent, positions]`` of ``spec [B, channels, bins]`` with the positions
        ``masked [B, positions]`` (bool) hidden from the encoder."""
        B = spec.shape[0]
        if masked is None:
            hide = torch.zeros(B, 1, spec.shape[-1], device=spec.device, dtype=spec.dtype)
        else:
            hide = masked.repeat_interleave(_DOWN, 1)[:, None].to(spec.dtype)
        x = torch.cat([spec * (1 - hide), hide], 1)
        return self.encoder(x.to(self.encoder[0].weight.dtype))

    def predict(self, spec: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """Predicted latents ``[B, latent, positions]`` of ``spec`` from its unmasked part."""
        z = self.encode_spectrum(spec, masked)
        return self.predictor(torch.cat([z, masked[:, None].to(z.dtype)], 1))

    def encode(self, sound: torch.Tensor) -> torch.Tensor:
        """Latents ``[B, positions, latent]`` of windows ``[B, N]`` (one per frequency cell)."""
        return self.encode_spectrum(self.spectrum(sound)).transpose(1, 2)

    def random_masks(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Bool ``[batch, positions]``: ``spans`` random spans of ``span`` positions each."""
        c, P = self.cfg, self.cfg.positions
        out = torch.zeros(batch, P, dtype=torch.bool)
        count = torch.randint(c.spans[0], c.spans[1] + 1, (batch,), generator=generator)
        for i in range(batch):
            for _ in range(int(count[i])):
                w = int(torch.randint(c.span[0], c.span[1] + 1, (1,), generator=generator))
                s = int(torch.randint(0, P - w + 1, (1,), generator=generator))
                out[i, s:s + w] = True
        return out

    @torch.no_grad()
    def position_errors(self, sound: torch.Tensor) -> torch.Tensor:
        """Surprise ``[B, positions]`` of windows ``[B, N]``: each position's squared latent
        prediction error (mean over channels) when its ``score_span`` is masked, averaged over
        two tilings staggered by half a span."""
        spec = self.spectrum(sound)
        z = self.encode_spectrum(spec).float()
        B, P, span = spec.shape[0], self.cfg.positions, self.cfg.score_span
        total = torch.zeros(B, P, device=spec.device)
        for shift in (0, span // 2):
            for start in range(-shift, P, span):
                a, b = max(start, 0), min(start + span, P)
                if b <= a:
                    continue
                m = torch.zeros(B, P, dtype=torch.bool, device=spec.device)
                m[:, a:b] = True
                err = (self.predict(spec, m).float() - z).pow(2).mean(1)
                total[:, a:b] += err[:, a:b]
        return total / 2

    # ------------------------------------------------------------------ training
    def forward(self, x: torch.Tensor, step: int = 0,
                generator: torch.Generator | None = None) -> LossOutput:
        if x.dim() != 2:
            raise ValueError(f"expected windows of sound [B, N], got {tuple(x.shape)}")
        spec = self.spectrum(x)
        masked = self.random_masks(x.shape[0], generator).to(x.device)
        z = self.encode_spectrum(spec).float()  # [B, D, P]
        pred = self.predict(spec, masked).float()
        sel = masked[:, None].expand_as(z)
        want = z if self.cfg.target_grad else z.detach()
        loss_pred = F.mse_loss(pred[sel], want[sel])
        reg = self.vicreg(z.transpose(1, 2).reshape(-1, self.cfg.latent))
        parts = {"pred": loss_pred.detach(), "std": reg.parts["vicreg_std"],
                 "cov": reg.parts["vicreg_cov"]}
        return LossOutput(loss=loss_pred + reg.loss, parts=parts,
                          embeddings=z.mean(-1).detach())

    def after_step(self, step: int, total_steps: int) -> None:
        """Nothing to update between steps (no EMA target)."""
