"""``AudioVisualWorldModel``: a trained audio-visual JEPA, as ``monde.load`` returns it."""

from __future__ import annotations

import numpy as np
import torch

from monde.jepa.audio_visual import AudioVisualConfig, AudioVisualJEPA
from monde.jepa.no_actions import WithoutActions


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
        v, a = torch.as_tensor(np.asarray(video)), torch.as_tensor(np.asarray(audio))
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

    def to(self, device) -> AudioVisualWorldModel:
        self.jepa.to(device)
        return self

    def __repr__(self) -> str:
        c = self.config
        return (f"AudioVisualWorldModel({c.frames} frames of {c.size}x{c.size} + "
                f"{c.samples_per_frame} samples per frame at {c.sample_rate} Hz, "
                f"latent {c.latent_dim}, recipe={self.meta.get('recipe')!r}, "
                f"steps={self.meta.get('steps')})")
