"""Audio-visual JEPA: one predictor over the latents of sight and sound, frame by frame.

Each video frame becomes a latent vector (a small CNN, :class:`~monde.nn.convnet.ConvEncoder`)
and so does the sound of each frame interval (its log power spectrum through an MLP). The two
sequences — ``T`` video tokens and ``T`` audio tokens, each tagged with its modality and its
time (1-D rotary positions) — go into one transformer, the **predictor**, with some tokens
replaced by a mask token; it predicts the latents of the hidden ones. Masks, drawn per clip:

* **sound from sight** (``mask_weights[0]``): every audio token hidden — what should this clip
  sound like, given what it shows?
* **sight from sound** (``mask_weights[1]``): every video token hidden;
* **a span of both** (``mask_weights[2]``): a block of ``T/4 … T/2`` frame times hidden in
  both modalities — fill a gap from its surroundings.

Loss: mean squared error at the hidden tokens, in latent space. Targets (``anti_collapse``):
``ema`` (default) — momentum copies of the two encoders, outputs layer-normed, as in I-JEPA;
``vicreg`` — the encoders' own outputs with VICReg variance and covariance on each modality's
latents. VICReg fails on this world (docs/results.md): most audio chunks are silence over
noise, and forcing every latent dimension to vary across chunks makes the encoder spend them
on the noise, which nothing can predict. Nothing is ever regressed onto pixels or samples: the
tone's phase and the background noise are unpredictable from the video, and the EMA encoders
are free to leave them out.

Surprise (:meth:`AudioVisualJEPA.sound_errors`): hide the whole soundtrack, predict it from
the video, and measure each frame's error — a soundtrack that does not belong to the video
(another clip's, or this one out of step) is surprising.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from monde.errors import ConfigError, DataError
from monde.jepa.ema import ema_update, momentum_schedule
from monde.jepa.model import LossOutput
from monde.jepa.regularizers import VICReg
from monde.nn import Transformer
from monde.nn.convnet import ConvEncoder, mlp


@dataclass
class AudioVisualConfig:
    """Sizes, masks and loss weights of an audio-visual JEPA."""

    kind: str = "audio-visual"
    """Marks the model family in saved configs (do not change)."""
    frames: int = 16
    """Video frames (and audio chunks) per clip."""
    size: int = 32
    """Frame side in pixels (square RGB frames)."""
    samples_per_frame: int = 320
    """Audio samples per frame interval (``sample_rate × dt``)."""
    sample_rate: int = 8000
    """Audio rate the model was trained at (sound at another rate is refused)."""
    latent_dim: int = 64
    """Size of one frame's (or one chunk's) latent."""
    widths: tuple[int, ...] = (16, 32, 64)
    """Channels of the video encoder's stride-2 convolutions."""
    audio_hidden: int = 128
    """Width of the audio encoder's MLP."""
    dynamic_range: float = 40.0
    """Decibels of the audio spectrum kept below each clip's loudest bin (quieter bins are
    raised to that floor, as ``top_db`` does in common spectrogram tools): the log of
    background noise fluctuates by ±6 dB per bin whatever its level, and without a floor
    those fluctuations are most of what a quiet chunk's spectrum says."""
    dim: int = 128
    """Predictor width."""
    depth: int = 3
    """Predictor blocks."""
    heads: int = 4
    """Predictor attention heads."""
    mask_weights: tuple[float, float, float] = (0.5, 0.25, 0.25)
    """How often each mask is drawn: (sound from sight, sight from sound, span of both)."""
    anti_collapse: Literal["ema", "vicreg"] = "ema"
    """``ema``: targets from momentum copies of the encoders, layer-normed (I-JEPA's
    recipe); ``vicreg``: targets from the encoders themselves, kept spread by VICReg."""
    ema_start: float = 0.996
    """EMA momentum at step 0 (rises linearly to 1 at the last step)."""
    std_weight: float = 10.0
    """VICReg variance term (``vicreg`` only)."""
    cov_weight: float = 1.0
    """VICReg covariance term (``vicreg`` only)."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` for settings the model cannot honour."""
        if self.frames < 2 or self.samples_per_frame < 16 or self.latent_dim < 2:
            raise ConfigError("model.frames must be ≥ 2, samples_per_frame ≥ 16, latent_dim ≥ 2")
        if self.size < 2 ** len(self.widths):
            raise ConfigError(f"model.size ({self.size}) is too small for {len(self.widths)} "
                              "stride-2 convolutions")
        if self.dim % self.heads or (self.dim // self.heads) % 2:
            raise ConfigError("model.dim must be divisible by heads, with an even head size")
        if self.anti_collapse not in ("ema", "vicreg"):
            raise ConfigError(f"model.anti_collapse must be ema or vicreg, got {self.anti_collapse!r}")
        w = self.mask_weights
        if len(w) != 3 or min(w) < 0 or sum(w) <= 0:
            raise ConfigError(f"model.mask_weights must be 3 non-negative weights, got {w}")


class AudioChunkEncoder(nn.Module):
    """Sound ``[B, T · spf]`` → latents ``[B, T, D]``: each chunk's log power spectrum, MLP."""

    def __init__(self, samples_per_frame: int, hidden: int, out_dim: int,
                 dynamic_range: float = 40.0):
        super().__init__()
        self.spf, self.dynamic_range = samples_per_frame, dynamic_range
        self.register_buffer("window", torch.hann_window(samples_per_frame), persistent=False)
        bins = samples_per_frame // 2 + 1
        self.norm = nn.LayerNorm(bins)
        self.net = mlp(bins, hidden, out_dim, 3)

    def spectrum(self, audio: torch.Tensor) -> torch.Tensor:
        """Log power spectrum of every chunk, floored ``dynamic_range`` dB below the clip's
        loudest bin, in units of 10 dB: ``[B, T · spf]`` → ``[B, T, spf/2 + 1]``."""
        b, n = audio.shape
        chunks = audio.float().view(b, n // self.spf, self.spf) * self.window
        power = torch.fft.rfft(chunks, dim=-1).abs().pow(2)
        level = torch.log10(power + 1e-12)
        floor = level.amax(dim=(1, 2), keepdim=True) - self.dynamic_range / 10
        return torch.maximum(level, floor)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.net(self.norm(self.spectrum(audio)))


class AudioVisualJEPA(nn.Module):
    """Video and audio encoders and one cross-modal predictor, with the training objective.

    ``forward(batch)`` takes ``{"video": [B, T, 3, H, W] uint8 or float in [0, 1], "audio":
    [B, T · spf] float}``.
    """

    def __init__(self, cfg: AudioVisualConfig, seed: int = 0):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        torch.manual_seed(seed)
        d = cfg.latent_dim
        self.video_encoder = ConvEncoder(3, cfg.size, d, cfg.widths)
        self.audio_encoder = AudioChunkEncoder(cfg.samples_per_frame, cfg.audio_hidden, d,
                                                 cfg.dynamic_range)
        self.embed = nn.Linear(d, cfg.dim)
        self.modality = nn.Parameter(torch.zeros(2, cfg.dim))
        self.mask_token = nn.Parameter(torch.zeros(cfg.dim))
        nn.init.trunc_normal_(self.modality, std=0.02)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.predictor = Transformer(cfg.dim, cfg.depth, cfg.heads, pos_axes=1)
        self.head = nn.Linear(cfg.dim, d)
        self.vicreg = VICReg(std_coeff=cfg.std_weight, cov_coeff=cfg.cov_weight)
        if cfg.anti_collapse == "ema":
            self.target_video = copy.deepcopy(self.video_encoder).requires_grad_(False)
            self.target_audio = copy.deepcopy(self.audio_encoder).requires_grad_(False)
        positions = torch.arange(cfg.frames, dtype=torch.float32)
        self.register_buffer("positions", torch.cat([positions, positions])[:, None],
                             persistent=False)

    # ------------------------------------------------------------------ encoders
    def check(self, video: torch.Tensor, audio: torch.Tensor) -> None:
        """Clear errors for inputs of the wrong shape or with non-finite sound (rather than a
        reshape failure deep in, or NaN latents)."""
        c = self.cfg
        want_v = (c.frames, 3, c.size, c.size)
        if video.dim() != 5 or tuple(video.shape[1:]) != want_v:
            raise DataError(f"video must be [B, {c.frames}, 3, {c.size}, {c.size}], got "
                              f"{list(video.shape)}")
        n = c.frames * c.samples_per_frame
        if audio.dim() != 2 or audio.shape[1] != n or audio.shape[0] != video.shape[0]:
            raise DataError(f"audio must be [B, {n}] ({c.frames} frames × "
                            f"{c.samples_per_frame} samples at {c.sample_rate} Hz) for B = "
                            f"{video.shape[0]} clips, got {list(audio.shape)}")
        if not torch.isfinite(audio).all():
            raise DataError("audio holds NaN or infinite samples; clean or drop those clips")

    @staticmethod
    def _per_frame(encoder: nn.Module, video: torch.Tensor) -> torch.Tensor:
        """``encoder`` on every frame: ``[B, T, 3, H, W]`` (uint8 or float in [0, 1]) → ``[B, T, D]``."""
        b, t = video.shape[:2]
        x = video.float() / 255.0 if video.dtype == torch.uint8 else video.float()
        return encoder(x.flatten(0, 1)).view(b, t, -1)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """``[B, T, 3, H, W]`` → ``[B, T, D]``."""
        return self._per_frame(self.video_encoder, video)

    def encode_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """``[B, T · spf]`` → ``[B, T, D]``."""
        return self.audio_encoder(audio)

    @torch.no_grad()
    def targets(self, video: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the predictor is regressed onto under ``ema``, ``[B, T, D]`` each: the EMA
        encoders' latents of video and audio, layer-normed."""
        zv, za = self._per_frame(self.target_video, video), self.target_audio(audio)
        return F.layer_norm(zv.float(), zv.shape[-1:]), F.layer_norm(za.float(), za.shape[-1:])

    # ------------------------------------------------------------------ predictor
    def predict(self, zv: torch.Tensor, za: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """Predicted latents ``[B, 2T, D]`` (video tokens first) from latents ``zv, za [B, T, D]``
        with ``hidden [B, 2T]`` (True: replaced by the mask token). Only hidden rows are meaningful."""
        t = zv.shape[1]
        tokens = self.embed(torch.cat([zv, za], dim=1))                         # [B, 2T, dim]
        tokens = torch.where(hidden[..., None], self.mask_token.to(tokens.dtype), tokens)
        kind = torch.cat([self.modality[:1].expand(t, -1), self.modality[1:].expand(t, -1)])
        return self.head(self.predictor(tokens + kind.to(tokens.dtype), self.positions))

    def draw_masks(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[B, 2T]`` bool masks, one of the three families per clip (see the module doc)."""
        c, t = self.cfg, self.cfg.frames
        dev = self.positions.device
        w = torch.tensor(c.mask_weights, dtype=torch.float32)
        family = torch.multinomial(w, batch, replacement=True, generator=generator).to(dev)
        hidden = torch.zeros(batch, 2 * t, dtype=torch.bool, device=dev)
        hidden[family == 0, t:] = True
        hidden[family == 1, :t] = True
        span = family == 2
        if span.any():
            k = int(span.sum())
            length = torch.randint(max(1, t // 4), max(2, t // 2) + 1, (k,), generator=generator)
            start = (torch.rand(k, generator=generator) * (t - length + 1)).long()
            time = torch.arange(t)
            block = ((time >= start[:, None]) & (time < (start + length)[:, None])).to(dev)
            hidden[span] = torch.cat([block, block], dim=1)
        return hidden

    # ------------------------------------------------------------------ training
    def forward(self, batch: dict[str, torch.Tensor], step: int = 0,
                generator: torch.Generator | None = None) -> LossOutput:
        video, audio = batch["video"], batch["audio"]
        self.check(video, audio)
        zv, za = self.encode_video(video), self.encode_audio(audio)
        hidden = self.draw_masks(video.shape[0], generator)
        pred = self.predict(zv, za, hidden)
        ema = self.cfg.anti_collapse == "ema"
        tv, ta = self.targets(video, audio) if ema else (zv, za)
        err = (pred.float() - torch.cat([tv, ta], dim=1).float()).pow(2).mean(-1)  # [B, 2T]
        loss = loss_pred = (err * hidden).sum() / hidden.sum().clamp_min(1)
        t = self.cfg.frames
        sound = hidden[:, t:].all(1)
        parts = {"pred": loss_pred.detach(),
                 "sound_from_sight": (err[sound, t:].mean().detach() if sound.any()
                                      else torch.zeros(()))}
        if not ema:
            reg_v, reg_a = self.vicreg(zv), self.vicreg(za)
            loss = loss + reg_v.loss + reg_a.loss
            parts["std"] = (reg_v.parts["vicreg_std"] + reg_a.parts["vicreg_std"]) / 2
            parts["cov"] = (reg_v.parts["vicreg_cov"] + reg_a.parts["vicreg_cov"]) / 2
        return LossOutput(loss=loss, parts=parts,
                          embeddings=torch.cat([tv, ta], -1).mean(1).detach().float())

    def after_step(self, step: int, total_steps: int) -> None:
        """Move the EMA target encoders towards the online ones (``ema`` only)."""
        if self.cfg.anti_collapse == "ema":
            m = momentum_schedule(step, total_steps, self.cfg.ema_start)
            ema_update(self.target_video, self.video_encoder, m)
            ema_update(self.target_audio, self.audio_encoder, m)

    # ------------------------------------------------------------------ surprise
    @torch.no_grad()
    def sound_from_sight(self, video: torch.Tensor,
                         audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(predicted, actual)`` audio latents ``[B, T, D]`` each: every chunk's latent
        predicted from the whole video alone (the soundtrack hidden), and the latent the
        soundtrack itself encodes to (the EMA target under ``ema``)."""
        self.check(video, audio)
        zv = self.encode_video(video)
        # Every audio token is hidden, so only the target side of the sound is needed.
        if self.cfg.anti_collapse == "ema":
            za = F.layer_norm(self.target_audio(audio).float(), (self.cfg.latent_dim,))
        else:
            za = self.encode_audio(audio)
        t = self.cfg.frames
        hidden = torch.zeros(video.shape[0], 2 * t, dtype=torch.bool, device=zv.device)
        hidden[:, t:] = True
        return self.predict(zv, za, hidden)[:, t:].float(), za.float()

    @torch.no_grad()
    def sound_errors(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` error of each audio chunk's latent predicted from the whole video alone."""
        pred, actual = self.sound_from_sight(video, audio)
        return (pred - actual).pow(2).mean(-1)
