"""``WindowedAudioModel``: what every CNN audio world model shares — fixed windows of sound in,
latents and surprise per window out. A family supplies its network (``jepa``, with ``cfg``
holding ``sample_rate`` and ``window_samples``), how it turns windows into latents
(:meth:`_latents`) and into one surprise number per window (:meth:`_window_errors`)."""

from __future__ import annotations

import torch

from monde.errors import ConfigError, DataError


class WindowedAudioModel:
    """Base of :class:`~monde.jepa.causal_audio_world_model.CausalAudioWorldModel` and
    :class:`~monde.jepa.spectral_audio_world_model.SpectralAudioWorldModel`."""

    modality = "audio"

    def __init__(self, net: torch.nn.Module, meta: dict | None = None):
        self.jepa = net.eval()
        self.meta = meta or {}

    @property
    def config(self):
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

    def _latents(self, x: torch.Tensor) -> torch.Tensor:
        """Latents ``[B, cells, D]`` of windows ``x [B, window_samples]``."""
        raise NotImplementedError

    def _window_errors(self, x: torch.Tensor, tokens: str) -> torch.Tensor:
        """Surprise ``[B]`` of windows ``x [B, window_samples]``, cells combined by ``tokens``."""
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, sound, *, pool: bool = False) -> torch.Tensor:
        """Latents of windows of sound.

        Args:
            sound: ``[B, window_samples]`` or ``[window_samples]`` float, at ``sample_rate``.
            pool: average over the latent cells (time steps or frequency positions).

        Returns:
            ``[B, cells, D]``, or ``[B, D]`` when ``pool``.
        """
        z = self._latents(self._windows(sound))
        return z.mean(1) if pool else z

    @torch.no_grad()
    def surprise(self, sound, *, stride: int | None = None, tokens: str = "mean",
                 batch_size: int = 32):
        """Surprise per window of a sound.

        Args:
            sound: a mono sound ``[N]`` at ``sample_rate``, or the path of a sound file
                (streamed in windows and resampled).
            stride: samples between windows (default: half a window).
            tokens: ``mean`` or ``max``: how the family combines its latent cells into a
                window's number (see the subclass).

        Returns:
            :class:`~monde.jepa.audio_surprise.AudioSurprise` (start time and score per window).
        """
        from monde.jepa import audio_surprise as aus

        if tokens not in ("mean", "max"):
            raise ConfigError(f"tokens must be 'mean' or 'max', got {tokens!r}")
        n = self.window_samples
        windows = aus.sound_windows(sound, n, n // 2 if stride is None else stride,
                                    self.sample_rate)
        return aus.score_sound(lambda x: self._window_errors(x, tokens), windows,
                               window=n / self.sample_rate, device=self._device(),
                               batch_size=batch_size)

    def to(self, device):
        self.jepa.to(device)
        return self
