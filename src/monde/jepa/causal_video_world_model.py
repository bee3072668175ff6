"""``CausalVideoWorldModel``: a trained frame-causal video JEPA, as ``monde.load`` returns it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from monde.errors import ConfigError, DataError
from monde.jepa.causal_video import CausalVideoConfig, CausalVideoJEPA
from monde.jepa.no_actions import WithoutActions
from monde.jepa.video_surprise import VideoSurprise

_CHUNK = 64  # frames encoded per batch while streaming a video


class CausalVideoWorldModel(WithoutActions):
    """Encode frames into latent maps and measure surprise frame by frame.

    Every frame after the first ``context`` is forecast once, from the ``context`` frames
    before it (a ``memory="stream"`` model: from every frame before it, its state carried from
    chunk to chunk of a long video); its surprise is the forecast's error (see
    :mod:`monde.jepa.causal_video`).
    """

    modality = "video"

    def __init__(self, net: CausalVideoJEPA, meta: dict | None = None):
        self.jepa = net.eval()
        self.meta = meta or {}

    @property
    def config(self) -> CausalVideoConfig:
        return self.jepa.cfg

    @property
    def target(self) -> str:
        return self.config.target

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of the frames the model takes."""
        c = self.config
        return c.channels, c.size, c.size

    @property
    def min_frames(self) -> int:
        """Shortest video that gets a score: the context plus one forecast frame."""
        return self.config.context + 1

    def _device(self) -> torch.device:
        return next(self.jepa.parameters()).device

    def _float(self, frames) -> torch.Tensor:
        x = torch.as_tensor(frames)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return x.to(self._device())

    @torch.no_grad()
    def encode(self, obs, *, pool: bool = False) -> torch.Tensor:
        """Latents of frames.

        Args:
            obs: video ``[B, T, C, H, W]`` or ``[T, C, H, W]`` (uint8 or float in [0, 1]).
            pool: average each frame's map over its cells.

        Returns:
            ``[B, T, D]`` flattened latent maps (``D = map_channels·h·w``), or ``[B, T,
            map_channels]`` when ``pool``.
        """
        x = self._float(obs)
        if x.dim() == 4:
            x = x[None]
        if x.dim() != 5 or tuple(x.shape[2:]) != self.frame_shape:
            raise DataError(f"this model encodes video [B, T, {', '.join(map(str, self.frame_shape))}]"
                            f"; got shape {tuple(x.shape)}")
        z = self.jepa.encode(x)
        return z.mean((-2, -1)) if pool else z.flatten(2)

    @torch.no_grad()
    def surprise(self, video, *, context: int | None = None, stride: int | None = None,
                 aggregate: str = "max", tokens: str = "max", blur: int | None = None,
                 batch_size: int = _CHUNK) -> VideoSurprise:
        """Per-frame surprise of a video.

        Args:
            video: ``[T, C, H, W]`` frames (uint8 or float in [0, 1]) at the model's
                resolution, or the path of a video file (decoded as a stream, resized).
            context: must be None or the model's own ``context``: its predictor takes a
                fixed number of past frames.
            stride: not used (every frame is forecast, once); must be None.
            aggregate: accepted for the windowed models' interface (``max`` / ``mean``); one
                forecast per frame leaves nothing to aggregate.
            tokens: how a frame's cells combine: ``max`` (default) or ``mean``.
            blur: spatial tolerance in cells (forecast and frame averaged over (2b+1)²
                neighbouring cells before the comparison); None: the model's
                ``surprise_blur``.
            batch_size: frames encoded per batch.

        Returns:
            :class:`~monde.jepa.video_surprise.VideoSurprise` with ``scores [T]`` (NaN for
            the first ``context`` frames); window ``i`` is the ``context + 1`` frames ending
            at the forecast frame ``context + i``.
        """
        K = self.config.context
        if context is not None and context != K:
            raise ConfigError(f"this model forecasts each frame from the {K} frames before it; "
                              f"context must be {K} (or left out), got {context}")
        if stride is not None:
            raise ConfigError("this model forecasts every frame once; stride does not apply "
                              "(leave it out)")
        if aggregate not in ("max", "mean") or tokens not in ("max", "mean"):
            raise ConfigError(f"aggregate and tokens must be 'max' or 'mean'; got "
                              f"{aggregate!r}, {tokens!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if blur is not None and blur < 0:
            raise ConfigError(f"blur must be >= 0 cells, got {blur}")
        scores: list[np.ndarray] = []
        hist = None
        carry = None  # a streaming model's (state, map) before hist's first frame
        n = 0
        # Frames kept from the previous chunk: the context, and for a model that also scores
        # longer leads the frames its earlier contexts start from.
        keep = K + self.config.surprise_horizon - 1
        for chunk in self._chunks(video, batch_size):
            x = self._float(chunk)
            z = self.jepa.encode(x)
            n += len(x)
            allz = z if hist is None else torch.cat([hist, z])
            if len(allz) > K:
                # frames whose K predecessors are known; only this chunk's are new
                new = min(len(z), len(allz) - K)
                frames = x[-new:] if self.jepa.pixels else None
                err = self.jepa.step_errors(allz, frames, tokens, blur, start=carry)[-new:]
                scores.append(err.float().cpu().numpy())
            drop = len(allz) - keep
            if self.jepa.streams and drop > 0:
                carry = self.jepa.advance(allz[:drop], carry)
            hist = allz[-keep:]
        if n <= K:
            raise DataError(f"the video has {n} frames but this model needs at "
                            f"least {K + 1} (its context of {K} plus one to forecast)")
        out = np.full(n, np.nan, np.float32)
        out[K:] = np.concatenate(scores)
        starts = np.arange(n - K, dtype=np.int64)
        return VideoSurprise(out, starts, out[K:].copy(), K + 1, K)

    def _chunks(self, video, size: int) -> Iterator[torch.Tensor]:
        """Consecutive frames ``[n ≤ size, C, H, W]`` of a tensor or a video file."""
        shape = self.frame_shape
        if isinstance(video, (str, Path)):
            from monde.data.video import iter_clips

            buf: list[torch.Tensor] = []
            for clip in iter_clips(video, clip_len=1, size=shape[1:]):
                buf.append(clip[0])
                if len(buf) == size:
                    yield torch.stack(buf)
                    buf = []
            if buf:
                yield torch.stack(buf)
            return
        x = torch.as_tensor(video)
        if x.dim() != 4 or tuple(x.shape[1:]) != shape:
            raise DataError(f"surprise takes one video [T, {', '.join(map(str, shape))}] (the "
                            f"model's resolution); got {tuple(x.shape)}. Pass a file path to "
                            "have it resized.")
        yield from x.split(size)

    def to(self, device) -> CausalVideoWorldModel:
        self.jepa.to(device)
        return self

    def __repr__(self) -> str:
        c = self.config
        return (f"CausalVideoWorldModel({c.size}x{c.size}, context={c.context}, "
                f"map={c.map_channels}x{c.map_side}x{c.map_side}, target={c.target}, "
                f"recipe={self.meta.get('recipe')!r}, steps={self.meta.get('steps')})")
