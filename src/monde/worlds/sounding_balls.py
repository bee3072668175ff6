"""Sounding balls: the bouncing-balls world with the sound of its collisions.

Every impact — a ball on a wall, or two balls on each other — makes a short tone that rings
down exponentially, as a struck object does. Its pitch belongs to the ball (smaller balls ring
higher: ``pitch ∝ 1 / radius``) and its loudness grows with how hard the ball was hit (the
change of its velocity that gravity does not explain). So the soundtrack is a function of
what the video shows — *when* balls collide and *which* balls — plus what the video cannot
show: the exact instant within a frame interval, the tone's phase, background noise.

This is the multimodal world of issue 6's "sound with sight": a model that has learned it can
predict the sound's latent from the video, and a soundtrack from another clip, or the right
one out of step, is a violation it can notice.

Time: frame ``t`` of a clip is shown at ``t·dt``; audio chunk ``t`` is the
``samples_per_frame`` samples of ``[t·dt, (t+1)·dt)``, so an impact between frames ``t`` and
``t + 1`` sounds in chunk ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from monde.errors import ConfigError
from monde.worlds.balls import BallsConfig, BouncingBalls


def _default_balls() -> BallsConfig:
    return BallsConfig(frames=16, size=32, n_balls=2, dt=1 / 25)


@dataclass
class SoundingBallsConfig:
    """Sounding-balls world: the balls' physics and video, and how impacts sound."""

    balls: BallsConfig = field(default_factory=_default_balls)
    """Physics and rendering (``dt · sample_rate`` must be a whole number of samples)."""
    sample_rate: int = 8000
    """Audio samples per second."""
    pitch: float = 1600.0
    """Tone of the smallest possible ball (``balls.radius[0]``), Hz; a ball of radius ``r``
    rings at ``pitch · radius[0] / r``."""
    decay: float = 0.025
    """Seconds for a tone to fall by a factor e."""
    threshold: float = 0.15
    """Smallest unexplained velocity change (frame sides per second) that counts as an impact."""
    loudness: float = 0.5
    """Amplitude of an impact whose velocity change is 1 frame side per second (louder impacts
    saturate at 2× this)."""
    noise: float = 0.02
    """Standard deviation of the white background noise."""

    @property
    def samples_per_frame(self) -> int:
        return int(round(self.balls.dt * self.sample_rate))

    def validate(self) -> None:
        """Raise :class:`ConfigError` for settings the world cannot honour."""
        self.balls.validate()
        spf = self.balls.dt * self.sample_rate
        if self.sample_rate < 1000 or abs(spf - round(spf)) > 1e-6:
            raise ConfigError(f"SoundingBallsConfig: balls.dt × sample_rate must be a whole "
                              f"number of samples ≥ 1 kHz rate; got {self.balls.dt} × "
                              f"{self.sample_rate} = {spf:g}")
        if not 0 < self.pitch < self.sample_rate / 2:  # the highest tone any ball makes
            raise ConfigError(f"SoundingBallsConfig: pitch ({self.pitch} Hz) must be below the "
                              f"Nyquist frequency ({self.sample_rate / 2:g} Hz)")
        if self.decay <= 0 or self.threshold <= 0 or self.loudness <= 0 or self.noise < 0:
            raise ConfigError("SoundingBallsConfig: decay, threshold and loudness must be > 0 "
                              "and noise ≥ 0")


@dataclass
class SoundingClips:
    """A batch of clips with their soundtracks (B clips, T frames, K balls)."""

    video: np.ndarray
    """uint8 ``[B, T, 3, H, W]``."""
    audio: np.ndarray
    """float32 ``[B, T · samples_per_frame]``."""
    impacts: np.ndarray
    """float32 ``[B, T, K]``: strength of each ball's impact sounding in audio chunk ``t``
    (0: none)."""
    state: np.ndarray
    """float32 ``[B, T, K, 4]`` ball positions and velocities."""


class SoundingBalls:
    """Deterministic (given a seed) generator of bouncing-balls clips with impact sounds."""

    def __init__(self, cfg: SoundingBallsConfig | None = None):
        self.cfg = cfg if cfg is not None else SoundingBallsConfig()
        self.cfg.validate()
        self.balls = BouncingBalls(self.cfg.balls)

    def sample(self, batch_size: int, rng: np.random.Generator | int) -> SoundingClips:
        """Simulate, render and sound ``batch_size`` clips."""
        rng = np.random.default_rng(rng)
        clips = self.balls.sample(batch_size, rng)
        impacts = self.impacts(clips.state)
        audio = self.sound(impacts, clips.radius, rng)
        return SoundingClips(video=clips.video, audio=audio, impacts=impacts, state=clips.state)

    def batch(self, step: int, batch_size: int, seed: int = 0, rank: int = 0) -> SoundingClips:
        """Deterministic function of ``(seed, step, rank)`` (resume and DDP, as the balls)."""
        return self.sample(batch_size, np.random.default_rng([seed, step, rank]))

    def impacts(self, state: np.ndarray) -> np.ndarray:
        """``[B, T, K]`` impact strengths from ball states ``[B, T, K, 4]``.

        The velocity change between frames ``t`` and ``t + 1`` minus what gravity adds over
        ``dt``; above ``threshold`` it is an impact in chunk ``t``. The last chunk has no next
        frame and stays silent.
        """
        c = self.cfg.balls
        vel = state[..., 2:].astype(np.float64)
        dv = vel[:, 1:] - vel[:, :-1]
        dv[..., 1] -= c.gravity * c.dt
        strength = np.sqrt((dv * dv).sum(-1))                     # [B, T-1, K]
        out = np.zeros(state.shape[:3], np.float32)
        out[:, :-1] = np.where(strength > self.cfg.threshold, strength, 0.0)
        return out

    def sound(self, impacts: np.ndarray, radius: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
        """Soundtracks ``[B, T · spf]`` for impacts ``[B, T, K]`` of balls of ``radius [B, K]``."""
        cfg = self.cfg
        b, t, _ = impacts.shape
        spf, rate = cfg.samples_per_frame, cfg.sample_rate
        n = t * spf
        audio = rng.normal(0.0, cfg.noise, (b, n))
        ring = int(np.ceil(6 * cfg.decay * rate))                 # e^-6: inaudible after that
        tau = np.arange(ring) / rate
        envelope = np.exp(-tau / cfg.decay)
        for i, f, k in zip(*np.nonzero(impacts)):
            start = int(f * spf + rng.integers(spf))              # when within the interval
            pitch = cfg.pitch * cfg.balls.radius[0] / radius[i, k]
            amp = cfg.loudness * min(float(impacts[i, f, k]), 2.0)
            tone = amp * envelope * np.sin(2 * np.pi * pitch * tau + rng.uniform(0, 2 * np.pi))
            stop = min(n, start + ring)
            audio[i, start:stop] += tone[:stop - start]
        return audio.astype(np.float32)
