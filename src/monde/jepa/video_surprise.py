"""Surprise of a video under a video JEPA: how badly the predictor foresees what comes next.

A window of ``W`` frames (the model's clip length) slides over the video. In each window the
context encoder sees the first ``C`` frames; the predictor forecasts the tokens of the rest,
and the error against what the target encoder makes of the real frames is the surprise
(V-JEPA's recipe for IntPhys). Every predicted frame collects the errors of the windows
that forecast it, combined by ``max`` or ``mean``.

The same code scores the pixel-predicting baseline (``objective.target=pixels``): its
"targets" are raw pixels, so its surprise is a pixel prediction error, scored identically.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from monde.errors import DataError
from monde.jepa.masks import CausalFuture, gather_tokens


@dataclass
class VideoSurprise:
    """Per-frame surprise of one video.

    Attributes:
        scores: float32 ``[T]``; NaN for the first frames, which no window forecasts.
        window_starts: int ``[Nw]`` first frame of every window scored.
        window_scores: float32 ``[Nw]`` mean error over each window's forecast tokens.
        window: frames per window; ``context``: frames each window is given.
    """

    scores: np.ndarray
    window_starts: np.ndarray
    window_scores: np.ndarray
    window: int
    context: int

    @property
    def peak(self) -> tuple[int, float]:
        """``(frame, score)`` of the highest surprise."""
        if not np.isfinite(self.scores).any():
            return -1, float("nan")
        i = int(np.nanargmax(self.scores))
        return i, float(self.scores[i])


@torch.no_grad()
def step_errors(jepa, clips: torch.Tensor, context_steps: int,
                tokens: Literal["mean", "max"] = "mean") -> torch.Tensor:
    """Prediction error of every forecast time step of a batch of windows.

    Args:
        jepa: a :class:`~monde.jepa.model.JEPA` on video (latent or pixel targets).
        clips: ``[B, W, C, H, W]`` float in [0, 1], ``W`` the model's clip length.
        context_steps: token time steps (of ``tubelet`` frames) given as context.
        tokens: how a time step's spatial tokens combine: ``mean`` or ``max`` of per-token
            mean absolute errors (``max`` singles out one small object that misbehaves).

    Returns:
        ``[B, S]`` errors of the ``S = T' - context_steps`` forecast token time steps.
    """
    tok = jepa.encoder.tokenize(clips)
    grid = tok.grid
    mp = CausalFuture(grid=grid, context_steps=context_steps)(clips.shape[0])
    ctx, tgt = mp.context_idx.to(clips.device), mp.target_idx.to(clips.device)
    target = gather_tokens(jepa.targets(clips, tok), tgt)
    # The online encoder is the one the predictor was trained against as context.
    z = jepa.encoder(tok, keep_idx=ctx)
    pred = jepa.predictor(z, ctx, tgt, tok.positions).float()
    err = (pred - target).abs().mean(-1)                    # [B, Nt]
    per_step = err.reshape(err.shape[0], grid[0] - context_steps, -1)
    return per_step.amax(-1) if tokens == "max" else per_step.mean(-1)


def video_windows(video: torch.Tensor, window: int, stride: int) -> Iterator[torch.Tensor]:
    """Windows ``[window, C, H, W]`` of ``video [T, C, H, W]`` every ``stride`` frames (views)."""
    for s in range(0, video.shape[0] - window + 1, stride):
        yield video[s:s + window]


def score_windows(jepa, windows: Iterable[torch.Tensor], *, context: int, stride: int,
                  aggregate: Literal["max", "mean"] = "max",
                  tokens: Literal["mean", "max"] = "mean", batch_size: int = 32) -> VideoSurprise:
    """Surprise from a stream of windows (window ``i`` starts at frame ``i * stride``).

    Windows are scored ``batch_size`` at a time, so a video of any length needs memory for
    one batch of windows plus one float per frame.

    Args:
        windows: uint8 or float ``[W, C, H, W]`` tensors, ``W`` the model's clip length.
        context: frames of context per window (a multiple of the tubelet).
    """
    enc = jepa.cfg.encoder
    device = next(jepa.parameters()).device
    window, tub = enc.frames, enc.tubelet
    c_steps = context // tub
    sums: list[float] = []
    peaks: list[float] = []
    counts: list[int] = []
    starts: list[int] = []
    win_scores: list[float] = []

    def flush(batch: list[torch.Tensor]) -> None:
        x = torch.stack(batch).to(device)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        err = step_errors(jepa, x, c_steps, tokens).cpu().numpy()     # [B, S]
        for e in err:
            s = len(starts) * stride
            starts.append(s)
            win_scores.append(float(e.mean()))
            end = s + window
            if len(sums) < end:
                grow = end - len(sums)
                sums.extend([0.0] * grow)
                peaks.extend([-np.inf] * grow)
                counts.extend([0] * grow)
            for j, v in enumerate(e):
                f0 = s + context + j * tub
                for f in range(f0, f0 + tub):
                    sums[f] += float(v)
                    peaks[f] = max(peaks[f], float(v))
                    counts[f] += 1

    batch: list[torch.Tensor] = []
    for w in windows:
        batch.append(torch.as_tensor(w))
        if len(batch) == batch_size:
            flush(batch)
            batch = []
    if batch:
        flush(batch)
    n = np.asarray(counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        agg = np.asarray(peaks) if aggregate == "max" else np.asarray(sums) / n
    scores = np.where(n > 0, agg, np.nan).astype(np.float32)
    return VideoSurprise(scores, np.asarray(starts, dtype=np.int64),
                         np.asarray(win_scores, dtype=np.float32), window, context)


def check_settings(enc, frames: int | None, context: int | None,
                   stride: int | None) -> tuple[int, int]:
    """Validated ``(context, stride)`` in frames for a model with encoder config ``enc``.

    Defaults: context = half the window (rounded down to whole tubelets), stride = one tubelet.
    ``frames`` (the video's length, when known) must cover one window.
    """
    window, tub = enc.frames, enc.tubelet
    context = (window // 2) // tub * tub if context is None else context
    stride = tub if stride is None else stride
    if context % tub or not tub <= context <= window - tub:
        raise DataError(f"context must be a multiple of the tubelet ({tub} frames) between "
                        f"{tub} and {window - tub}; got {context}")
    if stride < 1:
        raise DataError(f"stride must be >= 1 frame, got {stride}")
    if frames is not None and frames < window:
        raise DataError(f"the video has {frames} frames but this model scores windows of "
                        f"{window} frames; give a video of at least {window} frames")
    return context, stride
