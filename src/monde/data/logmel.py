"""Log-mel spectrograms in torch, batched and on the training device.

Mel scale: Slaney's (the default of librosa and of Whisper's front end), linear below 1 kHz
(200/3 Hz per mel) and logarithmic above. Filters are triangles on that scale, evaluated at the
FFT bin frequencies and area-normalised (``2 / (f_hi - f_lo)``), so that white noise gives the
same expected value in every band and band values are power per Hz.

The computation always runs in float32, also under autocast (low-precision FFTs lose the quiet
bands), and the output is float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from monde.errors import ConfigError, DataError

_F_SP = 200.0 / 3  # Hz per mel below 1 kHz
_MIN_LOG_HZ, _MIN_LOG_MEL = 1000.0, 15.0
_LOG_STEP = math.log(6.4) / 27  # natural-log step per mel above 1 kHz


@dataclass
class MelConfig:
    """Log-mel front end settings."""

    rate: int = 16000
    """Sample rate of the input in Hz."""
    n_fft: int = 400
    """FFT size and Hann window length in samples (25 ms at 16 kHz)."""
    hop: int = 160
    """Samples between frames (10 ms at 16 kHz)."""
    n_mels: int = 64
    """Number of mel bands."""
    f_min: float = 0.0
    """Lower edge of the lowest band in Hz."""
    f_max: float | None = None
    """Upper edge of the highest band in Hz; None means ``rate / 2``."""
    log_offset: float = 1e-6
    """Added to the mel power before the log, so that silence gives ``log(log_offset)``."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` for settings that cannot give a usable filterbank."""
        top = self.rate / 2 if self.f_max is None else self.f_max
        if self.rate < 1 or self.n_fft < 2 or self.hop < 1 or self.n_mels < 1:
            raise ConfigError(f"MelConfig: need rate >= 1, n_fft >= 2, hop >= 1 and n_mels >= 1, "
                              f"got rate={self.rate}, n_fft={self.n_fft}, hop={self.hop}, "
                              f"n_mels={self.n_mels}")
        if not 0 <= self.f_min < top <= self.rate / 2:
            raise ConfigError(f"MelConfig: need 0 <= f_min < f_max <= rate/2 = {self.rate / 2}, "
                              f"got f_min={self.f_min}, f_max={self.f_max}")
        if not self.log_offset > 0:
            raise ConfigError(f"MelConfig: log_offset must be > 0, got {self.log_offset}")


def hz_to_mel(f: torch.Tensor) -> torch.Tensor:
    """Slaney mel of frequencies ``f`` in Hz."""
    lin = f / _F_SP
    log = _MIN_LOG_MEL + torch.log(f.clamp(min=_MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return torch.where(f < _MIN_LOG_HZ, lin, log)


def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    return torch.where(m < _MIN_LOG_MEL, m * _F_SP,
                       _MIN_LOG_HZ * torch.exp(_LOG_STEP * (m - _MIN_LOG_MEL)))


def mel_filterbank(cfg: MelConfig) -> torch.Tensor:
    """float32 ``[n_mels, n_fft // 2 + 1]``: area-normalised triangles on the Slaney mel scale."""
    cfg.validate()
    top = cfg.rate / 2 if cfg.f_max is None else cfg.f_max
    lo, hi = hz_to_mel(torch.tensor([cfg.f_min, top], dtype=torch.float64))
    edges = mel_to_hz(torch.linspace(lo.item(), hi.item(), cfg.n_mels + 2, dtype=torch.float64))
    bins = torch.linspace(0, cfg.rate / 2, cfg.n_fft // 2 + 1, dtype=torch.float64)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rise = (bins - left) / (centre - left)
    fall = (right - bins) / (right - centre)
    fb = torch.clamp(torch.minimum(rise, fall), min=0) * (2 / (right - left))
    empty = (fb.sum(1) == 0).nonzero().flatten().tolist()
    if empty:
        # A band narrower than the FFT bin spacing falls between bins and would read silence.
        raise ConfigError(f"MelConfig: mel bands {empty} contain no FFT bin (bins are "
                          f"{cfg.rate / cfg.n_fft:.1f} Hz apart); use fewer n_mels, a larger "
                          "n_fft or a higher f_min")
    return fb.float()


class LogMel(torch.nn.Module):
    """``log(mel power + log_offset)`` of ``x [B, N]`` or ``[B, C, N]``, see the module docstring.

    Output: float32 ``[B, n_mels, frames]`` or ``[B, C, n_mels, frames]`` with
    ``frames = self.frames(N)``. Frames are centred (frame ``t`` is centred on sample
    ``t * hop``, the signal reflected at both ends). The window and filterbank are
    non-persistent buffers: they follow ``.to(device)`` but stay out of checkpoints.
    """

    def __init__(self, cfg: MelConfig | None = None):
        super().__init__()
        self.cfg = cfg if cfg is not None else MelConfig()
        self.register_buffer("fb", mel_filterbank(self.cfg), persistent=False)
        self.register_buffer("window", torch.hann_window(self.cfg.n_fft), persistent=False)

    def frames(self, n_samples: int) -> int:
        """Frames produced for ``n_samples`` input samples (centred framing)."""
        return 1 + n_samples // self.cfg.hop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim not in (2, 3):
            raise DataError(f"LogMel needs audio [B, N] or [B, C, N], got shape {tuple(x.shape)}")
        n = x.shape[-1]
        if n <= self.cfg.n_fft // 2:
            raise DataError(f"LogMel: {n} samples is too short for n_fft={self.cfg.n_fft} "
                            f"(reflect padding needs more than {self.cfg.n_fft // 2}); "
                            "use longer clips or a smaller n_fft")
        with torch.autocast(x.device.type, enabled=False):
            flat = x.reshape(-1, n).float()
            # .float(): a module cast with .half()/.bfloat16() still computes in float32.
            spec = torch.stft(flat, self.cfg.n_fft, self.cfg.hop, window=self.window.float(),
                              center=True, pad_mode="reflect", return_complex=True)
            power = spec.real.square() + spec.imag.square()  # [B*C, F, T]
            mel = torch.matmul(self.fb.float(), power)
            return torch.log(mel + self.cfg.log_offset).reshape(*x.shape[:-1], *mel.shape[-2:])
