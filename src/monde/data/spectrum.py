"""A machine's spectrum on a log-frequency axis: its tones and the rhythm of its high band.

A rotating machine's condition shows in *which* tones it makes and in *how its high band
pulses*, over a whole second rather than frame by frame. A 64-ms log-mel frame holds the
15–60 Hz shaft series in one or two bands and smears a bearing's 1-ms strikes into steady
noise. This front end keeps both, for a window ``[B, N]`` of sound:

* **tones** (channel 0): the power spectrum of the whole window (one Hann-windowed FFT, so
  ``rate / N`` Hz resolution: 1 Hz for a 1-s window), read on a log-frequency grid of
  ``per_octave`` points per octave from ``f_min`` to ``f_max`` (triangles on the log axis,
  at least 1.5 FFT bins wide, so low points interpolate and high points average), as
  ``log`` power minus its mean over the grid — the microphone's gain drops out;
* **envelope** (channel 1): the *envelope spectrum* of the sound above ``envelope_from`` Hz
  — the spectrum of ``|analytic signal|²`` divided by its mean, i.e. how deeply and at which
  rates the high band is modulated (impacts, rubbing, blade passes) — on the same grid, the
  classic demodulation view of bearing diagnostics. Points above ``envelope_to`` Hz are 0;
* **fluctuation** (channel 2, when ``fluctuation_frame`` > 0): how much each grid point's level
  varies within the window — the standard deviation over short frames (``fluctuation_frame``
  samples, half overlapping) of its log power — for bursts and rubs that come and go.

On a log-frequency axis a change of shaft speed is a *shift* (the harmonic series ``k f0``
keeps its shape), so a convolution along the axis sees the same pattern at every speed.

All computation runs in float32 (also under autocast: low-precision FFTs lose quiet tones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from monde.errors import ConfigError, DataError


@dataclass
class SpectrumConfig:
    """Settings of :class:`MachineSpectrum`."""

    rate: int = 16000
    """Sample rate of the input, Hz."""
    samples: int = 16000
    """Samples per window (the FFT is zero-padded to the next power of two)."""
    f_min: float = 7.8
    """Lowest grid frequency, Hz."""
    octaves: int = 10
    """Octaves the grid spans: ``bins = octaves * per_octave`` points from ``f_min`` up (the
    highest, ``f_max``, must stay below ``rate / 2``)."""
    per_octave: int = 32
    """Grid points per octave."""
    envelope_from: float = 1000.0
    """The envelope is taken of the sound above this frequency, Hz."""
    envelope_to: float = 1000.0
    """Modulation rates above this are set to 0 in the envelope channel, Hz."""
    fluctuation_frame: int = 0
    """Samples per frame of the fluctuation channel; 0 leaves that channel out."""

    @property
    def bins(self) -> int:
        """Grid points (``octaves * per_octave``)."""
        return self.octaves * self.per_octave

    @property
    def channels(self) -> int:
        """Channels of the output (tones, envelope and, if on, fluctuation)."""
        return 3 if self.fluctuation_frame else 2

    @property
    def f_max(self) -> float:
        """The highest grid frequency, Hz."""
        return self.f_min * 2.0 ** ((self.bins - 1) / self.per_octave)

    def validate(self) -> None:
        """Raise :class:`ConfigError` for settings that cannot give a usable spectrum."""
        if self.rate < 1 or self.samples < 64 or self.per_octave < 1 or self.octaves < 1:
            raise ConfigError(f"SpectrumConfig: need rate >= 1, samples >= 64, per_octave >= 1 "
                              f"and octaves >= 1, got {self}")
        if not 0 < self.f_min < self.f_max < self.rate / 2:
            raise ConfigError(f"SpectrumConfig: the grid {self.f_min:g}–{self.f_max:g} Hz must "
                              f"lie below rate/2 = {self.rate / 2:g} Hz; lower octaves or f_min")
        if self.fluctuation_frame and not 16 <= self.fluctuation_frame <= self.samples // 4:
            raise ConfigError(f"SpectrumConfig: fluctuation_frame ({self.fluctuation_frame}) "
                              f"must be 0 (off) or between 16 and samples / 4")
        if not 0 < self.envelope_from < self.rate / 2 or self.envelope_to <= 0:
            raise ConfigError("SpectrumConfig: need 0 < envelope_from < rate/2 and "
                              "envelope_to > 0")


def grid_hz(cfg: SpectrumConfig) -> torch.Tensor:
    """float64 ``[bins]``: the grid's frequencies, Hz."""
    return cfg.f_min * 2.0 ** (torch.arange(cfg.bins, dtype=torch.float64) / cfg.per_octave)


def log_grid_bank(cfg: SpectrumConfig, n_fft: int) -> torch.Tensor:
    """float32 ``[bins, n_fft // 2 + 1]``: unit-sum triangles on the log-frequency grid, each at
    least 1.5 FFT bins wide on either side (a linear interpolation where the grid is finer
    than the FFT)."""
    df = cfg.rate / n_fft
    f = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * df
    c = grid_hz(cfg)[:, None]
    step = 2.0 ** (1 / cfg.per_octave)
    left = torch.clamp(c - c / step, min=1.5 * df)
    right = torch.clamp(c * step - c, min=1.5 * df)
    w = torch.clamp(torch.minimum((f - (c - left)) / left, ((c + right) - f) / right), min=0)
    return (w / w.sum(1, keepdim=True)).float()


class MachineSpectrum(torch.nn.Module):
    """Sound windows ``[B, samples]`` → float32 ``[B, channels, bins]`` (tones, envelope and
    fluctuation if on); see the module docstring. Buffers are non-persistent (rebuilt from the
    config)."""

    def __init__(self, cfg: SpectrumConfig | None = None):
        super().__init__()
        self.cfg = cfg if cfg is not None else SpectrumConfig()
        self.cfg.validate()
        self.n_fft = 1 << math.ceil(math.log2(self.cfg.samples))
        self.register_buffer("bank", log_grid_bank(self.cfg, self.n_fft), persistent=False)
        self.register_buffer("window", torch.hann_window(self.cfg.samples, periodic=False),
                             persistent=False)
        f = torch.fft.rfftfreq(self.n_fft, 1 / self.cfg.rate)
        self.register_buffer("high", (f >= self.cfg.envelope_from).float(), persistent=False)
        self.register_buffer("slow", (grid_hz(self.cfg) <= self.cfg.envelope_to).float(),
                             persistent=False)
        frame = self.cfg.fluctuation_frame
        if frame:
            self.register_buffer("frame_bank", log_grid_bank(self.cfg, frame), persistent=False)
            self.register_buffer("frame_window", torch.hann_window(frame), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.cfg.samples:
            raise DataError(f"MachineSpectrum needs windows [B, {self.cfg.samples}] at "
                            f"{self.cfg.rate} Hz, got shape {tuple(x.shape)}")
        with torch.autocast(x.device.type, enabled=False):
            x = x.float()
            x = x - x.mean(-1, keepdim=True)
            n, win = self.n_fft, self.window.float()
            power = torch.fft.rfft(x * win, n).abs().square() @ self.bank.T  # [B, bins]
            # A floor relative to the window's own level: digital silence stays finite.
            tones = torch.log(power + 1e-10 * power.mean(-1, keepdim=True) + 1e-30)
            tones = tones - tones.mean(-1, keepdim=True)
            # Analytic signal of the band above envelope_from: one-sided spectrum, doubled.
            spec = torch.fft.rfft(x, n) * self.high
            full = torch.zeros(x.shape[0], n, dtype=spec.dtype, device=x.device)
            full[:, :n // 2 + 1] = spec
            full[:, 1:n // 2] *= 2
            env = torch.fft.ifft(full)[:, :x.shape[1]].abs().square()
            env = env / (env.mean(-1, keepdim=True) + 1e-30)
            mod = torch.fft.rfft((env - 1) * win, n).abs().square() / x.shape[1]
            envelope = torch.log(mod @ self.bank.T + 1e-6) * self.slow
            out = [tones, envelope]
            if self.cfg.fluctuation_frame:
                frame = self.cfg.fluctuation_frame
                frames = torch.stft(x, frame, frame // 2, window=self.frame_window.float(),
                                    center=False, return_complex=True).abs().square()
                level = torch.log(self.frame_bank @ frames
                                  + 1e-10 * power.mean(-1)[:, None, None] + 1e-30)  # [B, bins, T]
                out.append(level.std(-1))
            return torch.stack(out, 1)

