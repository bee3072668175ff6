"""``CausalAudioWorldModel``: a trained frame-causal audio JEPA, as ``monde.load`` returns it."""

from __future__ import annotations

import torch

from monde.jepa.audio_window_model import WindowedAudioModel
from monde.jepa.causal_audio import CausalAudioConfig, CausalAudioJEPA


class CausalAudioWorldModel(WindowedAudioModel):
    """Encode sound into one latent per time step and measure surprise window by window.

    ``encode`` gives ``[B, steps, token_dim]`` (one latent map per step, flattened). Within a
    window, every latent step after the first ``context`` is forecast once from the
    ``context`` steps before it; the window's surprise is the mean error of those forecasts,
    each step's frequency cells combined by ``tokens`` (``mean`` or ``max``; see
    :mod:`monde.jepa.causal_audio`).
    """

    jepa: CausalAudioJEPA
    config: CausalAudioConfig

    @property
    def frontend(self) -> torch.nn.Module:
        """The log-mel front end (``[B, N]`` sound → ``[B, n_mels, frames]``)."""
        return self.jepa.frontend

    def _latents(self, x: torch.Tensor) -> torch.Tensor:
        return self.jepa.tokens(x)

    def _window_errors(self, x: torch.Tensor, tokens: str) -> torch.Tensor:
        return self.jepa.step_errors(self.jepa.encode(x), cells=tokens).mean(1)

    def __repr__(self) -> str:
        c = self.config
        return (f"CausalAudioWorldModel({c.sample_rate} Hz, {c.window_samples / c.sample_rate:.2f} s "
                f"windows, {c.steps} steps x {c.token_dim}, recipe={self.meta.get('recipe')!r}, "
                f"steps={self.meta.get('steps')})")
