"""``SpectralAudioWorldModel``: a trained spectral audio JEPA, as ``monde.load`` returns it."""

from __future__ import annotations

import torch

from monde.jepa.audio_window_model import WindowedAudioModel
from monde.jepa.spectral_audio import SpectralAudioConfig, SpectralAudioJEPA


class SpectralAudioWorldModel(WindowedAudioModel):
    """Encode windows of sound into latents along frequency and measure their surprise.

    ``encode`` gives ``[B, positions, latent]`` (one latent per frequency position). A
    window's surprise is the mean (or max), over its frequency positions, of how badly each
    position's latent is predicted from the rest of the window's spectrum (see
    :mod:`monde.jepa.spectral_audio`).
    """

    jepa: SpectralAudioJEPA
    config: SpectralAudioConfig

    def _latents(self, x: torch.Tensor) -> torch.Tensor:
        return self.jepa.encode(x)

    def _window_errors(self, x: torch.Tensor, tokens: str) -> torch.Tensor:
        e = self.jepa.position_errors(x)
        return e.amax(1) if tokens == "max" else e.mean(1)

    def __repr__(self) -> str:
        c = self.config
        return (f"SpectralAudioWorldModel({c.sample_rate} Hz, {c.window_samples / c.sample_rate:.2f}"
                f" s windows, {c.positions} frequency positions x {c.latent}, "
                f"recipe={self.meta.get('recipe')!r}, steps={self.meta.get('steps')})")
