"""``AudioVisualWorldModel``: a trained audio-visual JEPA, as ``monde.load`` returns it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from monde.errors import DataError
from monde.jepa.audio_visual import AudioVisualConfig, AudioVisualJEPA
from monde.jepa.no_actions import WithoutActions


@dataclass
class SoundtrackSurprise:
    """Per-frame surprise of a video's soundtrack under an audio-visual model."""

    scores: np.ndarray
    """``[N]`` for the N frames at the model's frame rate (the last window ends at the last
    frame, so every frame is scored)."""
    fps: float
    """The model's frame rate (frames of the file are picked at these times)."""
    window: int
    """Frames per scored window."""
    window_starts: list[int]

    @property
    def peak(self) -> tuple[int, float]:
        """``(frame, score)`` of the most surprising frame."""
        i = int(np.nanargmax(self.scores))
        return i, float(self.scores[i])


class AudioVisualWorldModel(WithoutActions):
    """Encode clips with their soundtracks, and say how well a soundtrack fits its video.

    Clips are ``video [B, T, 3, H, W]`` (uint8, or float in [0, 1]) with ``audio [B, T · spf]``
    at the model's sample rate, ``T`` and ``spf`` as trained (``config.frames``,
    ``config.samples_per_frame``).
    """

    modality = "audio-visual"

    def __init__(self, net: AudioVisualJEPA, meta: dict | None = None):
        self.jepa = net.eval()
        self.meta = meta or {}

    @property
    def config(self) -> AudioVisualConfig:
        return self.jepa.cfg

    def _tensors(self, video, audio) -> tuple[torch.Tensor, torch.Tensor]:
        dev = next(self.jepa.parameters()).device
        v, a = (x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
                for x in (video, audio))
        if v.dim() == 4:
            v, a = v[None], a[None]
        return v.to(dev), a.float().to(dev)

    @torch.no_grad()
    def encode(self, video, audio) -> dict[str, torch.Tensor]:
        """``{"video": [B, T, D], "audio": [B, T, D]}``: one latent per frame and per chunk."""
        v, a = self._tensors(video, audio)
        self.jepa.check(v, a)
        return {"video": self.jepa.encode_video(v), "audio": self.jepa.encode_audio(a)}

    @torch.no_grad()
    def surprise(self, video, audio) -> np.ndarray:
        """``[B, T]``: how far each chunk of the soundtrack is from what the model predicts
        from the video alone (squared latent error). A soundtrack that belongs to the video
        scores low; another clip's, or this one out of step, scores high."""
        v, a = self._tensors(video, audio)
        return self.jepa.sound_errors(v, a).cpu().numpy()

    @torch.no_grad()
    def surprise_file(self, path, *, stride: int | None = None,
                      batch_size: int = 64) -> SoundtrackSurprise:
        """Score a video file with its own soundtrack (mp4, mkv, mov, avi …).

        Frames are resized to the model's size and picked at the model's frame rate (the one
        nearest each time ``k / fps``); the audio track is mixed to mono and resampled to the
        model's rate. Windows of ``config.frames`` frames every ``stride`` frames (default
        half a window), plus one ending at the last frame; a frame's score is the mean error of its audio chunk over the windows
        that cover it.
        """
        from monde.data.sounding_video import read_sounding_video

        c = self.config
        video, audio = read_sounding_video(path, size=c.size, rate=c.sample_rate,
                                           samples_per_frame=c.samples_per_frame)
        n = len(video)
        if n < c.frames:
            raise DataError(f"{path}: {n} frames with sound at the model's "
                            f"{c.sample_rate / c.samples_per_frame:g} fps, fewer than its "
                            f"window of {c.frames}")
        stride = stride or max(1, c.frames // 2)
        starts = list(range(0, n - c.frames + 1, stride))
        if starts[-1] != n - c.frames:  # one more window, flush with the end: every frame scored
            starts.append(n - c.frames)
        total, count = np.zeros(n), np.zeros(n)
        spf = c.samples_per_frame
        for i in range(0, len(starts), batch_size):
            group = starts[i:i + batch_size]
            v = torch.stack([video[s:s + c.frames] for s in group])
            a = torch.stack([audio[s * spf:(s + c.frames) * spf] for s in group])
            err = self.surprise(v, a)                                       # [W, T]
            for s, e in zip(group, err):
                total[s:s + c.frames] += e
                count[s:s + c.frames] += 1
        scores = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        return SoundtrackSurprise(scores, c.sample_rate / c.samples_per_frame, c.frames, starts)

    def to(self, device) -> AudioVisualWorldModel:
        self.jepa.to(device)
        return self

    def __repr__(self) -> str:
        c = self.config
        return (f"AudioVisualWorldModel({c.frames} frames of {c.size}x{c.size} + "
                f"{c.samples_per_frame} samples per frame at {c.sample_rate} Hz, "
                f"latent {c.latent_dim}, recipe={self.meta.get('recipe')!r}, "
                f"steps={self.meta.get('steps')})")
