"""Machine sounds: a built-in generator of rotating-machine recordings, normal or with a fault.

A sound world model is trained on normal clips only; its surprise must then single out faulty
clips. So normal sound varies a lot (shaft speed, harmonic profile, gear mesh, mains hum,
blade-pass flow noise, stray clicks, housing resonances, background noise colour and level,
loudness) and every fault changes the *structure* of the sound rather than its loudness:

* ``bearing``: a defect on a race is struck at a non-integer order ``r`` of the shaft rate
  (3.1-3.9 or 4.1-4.9, like a real ball-pass frequency) with 1% timing jitter (slip). Each
  strike rings a 2-5 kHz resonance that decays within about 1 ms, and strikes are amplitude
  modulated at the shaft rate (an inner-race defect passing through the load zone). The strike
  train's RMS is ``0.5 * severity`` times the tonal RMS.
* ``imbalance``: the 1x shaft harmonic grows ``1 + 10 * severity`` times (+16 to +21 dB at the
  default severities) and the tonal part is amplitude modulated at the shaft rate (depth
  ``0.3 * severity``).
* ``rubbing``: broadband friction bursts over a 5-25% contact arc once per revolution, on a
  random half or more of the revolutions, or on every other one (then with a 0.5x
  sub-harmonic). The friction RMS is ``0.35 * severity`` times the tonal RMS.
* ``looseness``: half-order harmonics (0.5x, 1.5x, ...; ``2.5 * severity`` times the mean
  harmonic amplitude, falling as ``order**-0.5``) and harmonics from 3x up ``1 + severity``
  times stronger: a part rattling once every two revolutions.

Loudness: a fault adds sound on top of the normal machine (flow noise, clicks and background
noise are set against the normal tonal part and do not change), and then every clip, normal or
faulty, is scaled to an RMS level drawn from ``gain_db``, so total loudness carries no
information about faults. With the same seed, a faulty batch holds the normal batch's machines
(same draws) with the fault added.
Everything is numpy, vectorised over clips (loops run only over faults and resonances).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from monde.errors import ConfigError
from monde.worlds.seeding import as_rng as _rng

FAULTS = ("bearing", "imbalance", "rubbing", "looseness")
_TABLE = 8192  # wavetable samples over two revolutions (two, so that half orders fit)
_BLADES = (5, 9)  # fan blade count range: flow noise is modulated at blades x shaft rate
_REF = 1e-5  # keeps divisions finite for silent components


@dataclass
class MachineConfig:
    """Machine-sound generator settings (ranges are sampled uniformly per clip unless noted)."""

    rate: int = 16000
    """Sample rate in Hz."""
    seconds: float = 1.0
    """Clip length in seconds."""
    shaft_hz: tuple[float, float] = (15.0, 60.0)
    """Range of the mean shaft rotation frequency in Hz (log-uniform)."""
    speed_ramp: float = 0.10
    """Largest relative speed change over a clip (a load change): the speed ramps linearly by
    a fraction drawn in ``[-speed_ramp, speed_ramp]``."""
    load_am: float = 0.2
    """Largest depth of the slow (0.3-3 Hz) load modulation of amplitude (speed follows at
    a tenth of it)."""
    harmonics: int = 16
    """Shaft harmonics 1x..Nx in the tonal part."""
    harmonic_decay: tuple[float, float] = (0.3, 1.2)
    """Range of ``a`` in the harmonic amplitude profile ``k**-a`` (k >= 2)."""
    harmonic_jitter_db: float = 6.0
    """Standard deviation in dB of each harmonic's random amplitude around that profile."""
    gear_prob: float = 0.5
    """Probability that a clip has a gear mesh tone (teeth x shaft rate, with sidebands)."""
    gear_teeth: tuple[int, int] = (12, 40)
    """Range of the number of gear teeth."""
    hum_prob: float = 0.3
    """Probability of mains hum at 100 or 120 Hz (not tied to the shaft)."""
    flow_db: tuple[float, float] = (-25.0, -5.0)
    """Range of the level of fan flow noise (broadband, modulated at the blade-pass rate)
    relative to the tonal part, in dB."""
    clicks: float = 0.5
    """Mean number per second of stray clicks (relays, valves) at random times."""
    resonances: int = 3
    """Housing resonances per clip (3-15 dB bumps between 300 Hz and 6 kHz)."""
    tilt_db: float = 3.0
    """Largest housing spectral tilt in dB per octave (either sign, around 1 kHz, flat below
    100 Hz)."""
    snr_db: tuple[float, float] = (10.0, 30.0)
    """Range of the machine-to-background-noise ratio in dB."""
    noise_color: tuple[float, float] = (0.0, 2.0)
    """Range of the background noise power exponent (0 white, 1 pink, 2 brown); the noise
    is flat below 100 Hz, like a microphone's low cut."""
    gain_db: tuple[float, float] = (-40.0, -28.0)
    """Range of the clip's RMS level in dB full scale, drawn independently of the fault."""
    severity: tuple[float, float] = (0.5, 1.0)
    """Range of fault severity; 1.0 is a clearly audible fault (see the module docstring)."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` for settings the generator cannot honour."""
        def bad(msg: str) -> ConfigError:
            return ConfigError(f"MachineConfig: {msg}")

        ranges = ("shaft_hz", "harmonic_decay", "gear_teeth", "flow_db", "snr_db", "noise_color",
                  "gain_db", "severity")
        if any(not getattr(self, r)[0] <= getattr(self, r)[1] for r in ranges):
            raise bad(f"{', '.join(ranges)} must be ranges (lo, hi) with lo <= hi")
        if self.rate < 14000 or self.seconds * self.rate < 512:
            raise bad(f"need rate >= 14000 (resonances and clicks reach 6 kHz) and at least 512 "
                      f"samples per clip, got rate={self.rate}, seconds={self.seconds}")
        if not (self.shaft_hz[0] > 0 and self.gear_teeth[0] >= 2 and self.severity[0] >= 0
                and 0 <= self.speed_ramp < 0.5 and 0 <= self.load_am < 1 and self.harmonics >= 1
                and min(self.resonances, self.clicks, self.harmonic_jitter_db, self.tilt_db) >= 0
                and 0 <= self.gear_prob <= 1 and 0 <= self.hum_prob <= 1):
            raise bad("need shaft_hz > 0, gear_teeth >= 2, severity >= 0, 0 <= speed_ramp < 0.5, "
                      "0 <= load_am < 1, harmonics >= 1, gear_prob and hum_prob in [0, 1] and "
                      "resonances, clicks, harmonic_jitter_db, tilt_db >= 0")
        top = max(self.harmonics + 1, 2 * self.gear_teeth[1] + 2) * self.shaft_hz[1] * 1.2
        if top >= self.rate / 2:
            raise bad(f"the highest tone ({top:.0f} Hz) must stay below rate/2 = {self.rate / 2};"
                      " lower shaft_hz, harmonics or gear_teeth, or raise rate")


@dataclass
class MachineClips:
    """A batch of ``n`` clips with what was simulated."""

    audio: np.ndarray
    """float32 ``[n, samples]``."""
    rate: int
    """Sample rate in Hz."""
    fault: list[str]
    """Per clip: ``"normal"`` or one of :data:`FAULTS`."""
    shaft_hz: np.ndarray
    """float32 ``[n]``: mean shaft frequency over the clip in Hz."""
    severity: np.ndarray
    """float32 ``[n]``: fault severity (0 for normal clips)."""
    fault_order: np.ndarray
    """float32 ``[n]``: repetition rate of the fault in multiples of the shaft rate (bearing
    defect order, 1 for rubbing or 0.5 on every other revolution, 1 imbalance, 0.5 looseness;
    0 for normal clips)."""



def _rms(x: np.ndarray) -> np.ndarray:
    """RMS over the last axis, kept as ``[..., 1]``."""
    return np.sqrt(np.mean(np.square(x, dtype=np.float64), -1, keepdims=True)) + _REF


def _ring(shape, clip, t0, amp, freq, tau, rate) -> np.ndarray:
    """Sum of decaying sines ``amp * exp(-t/tau) sin(2 pi freq t)`` starting at fractional
    samples ``t0`` of clips ``clip`` (all ``[m]``), as float32 ``shape = [n, S]``."""
    n, S = shape
    L = int(np.ceil(6 * tau.max(initial=1e-4) * rate)) + 1  # beyond 6 tau it is below -52 dB
    first = np.ceil(t0).astype(np.int64)[:, None] + np.arange(L)  # [m, L] sample indices
    t = (first - t0[:, None]) / rate
    w = amp[:, None] * np.exp(-t / tau[:, None]) * np.sin(2 * np.pi * freq[:, None] * t)
    keep = first < S
    flat = (clip[:, None] * S + first)[keep]
    return np.bincount(flat, w[keep], minlength=n * S).reshape(n, S).astype(np.float32)


def _lookup(spectrum: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """The periodic waveform with complex order ``spectrum [n, _TABLE // 2 + 1]`` (see
    ``MachineSounds._orders``) at shaft angles ``phi [n, S]``: a two-revolution wavetable, read
    with linear interpolation (error below -50 dB up to order 100)."""
    table = np.fft.irfft(spectrum, _TABLE, -1) * (_TABLE / 2)
    pos = (phi % (4 * np.pi)) * (_TABLE / (4 * np.pi))
    i0 = pos.astype(np.int64) % _TABLE
    frac = pos - np.floor(pos)
    return (np.take_along_axis(table, i0, 1) * (1 - frac)
            + np.take_along_axis(table, (i0 + 1) % _TABLE, 1) * frac)


class MachineSounds:
    """Deterministic (given a seed) machine-sound generator; see the module docstring."""

    def __init__(self, cfg: MachineConfig | None = None):
        self.cfg = cfg if cfg is not None else MachineConfig()
        self.cfg.validate()
        self.samples = round(self.cfg.seconds * self.cfg.rate)
        """Samples per clip."""

    def batch(self, step: int, batch_size: int, seed: int = 0, rank: int = 0) -> MachineClips:
        """Normal clips only (for training), a deterministic function of ``(seed, step, rank)``
        like :meth:`monde.worlds.balls.BouncingBalls.batch`."""
        return self.sample(batch_size, np.random.default_rng([seed, step, rank]))

    def sample(self, n: int, rng: np.random.Generator | int,
               fault: str | Sequence[str] | None = None,
               severity: float | None = None) -> MachineClips:
        """``n`` clips: all normal (``fault=None``), all with one fault, or one entry per clip
        (``"normal"`` or a fault name). ``severity`` fixes the severity of faulty clips
        (default: drawn from ``cfg.severity``)."""
        cfg, rng, S, sr = self.cfg, _rng(rng), self.samples, self.cfg.rate
        faults = [fault or "normal"] * n if fault is None or isinstance(fault, str) else list(fault)
        if len(faults) != n or any(f not in FAULTS + ("normal",) for f in faults):
            raise ConfigError(f"fault must be None, 'normal', one of {FAULTS} or a list of n={n} "
                              f"of those, got {fault!r}")
        if severity is not None and not severity >= 0:
            raise ConfigError(f"severity must be >= 0, got {severity}")
        # ---- the normal machine: every draw here comes before any fault draw
        f0 = np.exp(rng.uniform(*np.log(cfg.shaft_hz), n))
        t = np.arange(S) / sr
        load = rng.uniform(0, cfg.load_am, (n, 1)) * np.sin(
            2 * np.pi * rng.uniform(0.3, 3, (n, 1)) * t + rng.uniform(0, 2 * np.pi, (n, 1)))
        ramp = rng.uniform(-cfg.speed_ramp, cfg.speed_ramp, (n, 1)) * (t / cfg.seconds - 0.5)
        inst = f0[:, None] * (1 + ramp - 0.1 * load)  # heavier load, slower shaft
        phi = 2 * np.pi * np.cumsum(inst, -1) / sr + rng.uniform(0, 2 * np.pi, (n, 1))
        amp, phase = self._orders(rng, n)
        hum = (rng.random((n, 1)) < cfg.hum_prob) * rng.uniform(0.1, 0.5, (n, 1)) * np.sin(
            2 * np.pi * rng.choice([100.0, 120.0], (n, 1)) * t + rng.uniform(0, 6.3, (n, 1)))
        flow = rng.standard_normal((n, S), np.float32) * (1 + rng.uniform(0, 0.5, (n, 1)) * np.cos(
            rng.integers(_BLADES[0], _BLADES[1] + 1, (n, 1)) * phi))  # blade-pass modulation
        flow *= 10 ** (rng.uniform(*cfg.flow_db, (n, 1)) / 20) / _rms(flow)
        n_clicks = rng.poisson(cfg.clicks * cfg.seconds, n)
        m = int(n_clicks.sum())
        clicks = _ring((n, S), np.repeat(np.arange(n), n_clicks), rng.uniform(0, S - 1, m),
                       rng.uniform(0.5, 3, m), rng.uniform(1000, 6000, m),
                       rng.uniform(2e-4, 2e-3, m), sr)
        housing = self._housing(rng, n)
        snr = rng.uniform(*cfg.snr_db, (n, 1))
        beta = rng.uniform(*cfg.noise_color, (n, 1))
        noise = rng.standard_normal((n, 2, housing.shape[1]), np.float32)
        gain = 10 ** (rng.uniform(*cfg.gain_db, (n, 1)) / 20)
        seeds = rng.integers(2**63, size=len(FAULTS))
        # ---- render the normal machine; flow, clicks, faults and noise are set against its
        # tonal RMS, so a fault adds sound without making the fan or the background louder.
        tonal = _lookup(amp * np.exp(1j * phase), phi) * (1 + load)
        ref = _rms(tonal + hum)
        spec = np.fft.rfft(tonal + hum + (flow + clicks) * ref, axis=-1) * housing
        f = np.fft.rfftfreq(S, 1 / sr)
        bg = (noise[:, 0] + 1j * noise[:, 1]) * np.maximum(f, 100.0) ** (-beta / 2)
        bg[:, 0] = 0
        # Power ~ f**-beta, scaled by Parseval to the SNR against the normal machine.
        spec += bg * np.sqrt((np.abs(spec) ** 2).sum(-1, keepdims=True)
                             / (np.abs(bg) ** 2).sum(-1, keepdims=True)) * 10 ** (-snr / 20)
        # ---- faults: each draws from its own stream, so the normal draws stay unchanged
        sev, order = np.zeros(n), np.zeros(n)
        for name, fseed in zip(FAULTS, seeds):
            idx = np.array([j for j, x in enumerate(faults) if x == name], np.int64)
            if idx.size == 0:
                continue
            frng = np.random.default_rng(fseed)
            sev[idx] = frng.uniform(*cfg.severity, idx.size) if severity is None else severity
            damp = np.zeros((idx.size, amp.shape[1]))  # added order amplitudes
            extra = np.zeros((idx.size, S), np.float32)  # added sound, in units of `ref`
            am = np.ones((idx.size, S), np.float32)  # modulation of the tonal part
            order[idx] = getattr(self, "_" + name)(frng, sev[idx], phi[idx], amp[idx], damp,
                                                   extra, am)
            part = tonal[idx] * (am - 1) + extra * ref[idx]
            if damp.any():
                part += _lookup(damp * np.exp(1j * phase[idx]), phi[idx]) * (1 + load[idx]) * am
            spec[idx] += np.fft.rfft(part, axis=-1) * housing[idx]
        audio = np.fft.irfft(spec, S, -1)
        audio *= gain / _rms(audio)
        f32 = np.float32
        return MachineClips(audio.astype(f32), sr, faults, inst.mean(-1).astype(f32),
                            sev.astype(f32), order.astype(f32))

    def _orders(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Amplitudes and phases ``[n, _TABLE // 2 + 1]`` of the tonal part by order (index 2k
        is order k, 2k + 1 order k + 1/2): shaft harmonics and, for some clips, a gear mesh."""
        cfg, H = self.cfg, self.cfg.harmonics
        k = np.arange(2, H + 1)
        amp = np.zeros((n, _TABLE // 2 + 1))
        amp[:, 2] = rng.uniform(0.6, 1.0, n)  # 1x: the residual imbalance of a healthy rotor
        amp[:, 2 * k] = (np.exp(rng.uniform(*np.log([0.3, 1.0]), (n, 1)))
                         * k ** -rng.uniform(*cfg.harmonic_decay, (n, 1))
                         * 10 ** (rng.normal(0, cfg.harmonic_jitter_db, (n, H - 1)) / 20))
        teeth = rng.integers(cfg.gear_teeth[0], cfg.gear_teeth[1] + 1, n)
        gear = (rng.random(n) < cfg.gear_prob) * np.exp(rng.uniform(*np.log([0.3, 1.5]), n))
        rows = np.arange(n)
        second, below, above = (rng.uniform(lo, hi, n) for lo, hi in ((0.3, 0.6), (0.1, 0.3),
                                                                      (0.1, 0.3)))
        for z, rel in ((teeth, 1.0), (2 * teeth, second), (teeth - 1, below), (teeth + 1, above)):
            amp[rows, 2 * z] += gear * rel  # mesh tone, its 2nd harmonic and 1x sidebands
        return amp, rng.uniform(0, 2 * np.pi, amp.shape)

    # ------------------------------------------------------------------ colouring and faults
    def _housing(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Housing transfer gains ``[n, F]`` over the rfft bins: a tilt plus resonant bumps."""
        cfg = self.cfg
        octs = np.log2(np.maximum(np.fft.rfftfreq(self.samples, 1 / cfg.rate), 10.0) / 1000)
        # The tilt flattens out below 100 Hz: it models radiation and damping, not a filter.
        db = rng.uniform(-cfg.tilt_db, cfg.tilt_db, (n, 1)) * np.maximum(octs, np.log2(0.1))
        for _ in range(cfg.resonances):
            centre = rng.uniform(np.log2(0.3), np.log2(6.0), (n, 1))  # octaves re 1 kHz
            width = rng.uniform(0.1, 0.4, (n, 1))
            db = db + rng.uniform(3, 15, (n, 1)) * np.exp(-0.5 * ((octs - centre) / width) ** 2)
        return (10 ** (db / 20)).astype(np.float32)

    # Each fault gets its rows of the batch: severities ``sev [m]``, shaft angles ``phi [m, S]``
    # and normal order amplitudes ``amp [m, F]`` (read only); it fills in added order amplitudes
    # ``damp``, added sound ``extra [m, S]`` in units of the tonal RMS, and a modulation ``am``
    # of the tonal part, and returns the fault's order (see ``MachineClips.fault_order``).
    def _bearing(self, rng, sev, phi, amp, damp, extra, am) -> np.ndarray:
        """Strikes at defect order r, ringing a 2-5 kHz resonance, stronger in the load zone."""
        m, sr = len(sev), self.cfg.rate
        r = rng.uniform(3.1, 3.9, m) + rng.integers(0, 2, m)  # never an integer order
        psi = phi * (r / (2 * np.pi))[:, None]  # strikes so far, fractional
        count = np.floor(psi)
        c, s = np.nonzero(np.diff(count, axis=-1))  # a strike between samples s and s + 1
        t0 = s + (count[c, s + 1] - psi[c, s]) / (psi[c, s + 1] - psi[c, s])
        period = 2 * np.pi / (r * np.diff(phi, axis=-1).mean(-1))  # samples between strikes
        t0 = t0 + rng.normal(0, 0.01, t0.size) * period[c]  # rolling-element slip
        zone = 1 + rng.uniform(0, 0.8, m)[c] * np.cos(phi[c, s] + rng.uniform(0, 6.3, m)[c])
        a = zone * np.clip(rng.normal(1, 0.2, c.size), 0.3, None)
        ring = _ring(extra.shape, c, t0, a, rng.uniform(2000, 5000, m)[c],
                     rng.uniform(3e-4, 1e-3, m)[c], sr)
        extra += ring * (0.5 * sev[:, None] / _rms(ring))
        return r

    def _imbalance(self, rng, sev, phi, amp, damp, extra, am) -> np.ndarray:
        """A larger 1x harmonic and amplitude modulation of the tonal part at the shaft rate."""
        damp[:, 2] = 10 * sev * amp[:, 2]
        am[:] = 1 + 0.3 * sev[:, None] * np.cos(phi + rng.uniform(0, 6.3, (len(sev), 1)))
        return np.ones(len(sev))

    def _rubbing(self, rng, sev, phi, amp, damp, extra, am) -> np.ndarray:
        """Friction bursts over a contact arc, on some or on every other revolution."""
        m, S = extra.shape
        where = phi - rng.uniform(0, 2 * np.pi, (m, 1))  # angle from the contact point
        rev = np.floor(where / (2 * np.pi) + 0.5).astype(np.int64)
        rev -= rev[:, :1]
        half = rng.random(m) < 0.5  # every other revolution: a 0.5x sub-harmonic
        hits = rng.random((m, int(rev.max()) + 1)) < rng.uniform(0.5, 1, (m, 1))
        hits = np.where(half[:, None], np.arange(hits.shape[1]) % 2 == 0, hits)
        edge = np.cos(np.pi * rng.uniform(0.05, 0.25, (m, 1)))  # contact arc of 5-25%
        gate = np.clip((np.cos(where) - edge) / (1 - edge), 0, 1) ** 2
        gate *= np.take_along_axis(hits, rev, 1)
        # Friction is broadband, rising with frequency: first difference of white noise.
        burst = np.diff(rng.standard_normal((m, S + 1), np.float32), axis=-1) * gate
        extra += burst * (0.35 * sev[:, None] / _rms(burst))
        damp[:, 1] = np.where(half, 0.3 * sev * amp[:, 2], 0)
        return np.where(half, 0.5, 1.0)

    def _looseness(self, rng, sev, phi, amp, damp, extra, am) -> np.ndarray:
        """Half-order harmonics and stronger higher harmonics (a part rattling every 2 revs)."""
        k = np.arange(self.cfg.harmonics)
        level = amp[:, 2 * k + 2].mean(-1, keepdims=True)
        damp[:, 2 * k + 1] = (2.5 * sev[:, None] * level * (k + 1) ** -0.5
                              * np.exp(rng.normal(0, 0.5, (len(sev), k.size))))
        damp[:, 2 * k[2:] + 2] = sev[:, None] * amp[:, 2 * k[2:] + 2]
        return np.full(len(sev), 0.5)
