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
* with ``memory="stream"`` (recurrent predictor) the state instead runs through the whole
  clip: every frame is forecast from *all* frames before it, and open-loop rollouts start
  every few frames, so a memory longer than K frames is trained too;
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

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from monde.jepa.causal_video_config import CausalVideoConfig
from monde.jepa.model import LossOutput
from monde.jepa.regularizers import VICReg
from monde.nn.convgru import RecurrentConvPredictor
from monde.nn.convnet import ConvDecoder, ConvEncoder, HistoryConvPredictor

StreamState = tuple[torch.Tensor, torch.Tensor]
"""A ``memory="stream"`` predictor's state ``[1, hidden, h, w]`` and the map ``[1, C, h, w]`` it
saw last."""


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

    @property
    def streams(self) -> bool:
        """Whether the predictor's state runs through whole clips (``memory="stream"``)."""
        return self.cfg.memory == "stream"

    def _stream_forecasts(self, z: torch.Tensor, hs: torch.Tensor, start: int) -> torch.Tensor:
        """One-step forecasts ``[B, T-start, C, h, w]`` of frames start..T-1 from the states
        ``hs [B, T, hidden, h, w]`` of the stream ``z [B, T, C, h, w]``."""
        B, T = z.shape[:2]
        h = hs[:, start - 1:T - 1].flatten(0, 1)
        x = z[:, start - 1:T - 1].flatten(0, 1)
        return self.predictor.predict(h, x).reshape(B, T - start, *z.shape[2:])

    def _stream_rollouts(self, z: torch.Tensor, hs: torch.Tensor, starts: list[int],
                         steps: int) -> torch.Tensor:
        """Open-loop forecasts ``[B, S, steps, C, h, w]`` of frames s..s+steps-1 for each start
        s, from the state that has seen frames 0..s-1."""
        B, S = z.shape[0], len(starts)
        idx = torch.tensor(starts, device=z.device) - 1
        h = hs[:, idx].flatten(0, 1)
        x = z[:, idx].flatten(0, 1)
        return self.predictor.roll(h, x, steps).reshape(B, S, steps, *z.shape[2:])

    def forecast(self, z: torch.Tensor) -> torch.Tensor:
        """One-step forecasts ``[B, T-K, C_map, h, w]`` of frames K..T-1 from maps ``[B, T, …]``,
        each from the K encoded maps before it (teacher forcing) — or, with
        ``memory="stream"``, from every map before it."""
        K = self.cfg.context
        B, T = z.shape[:2]
        if self.streams:
            return self._stream_forecasts(z, self.predictor.states(z), K)
        hist = z.unfold(1, K, 1)[:, :T - K]  # [B, T-K, C, h, w, K]
        hist = hist.permute(0, 1, 5, 2, 3, 4).flatten(0, 1)  # [B*(T-K), K, C, h, w]
        return self.predictor(hist).reshape(B, T - K, *z.shape[2:])

    def rollout(self, z: torch.Tensor, steps: int) -> torch.Tensor:
        """``steps`` maps ``[B, steps, C_map, h, w]`` imagined from the first K of ``z [B, ≥K, …]``
        (with ``memory="stream"``: from all of ``z``), each forecast fed back as the
        predictor's next input."""
        if self.streams:
            return self.predictor.roll(self.predictor.states(z)[:, -1], z[:, -1], steps)
        return self.predictor.rollout(z[:, :self.cfg.context], steps)

    @torch.no_grad()
    def stream_states(self, z: torch.Tensor, start: StreamState | None = None) -> torch.Tensor:
        """States ``[1, N, hidden, h, w]`` of a ``memory="stream"`` predictor after each map of
        ``z [N, C_map, h, w]``; ``start``: the state and map before ``z[0]`` (None: the stream
        begins at ``z[0]``)."""
        h, prev = start if start is not None else (None, None)
        return self.predictor.states(z[None], h, prev)

    def advance(self, z: torch.Tensor, start: StreamState | None = None) -> StreamState:
        """The stream's ``(state, map)`` after the maps ``z [N, C_map, h, w]``: what
        :meth:`step_errors` needs as ``start`` to go on from there."""
        return self.stream_states(z, start)[:, -1], z[-1:]

    def step_errors(self, z: torch.Tensor, frames: torch.Tensor | None = None,
                    tokens: Literal["max", "mean"] = "max",
                    blur: int | None = None, start: StreamState | None = None) -> torch.Tensor:
        """Surprise of frames K..N-1 of one stream: ``[N-K]`` float.

        Args:
            z: latent maps ``[N, C_map, h, w]`` of N consecutive frames.
            frames: the frames K..N-1 themselves ``[N-K, C, H, W]`` in [0, 1] (pixel target only).
            tokens: how the per-cell errors of a frame combine, ``max`` or ``mean``.
            blur: spatial tolerance in cells (None: the model's ``surprise_blur``).
            start: ``memory="stream"`` only: the stream's state before ``z[0]``
                (:meth:`advance`), when ``z`` continues a longer video.
        """
        b = self.cfg.surprise_blur if blur is None else blur
        if start is not None and not self.streams:
            raise ValueError("start applies to memory='stream' models only")
        if self.cfg.surprise_horizon > 1:
            return self._horizon_errors(z, tokens, b, start)
        if self.streams:
            pred = self._stream_forecasts(z[None], self.stream_states(z, start),
                                          self.cfg.context)[0]
        else:
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

    def lead_errors(self, z: torch.Tensor, tokens: str = "max", blur: int = 0,
                    start: StreamState | None = None) -> torch.Tensor:
        """``[H, N-K]`` error of frame ``K + i`` forecast open-loop ``j + 1`` steps ahead (row
        ``j``, ``H = surprise_horizon``), NaN where the video starts too late for that lead.

        ``z``: latent maps ``[N, C_map, h, w]`` of N consecutive frames; ``start``: see
        :meth:`step_errors`.
        """
        K, H, N = self.cfg.context, self.cfg.surprise_horizon, len(z)
        starts = N - K  # a rollout from every context window that has a next frame
        if self.streams:  # the same forecasts, from the state that has seen the whole past
            roll = self._stream_rollouts(z[None], self.stream_states(z, start),
                                         list(range(K, N)), H)[0].float()
        else:
            hist = z.unfold(0, K, 1)[:starts].permute(0, 4, 1, 2, 3)  # [S, K, C, h, w]
            roll = self.rollout(hist, H).float()  # [S, H, C, h, w]
        want = z[K:].float()
        out = torch.full((H, starts), float("nan"))
        for j in range(min(H, starts)):  # lead j+1 from start s forecasts frame s + K + j
            out[j, j:] = _map_error(roll[:starts - j, j], want[j:], tokens, blur).cpu()
        return out

    def _horizon_errors(self, z: torch.Tensor, tokens: str, blur: int,
                        start: StreamState | None = None) -> torch.Tensor:
        """Per-frame mean over leads of ``lead_errors / step_scale``: ``[N-K]``."""
        H = self.cfg.surprise_horizon
        if len(self.cfg.step_scale) < H:
            from monde.errors import ConfigError
            raise ConfigError(f"surprise_horizon {H} needs step_scale calibrated for {H} leads "
                              f"(it has {len(self.cfg.step_scale)}); run calibrate_step_scale "
                              "or set model.surprise_horizon=1")
        scale = torch.tensor(self.cfg.step_scale[:H], dtype=torch.float32)[:, None]
        return (self.lead_errors(z, tokens, blur, start) / scale).nanmean(0)

    # ------------------------------------------------------------------ training
    def forward(self, x: torch.Tensor, step: int = 0,
                generator: torch.Generator | None = None) -> LossOutput:
        c = self.cfg
        if x.dim() != 5 or x.shape[1] <= c.context:
            raise ValueError(f"expected clips [B, T > {c.context}, C, H, W], got {tuple(x.shape)}")
        z = self.encode(x)  # [B, T, C_map, h, w]
        teacher, t_idx, roll, r_idx = (self._stream_forecasts_for_loss(z) if self.streams
                                       else self._window_forecasts_for_loss(z))
        parts: dict[str, torch.Tensor] = {}
        if c.pixels:
            # Cross-entropy on the decoder's logits, not a squared error after its sigmoid: on
            # frames that are mostly black background, MSE drives every pixel to black within
            # ~60 steps and the saturated sigmoid then passes almost no gradient (the twin was
            # stuck there for all 3,000 steps: decoded frames at most 0.012, docs/results.md).
            def bce(maps: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
                logits = self.decoder.logits(maps.flatten(0, -4)).float()
                return F.binary_cross_entropy_with_logits(logits, frames.flatten(0, -4).float())
            pred, rol = bce(teacher, x[:, t_idx]), bce(roll, x[:, r_idx])
            loss = pred + c.rollout_weight * rol
        else:
            want = z if c.target_grad else z.detach()
            pred = F.mse_loss(teacher, want[:, t_idx])
            rol = F.mse_loss(roll, want[:, r_idx])
            reg = self.vicreg(z.movedim(2, -1).reshape(-1, c.map_channels))
            loss = pred + c.rollout_weight * rol + reg.loss
            parts.update(std=reg.parts["vicreg_std"], cov=reg.parts["vicreg_cov"])
        parts.update(pred=pred.detach(), rollout=rol.detach())
        return LossOutput(loss=loss, parts=parts, embeddings=z[:, 0].flatten(1).detach().float())

    def _window_forecasts_for_loss(self, z: torch.Tensor):
        """Teacher-forced forecasts of frames K..T-1 from their K-frame windows, and the same
        frames rolled out from the first K; with the frame indices each is compared against."""
        K, T = self.cfg.context, z.shape[1]
        frames = torch.arange(K, T, device=z.device)
        return self.forecast(z), frames, self.rollout(z, T - K), frames

    def _stream_forecasts_for_loss(self, z: torch.Tensor):
        """``memory="stream"``: the state runs through the whole clip ``z [B, T, …]``; every frame
        from the third on is forecast from all frames before it (the first two give no motion
        yet), and ``rollout`` frames are rolled out open-loop from frames K, K +
        ``rollout_every``, … (as many as fit): ``[B, S, R, …]`` against indices ``[S, R]``."""
        c = self.cfg
        T, R = z.shape[1], c.rollout
        starts = list(range(c.context, T - R + 1, c.rollout_every))
        if not starts:
            raise ValueError(f"stream training needs clips of at least context + rollout = "
                             f"{c.context + R} frames, got {T}")
        hs = self.predictor.states(z)
        first = min(2, T - 1)
        teacher = self._stream_forecasts(z, hs, first)  # frames first..T-1
        roll = self._stream_rollouts(z, hs, starts, R)
        idx = torch.tensor(starts, device=z.device)[:, None] + torch.arange(R, device=z.device)
        return teacher, torch.arange(first, T, device=z.device), roll, idx

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
