"""Frame-causal video JEPA: a per-frame convolutional latent map and a predictor of the next one.

Where the masked video JEPA (:mod:`monde.jepa.model`) learns from tubes hidden anywhere in a
clip, this model is trained for the one question surprise asks: *given the last K frames, what
comes next?* Each frame becomes a latent map (``map_channels`` × h × w cells,
:class:`~monde.nn.convnet.ConvEncoder` with a spatial head); a convolutional predictor
(:class:`~monde.nn.convnet.HistoryConvPredictor`) maps the K most recent maps to the next —
or, with ``predictor="recurrent"``, a convolutional GRU state takes them in one at a time and
keeps running through a rollout (:class:`~monde.nn.convgru.RecurrentConvPredictor`).

Training on clips of ``context + rollout`` frames:

* **teacher forcing**: every frame after the first K is predicted from the K encoded frames
  before it; **rollout**: the same frames predicted from the first K alone, feeding
  predictions back in — both regressed onto the encoded frames (mean squared error in latent
  space, never pixels);
* **VICReg** variance + covariance against collapse, with every *cell's* channel vector as a
  sample (an empty background cell has nothing to vary with across clips; forcing it to would
  fill the map with noise the predictor cannot follow — the PushT finding, docs/results.md).

``target="pixels"`` is the generative baseline with the same encoder, predictor and budget:
the predicted map is decoded to the next frame (:class:`~monde.nn.convnet.ConvDecoder`) and
the loss is a pixel error; no regulariser is needed since pixels cannot collapse.

Surprise (:meth:`CausalVideoJEPA.step_errors`): the error of the one-step forecast of a frame,
per cell (optionally after averaging forecast and frame over neighbouring cells,
``surprise_blur``), reduced over the map by ``max`` (one small object: the cell where the
world broke) or ``mean``. With ``surprise_horizon`` H > 1 a frame is also forecast open-loop
from the contexts that ended 2 … H frames before it (:meth:`CausalVideoJEPA.lead_errors`), and
its surprise is the mean over leads of each error divided by that lead's median on training
clips (``step_scale``, measured at the end of training by :func:`calibrate_step_scale`): a
slow departure from the laws — a ball hovering instead of falling — adds up over the leads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from monde.jepa.model import LossOutput
from monde.jepa.regularizers import VICReg
from monde.nn.convgru import RecurrentConvPredictor
from monde.nn.convnet import ConvDecoder, ConvEncoder, HistoryConvPredictor, feature_side


@dataclass
class CausalVideoConfig:
    """Sizes and loss weights of a frame-causal video JEPA."""

    kind: str = "video-causal"
    """Marks the model family in saved configs (do not change)."""
    channels: int = 3
    """Image channels."""
    size: int = 64
    """Frame side in pixels (square frames)."""
    context: int = 8
    """Frames the predictor sees before the one it forecasts."""
    rollout: int = 3
    """Frames forecast per training clip (clips have ``context + rollout`` frames)."""
    widths: tuple[int, ...] = (32, 64, 64)
    """Channels of the encoder's stride-2 convolutions (3 of them: 8×8 cells at 64×64)."""
    map_channels: int = 16
    """Channels of a frame's latent map."""
    predictor_hidden: int = 64
    """Channels of the predictor's hidden convolutions."""
    predictor_layers: int = 5
    """Convolutions in the predictor (with ``predictor="recurrent"``: in its read-out head)."""
    predictor: str = "history"
    """``history``: the K most recent maps stacked as channels, one pass of convolutions
    (:class:`~monde.nn.convnet.HistoryConvPredictor`). ``recurrent``: a convolutional GRU
    state that takes in the K maps one at a time and runs on through a rollout
    (:class:`~monde.nn.convgru.RecurrentConvPredictor`), so a hidden object can be carried
    frame by frame."""
    target: str = "latent"
    """``latent`` (JEPA) or ``pixels`` (the generative baseline: decode, compare pixels)."""
    rollout_weight: float = 1.0
    """Weight of the free-running rollout loss (teacher forcing has weight 1)."""
    std_weight: float = 10.0
    """VICReg variance term (latent target only)."""
    cov_weight: float = 1.0
    """VICReg covariance term (latent target only)."""
    target_grad: bool = True
    """Let the forecast losses shape the encoded *target* maps as well as the context maps.
    False detaches the targets (stop-gradient, as in SimSiam / BYOL without the EMA): the
    encoder then cannot make a hard-to-forecast frame cheaper by encoding less of it (a ball
    coming out from behind an occluder); VICReg still holds every map against collapse."""
    surprise_blur: int = 0
    """Spatial tolerance of surprise, in cells: the forecast and the observed frame are both
    averaged over (2b+1)² neighbourhoods of cells (for the pixel target: the decoded and the
    observed frame's pixels averaged over the same areas) before they are compared, so that an object forecast a cell away from where it shows
    up is not scored as a violation. 0 compares cell by cell."""
    surprise_horizon: int = 1
    """Forecast lengths a frame's surprise averages over (latent target only): frame *t* is
    also forecast open-loop from the context that ended 2, 3 … ``surprise_horizon`` frames
    earlier, each error divided by ``step_scale`` (its typical size at that lead on training
    clips) before the average. A ball that hovers or falls upward differs from a free fall by
    a fraction of a cell per frame, but by several cells after a few frames."""
    step_scale: tuple[float, ...] = ()
    """Median per-frame error at each lead 1 … ``surprise_horizon`` on training clips, measured
    at the end of training (:func:`calibrate_step_scale`); empty before that."""

    @property
    def clip_frames(self) -> int:
        """Frames per training clip."""
        return self.context + self.rollout

    @property
    def map_side(self) -> int:
        return feature_side(self.size, len(self.widths))

    @property
    def pixels(self) -> bool:
        return self.target == "pixels"

    def validate(self) -> None:
        """Raise :class:`~monde.errors.ConfigError` on settings that cannot train."""
        from monde.errors import ConfigError

        if self.target not in ("latent", "pixels"):
            raise ConfigError(f"model.target must be 'latent' or 'pixels', got {self.target!r}")
        if self.context < 1 or self.rollout < 1:
            raise ConfigError(f"model.context and model.rollout must be >= 1, got "
                              f"{self.context} and {self.rollout}")
        if self.size % 2 ** len(self.widths):
            raise ConfigError(f"model.size ({self.size}) must be a multiple of "
                              f"{2 ** len(self.widths)} (one halving per entry of model.widths)")
        if self.predictor_layers < 2:
            raise ConfigError("model.predictor_layers must be >= 2")
        if self.predictor not in ("history", "recurrent"):
            raise ConfigError(f"model.predictor must be 'history' or 'recurrent', got "
                              f"{self.predictor!r}")
        if self.surprise_blur < 0:
            raise ConfigError(f"model.surprise_blur must be >= 0, got {self.surprise_blur}")
        if self.surprise_horizon < 1 or (self.surprise_horizon > 1 and self.pixels):
            raise ConfigError(f"model.surprise_horizon must be >= 1 (and 1 for the pixel "
                              f"target), got {self.surprise_horizon}")


def _blur(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Box average of ``x [N, C, h, w]`` over (2r+1)² neighbourhoods (edges: the part inside)."""
    return F.avg_pool2d(x, 2 * radius + 1, 1, radius, count_include_pad=False)


def _map_error(seen: torch.Tensor, want: torch.Tensor, tokens: str, blur: int) -> torch.Tensor:
    """Error ``[N]`` between forecast and encoded maps ``[N, C, h, w]``: squared difference
    summed over channels per cell (after a ``blur``-cell box average of both), then ``max`` or
    ``mean`` over the cells."""
    if blur:
        seen, want = _blur(seen, blur), _blur(want, blur)
    err = (seen - want).pow(2).sum(1).flatten(1)  # [N, h*w]
    return err.amax(1) if tokens == "max" else err.mean(1)


class CausalVideoJEPA(nn.Module):
    """Encoder, next-map predictor (and, for ``target="pixels"``, a decoder) with the loss.

    ``forward(x)`` takes clips ``[B, T, C, H, W]`` in [0, 1] with ``T >= context + 1``.
    """

    def __init__(self, cfg: CausalVideoConfig, seed: int = 0):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        torch.manual_seed(seed)
        self.encoder = ConvEncoder(cfg.channels, cfg.size, 0, cfg.widths, head="spatial",
                                   map_channels=cfg.map_channels)
        kind = HistoryConvPredictor if cfg.predictor == "history" else RecurrentConvPredictor
        self.predictor = kind(cfg.map_channels, cfg.map_side, cfg.context,
                              cfg.predictor_hidden, cfg.predictor_layers)
        self.decoder = (ConvDecoder(cfg.map_channels, cfg.channels, cfg.widths)
                        if cfg.pixels else None)
        self.vicreg = VICReg(std_coeff=cfg.std_weight, cov_coeff=cfg.cov_weight)

    @property
    def pixels(self) -> bool:
        return self.cfg.pixels

    # ------------------------------------------------------------------ inference pieces
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Latent maps ``[..., C_map, h, w]`` of frames ``[..., C, H, W]`` (float in [0, 1])."""
        lead = frames.shape[:-3]
        z = self.encoder(frames.reshape(-1, *frames.shape[-3:]))
        c, s = self.cfg.map_channels, self.cfg.map_side
        return z.reshape(*lead, c, s, s)

    def forecast(self, z: torch.Tensor) -> torch.Tensor:
        """One-step forecasts ``[B, T-K, C_map, h, w]`` of frames K..T-1 from maps ``[B, T, …]``,
        each from the K encoded maps before it (teacher forcing)."""
        K = self.cfg.context
        B, T = z.shape[:2]
        hist = z.unfold(1, K, 1)[:, :T - K]  # [B, T-K, C, h, w, K]
        hist = hist.permute(0, 1, 5, 2, 3, 4).flatten(0, 1)  # [B*(T-K), K, C, h, w]
        return self.predictor(hist).reshape(B, T - K, *z.shape[2:])

    def rollout(self, z: torch.Tensor, steps: int) -> torch.Tensor:
        """``steps`` maps ``[B, steps, C_map, h, w]`` imagined from the first K of ``z [B, ≥K, …]``,
        each forecast fed back as the predictor's next input."""
        return self.predictor.rollout(z[:, :self.cfg.context], steps)

    @torch.no_grad()
    def step_errors(self, z: torch.Tensor, frames: torch.Tensor | None = None,
                    tokens: Literal["max", "mean"] = "max",
                    blur: int | None = None) -> torch.Tensor:
        """Surprise of frames K..N-1 of one stream: ``[N-K]`` float.

        Args:
            z: latent maps ``[N, C_map, h, w]`` of N consecutive frames.
            frames: the frames K..N-1 themselves ``[N-K, C, H, W]`` in [0, 1] (pixel target only).
            tokens: how the per-cell errors of a frame combine, ``max`` or ``mean``.
            blur: spatial tolerance in cells (None: the model's ``surprise_blur``).
        """
        b = self.cfg.surprise_blur if blur is None else blur
        if self.cfg.surprise_horizon > 1:
            return self._horizon_errors(z, tokens, b)
        pred = self.forecast(z[None])[0]  # [N-K, C, h, w]
        if self.pixels:
            if frames is None:
                raise ValueError("a pixel-target model needs the frames to compare against")
            cell = self.cfg.size // self.cfg.map_side
            seen, want = self.decoder(pred.float()), frames.float()
            if b:  # the same neighbourhoods as the latent maps: cell means, then box average
                seen, want = (_blur(F.avg_pool2d(x, cell), b) for x in (seen, want))
                err = (seen - want).pow(2).sum(1)  # [N-K, h, w]
            else:
                err = F.avg_pool2d((seen - want).pow(2).sum(1, keepdim=True),
                                   cell)[:, 0]  # [N-K, h, w]: mean pixel error per cell
        else:
            return _map_error(pred.float(), z[self.cfg.context:].float(), tokens, b)
        err = err.flatten(1)
        return err.amax(1) if tokens == "max" else err.mean(1)

    def lead_errors(self, z: torch.Tensor, tokens: str = "max", blur: int = 0) -> torch.Tensor:
        """``[H, N-K]`` error of frame ``K + i`` forecast open-loop ``j + 1`` steps ahead (row
        ``j``, ``H = surprise_horizon``), NaN where the video starts too late for that lead.

        ``z``: latent maps ``[N, C_map, h, w]`` of N consecutive frames.
        """
        K, H, N = self.cfg.context, self.cfg.surprise_horizon, len(z)
        starts = N - K  # a rollout from every context window that has a next frame
        hist = z.unfold(0, K, 1)[:starts].permute(0, 4, 1, 2, 3)  # [S, K, C, h, w]
        roll = self.rollout(hist, H).float()  # [S, H, C, h, w]
        want = z[K:].float()
        out = torch.full((H, starts), float("nan"))
        for j in range(min(H, starts)):  # lead j+1 from start s forecasts frame s + K + j
            out[j, j:] = _map_error(roll[:starts - j, j], want[j:], tokens, blur).cpu()
        return out

    def _horizon_errors(self, z: torch.Tensor, tokens: str, blur: int) -> torch.Tensor:
        """Per-frame mean over leads of ``lead_errors / step_scale``: ``[N-K]``."""
        H = self.cfg.surprise_horizon
        if len(self.cfg.step_scale) < H:
            from monde.errors import ConfigError
            raise ConfigError(f"surprise_horizon {H} needs step_scale calibrated for {H} leads "
                              f"(it has {len(self.cfg.step_scale)}); run calibrate_step_scale "
                              "or set model.surprise_horizon=1")
        scale = torch.tensor(self.cfg.step_scale[:H], dtype=torch.float32)[:, None]
        return (self.lead_errors(z, tokens, blur) / scale).nanmean(0)

    # ------------------------------------------------------------------ training
    def forward(self, x: torch.Tensor, step: int = 0,
                generator: torch.Generator | None = None) -> LossOutput:
        c = self.cfg
        if x.dim() != 5 or x.shape[1] <= c.context:
            raise ValueError(f"expected clips [B, T > {c.context}, C, H, W], got {tuple(x.shape)}")
        z = self.encode(x)  # [B, T, C_map, h, w]
        n = x.shape[1] - c.context
        teacher, roll = self.forecast(z), self.rollout(z, n)
        parts: dict[str, torch.Tensor] = {}
        if c.pixels:
            # Cross-entropy on the decoder's logits, not a squared error after its sigmoid: on
            # frames that are mostly black background, MSE drives every pixel to black within
            # ~60 steps and the saturated sigmoid then passes almost no gradient (the twin was
            # stuck there for all 3,000 steps: decoded frames at most 0.012, docs/results.md).
            frames = x[:, c.context:].flatten(0, 1)
            pred = F.binary_cross_entropy_with_logits(
                self.decoder.logits(teacher.flatten(0, 1)).float(), frames.float())
            rol = F.binary_cross_entropy_with_logits(
                self.decoder.logits(roll.flatten(0, 1)).float(), frames.float())
            loss = pred + c.rollout_weight * rol
        else:
            want = z[:, c.context:] if c.target_grad else z[:, c.context:].detach()
            pred = F.mse_loss(teacher, want)
            rol = F.mse_loss(roll, want)
            reg = self.vicreg(z.movedim(2, -1).reshape(-1, c.map_channels))
            loss = pred + c.rollout_weight * rol + reg.loss
            parts.update(std=reg.parts["vicreg_std"], cov=reg.parts["vicreg_cov"])
        parts.update(pred=pred.detach(), rollout=rol.detach())
        return LossOutput(loss=loss, parts=parts, embeddings=z[:, 0].flatten(1).detach().float())

    def after_step(self, step: int, total_steps: int) -> None:
        """Nothing to update between steps (no EMA target)."""


@torch.no_grad()
def calibrate_step_scale(net: CausalVideoJEPA, clips: torch.Tensor) -> tuple[float, ...]:
    """Median per-frame error at each lead 1 … ``surprise_horizon`` over ``clips [B, T, C, H,
    W]`` (float in [0, 1], normal footage, ``T >= context + surprise_horizon``), measured the
    way surprise is (the model's blur, ``max`` over cells)."""
    K, H = net.cfg.context, net.cfg.surprise_horizon
    if clips.shape[1] < K + H:
        raise ValueError(f"calibration clips need at least {K + H} frames, got {clips.shape[1]}")
    z = net.encode(clips)
    errs = torch.cat([net.lead_errors(zi, "max", net.cfg.surprise_blur) for zi in z], 1)
    return tuple(round(float(e[~e.isnan()].median()), 6) for e in errs)
