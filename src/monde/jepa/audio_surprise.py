"""Surprise of a sound under an audio JEPA: how badly the second half of each window is foreseen.

Windows of the model's length slide over the sound. In each, the context encoder hears the
first half of the spectrogram's time patches; the predictor forecasts the latents of the rest,
and the error against the target encoder's latents of the real sound is the window's surprise
(the same recipe as for video). A sound longer than memory streams window by window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from monde.errors import DataError
from monde.jepa.masks import CausalFuture, gather_tokens


@dataclass
class AudioSurprise:
    """Surprise per window of one sound.

    Attributes:
        times: float ``[W]`` start of every window, seconds.
        scores: float32 ``[W]`` mean forecast error of each window.
        window: window length, seconds.
    """

    times: np.ndarray
    scores: np.ndarray
    window: float

    @property
    def peak(self) -> tuple[float, float]:
        """``(seconds, score)`` of the most surprising window."""
        i = int(np.argmax(self.scores))
        return float(self.times[i]), float(self.scores[i])


def window_samples(enc) -> int:
    """Samples in one model window: the spectrogram has ``1 + n // hop`` frames."""
    return (enc.width - 1) * enc.hop


def is_causal(cfg) -> bool:
    """Whether a model config is the frame-causal audio family (:mod:`monde.jepa.causal_audio`)."""
    return getattr(cfg, "kind", None) == "audio-causal"


def audio_facts(model) -> tuple[int, int, torch.nn.Module]:
    """``(sample rate, window samples, log-mel front end)`` of an audio world model of either
    family (masked ViT or frame-causal); a clear error for any other model."""
    from monde.errors import ConfigError

    if is_causal(getattr(model, "config", None)):
        return model.sample_rate, model.window_samples, model.frontend
    if getattr(getattr(model, "config", None), "kind", None) == "audio-spectral":
        # Its own front end is a whole-window spectrum; baselines read log-mels with the
        # settings of the other 16-kHz audio recipes (64 mels, 64-ms FFT, 10-ms hop).
        from monde.data.logmel import LogMel, MelConfig

        rate = model.sample_rate
        mel = MelConfig(rate=rate, n_fft=1024 * rate // 16000, hop=rate // 100, n_mels=64)
        return rate, model.window_samples, LogMel(mel)
    enc = getattr(getattr(model, "config", None), "encoder", None)
    if enc is None or enc.modality != "audio":
        what = enc.modality if enc is not None else getattr(model, "modality", "non-audio")
        raise ConfigError(f"this is a {what} model; an audio model is needed (monde train "
                          "audio-spectral-tiny, audio-causal-tiny, fsdd-causal, audio-tiny, or "
                          "audio --data DIR)")
    return enc.sample_rate, window_samples(enc), model.jepa.encoder.tokenizer.frontend


@torch.no_grad()
def window_errors(jepa, sound: torch.Tensor, tokens: Literal["mean", "max"] = "mean",
                  context_ratio: float = 0.5) -> torch.Tensor:
    """Forecast error of each window ``sound [B, N]`` (float, at the model's rate) → ``[B]``."""
    tok = jepa.encoder.tokenize(sound)
    mp = CausalFuture(grid=tok.grid, context_ratio=context_ratio, time_axis=1)(sound.shape[0])
    ctx, tgt = mp.context_idx.to(sound.device), mp.target_idx.to(sound.device)
    target = gather_tokens(jepa.targets(sound, tok), tgt)
    z = jepa.encoder(tok, keep_idx=ctx)
    err = (jepa.predictor(z, ctx, tgt, tok.positions).float() - target).abs().mean(-1)
    return err.amax(1) if tokens == "max" else err.mean(1)


def score_sound(errors: Callable[[torch.Tensor], torch.Tensor],
                windows: Iterable[tuple[float, torch.Tensor]], *, window: float,
                device: torch.device | str = "cpu", batch_size: int = 32) -> AudioSurprise:
    """Surprise of ``(start_seconds, samples [N] or [1, N])`` windows, ``batch_size`` at a time.

    ``errors`` maps a batch of windows ``[B, N]`` to their surprise ``[B]`` (for the masked
    JEPA: :func:`window_errors`; for the frame-causal one, its mean step error).
    """
    times: list[float] = []
    scores: list[np.ndarray] = []
    batch: list[torch.Tensor] = []

    def flush() -> None:
        x = torch.stack(batch).to(device).float()
        scores.append(errors(x).float().cpu().numpy())
        batch.clear()

    for start, w in windows:
        times.append(float(start))
        batch.append(torch.as_tensor(w).reshape(-1))
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return AudioSurprise(np.asarray(times), np.concatenate(scores).astype(np.float32), window)


def sound_windows(sound, n: int, hop: int, rate: int):
    """``(start_seconds, window)`` pairs of a sound file (streamed, resampled to ``rate``) or of a
    mono tensor ``[N]`` at ``rate``: windows of ``n`` samples every ``hop``."""
    from pathlib import Path

    if hop < 1:
        raise DataError(f"hop must be >= 1 sample, got {hop}")
    if isinstance(sound, (str, Path)):
        from monde.data.audio import iter_audio_windows

        return ((t, w[0]) for t, w in iter_audio_windows(sound, window=n / rate, hop=hop / rate,
                                                          rate=rate))
    x = torch.as_tensor(sound).float()
    if x.dim() == 2 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 1:
        raise DataError(f"surprise takes one mono sound [N] at {rate} Hz; got shape "
                        f"{tuple(x.shape)}. Pass a file path to have it resampled.")
    return tensor_windows(x, n, hop, rate)


def tensor_windows(sound: torch.Tensor, n: int, hop: int, rate: int):
    """``(start_seconds, sound[s:s+n])`` every ``hop`` samples of ``sound [N]``."""
    if sound.shape[-1] < n:
        raise DataError(f"the sound has {sound.shape[-1]} samples ({sound.shape[-1] / rate:.2f} s) "
                        f"but this model hears windows of {n} samples ({n / rate:.2f} s); give "
                        "a longer sound")
    for s in range(0, sound.shape[-1] - n + 1, hop):
        yield s / rate, sound[..., s:s + n]
