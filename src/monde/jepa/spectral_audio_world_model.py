"""``SpectralAudioWorldModel``: a trained spectral audio JEPA, as ``monde.load`` returns it."""

from __future__ import annotations

import torch

from monde.errors import DataError
from monde.jepa.spectral_audio import SpectralAudioConfig, SpectralAudioJEPA


class SpectralAudioWorldModel:
    """Encode windows of sound into latents along frequency and measure their surprise.

    A window's surprise is the mean, over its frequency positions, of how badly each
    position's latent is predicted from the rest of the window's spectrum (see
    :mod:`monde.jepa.spectral_audio`).
    """

    modality = "audio"

    def __init__(self, net: SpectralAudioJEPA, meta: dict | None = None):
        self.jepa = net.eval()
        self.meta = meta or {}

    @property
    def config(self) -> SpectralAudioConfig:
        return self.jepa.cfg

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def window_samples(self) -> int:
        """Samples in one model window."""
        return self.config.window_samples

    def _device(self) -> torch.device:
        return next(self.jepa.parameters()).device

    def _windows(self, sound) -> torch.Tensor:
        x = torch.as_tensor(sound).float()
        if x.dim() == 1:
            x = x[None]
        if x.dim() != 2 or x.shape[-1] != self.window_samples:
            raise DataError(f"this model encodes windows of mono sound [B, {self.window_samples}] "
                            f"at {self.sample_rate} Hz ({self.window_samples / self.sample_rate:.3f}"
                            f" s); got shape {tuple(x.shape)}. Use surprise() for longer sounds.")
        return x.to(self._device())

    @torch.no_grad()
    def encode(self, sound, *, pool: bool = False) -> torch.Tensor:
        """Latents of windows of sound.

        Args:
            sound: ``[B, window_samples]`` or ``[window_samples]`` float, at ``sample_rate``.
            pool: average over frequency positions.

        Returns:
            ``[B, positions, latent]``, or ``[B, latent]`` when ``pool``.
        """
        z = self.jepa.encode(self._windows(sound))
        return z.mean(1) if pool else z

    @torch.no_grad()
    def surprise(self, sound, *, stride: int | None = None, tokens: str = "mean",
                 batch_size: int = 32):
        """Surprise per window of a sound.

        Args:
            sound: a mono sound ``[N]`` at ``sample_rate``, or the path of a sound file
                (streamed in windows and resampled).
            stride: samples between windows (default: half a window).
            tokens: how a window's frequency positions combine, ``mean`` or ``max``.

        Returns:
            :class:`~monde.jepa.audio_surprise.AudioSurprise` (start time and score per window).
        """
        from monde.errors import ConfigError
        from monde.jepa import audio_surprise as aus

        if tokens not in ("mean", "max"):
            raise ConfigError(f"tokens must be 'mean' or 'max', got {tokens!r}")
        n = self.window_samples
        windows = aus.sound_windows(sound, n, n // 2 if stride is None else stride,
                                    self.sample_rate)

        def errors(x: torch.Tensor) -> torch.Tensor:
            e = self.jepa.position_errors(x)
            return e.amax(1) if tokens == "max" else e.mean(1)

        return aus.score_sound(errors, windows, window=n / self.sample_rate,
                               device=self._device(), batch_size=batch_size)

    def to(self, device) -> SpectralAudioWorldModel:
        self.jepa.to(device)
        return self

    def __repr__(self) -> str:
        c = self.config
        return (f"SpectralAudioWorldModel({c.sample_rate} Hz, {c.window_samples / c.sample_rate:.2f}"
                f" s windows, {c.positions} frequency positions x {c.latent}, "
                f"recipe={self.meta.get('recipe')!r}, steps={self.meta.get('steps')})")
