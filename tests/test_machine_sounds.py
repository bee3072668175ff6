"""Machine sounds: shapes, determinism, normal variety, and what each fault changes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from monde.errors import ConfigError
from monde.worlds.machine_sounds import FAULTS, MachineConfig, MachineSounds

N = 48


@pytest.fixture(scope="module")
def gen() -> MachineSounds:
    return MachineSounds()


@pytest.fixture(scope="module")
def normal(gen):
    return gen.sample(N, 7)


@pytest.fixture(scope="module")
def faulty(gen):
    """The same machines as ``normal`` (same seed), each with one fault at severity 0.75."""
    return {f: gen.sample(N, 7, f, severity=0.75) for f in FAULTS}


def _auroc(neg: np.ndarray, pos: np.ndarray) -> float:
    """Probability that a positive scores above a negative (Mann-Whitney)."""
    return float((pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean())


def _power(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies [F] and Hann-windowed power spectra [n, F] of 16 kHz clips."""
    S = audio.shape[-1]
    return np.fft.rfftfreq(S, 1 / 16000), np.abs(np.fft.rfft(audio * np.hanning(S))) ** 2


def _order_power(clips, orders, width=0.07) -> np.ndarray:
    """[n]: power within +-width (relative) of each order x shaft rate, summed over orders."""
    f, P = _power(clips.audio.astype(np.float64))
    f0 = clips.shaft_hz[:, None]
    total = np.zeros(len(P))
    for o in orders:
        total += np.where(np.abs(f - o * f0) <= width * o * f0 + 1.5, P, 0).sum(1)
    return total


def _envelope_spectrum(audio: np.ndarray, lo: float, hi: float):
    """Frequencies and spectrum of the squared envelope of the lo..hi Hz band, median 1."""
    S = audio.shape[-1]
    f = np.fft.rfftfreq(S, 1 / 16000)
    band = np.fft.irfft(np.fft.rfft(audio.astype(np.float64)) * ((f > lo) & (f < hi)), S)
    env = band**2 - (band**2).mean(-1, keepdims=True)
    E = np.abs(np.fft.rfft(env))
    return f, E / np.median(E[:, 5:500], -1, keepdims=True)


def _highpass(audio: np.ndarray, lo: float) -> np.ndarray:
    S = audio.shape[-1]
    keep = np.fft.rfftfreq(S, 1 / 16000) > lo
    return np.fft.irfft(np.fft.rfft(audio.astype(np.float64)) * keep, S)


def _peak_at(f, E, hz, tol=0.04) -> np.ndarray:
    return np.where(np.abs(f - hz[:, None]) <= tol * hz[:, None] + 1, E, 0).max(-1)


def test_shapes_and_finite(normal):
    assert normal.audio.shape == (N, 16000) and normal.audio.dtype == np.float32
    assert np.isfinite(normal.audio).all() and np.abs(normal.audio).max() < 1
    assert normal.rate == 16000 and normal.fault == ["normal"] * N
    assert normal.shaft_hz.shape == normal.severity.shape == normal.fault_order.shape == (N,)
    assert (normal.severity == 0).all() and (normal.fault_order == 0).all()
    assert ((normal.shaft_hz > 13) & (normal.shaft_hz < 66)).all()


def test_deterministic(gen, normal):
    again = gen.sample(N, 7)
    np.testing.assert_array_equal(again.audio, normal.audio)
    assert not np.allclose(gen.sample(N, 8).audio, normal.audio)
    b = gen.batch(3, 4, seed=1, rank=0)
    np.testing.assert_array_equal(b.audio, gen.batch(3, 4, seed=1, rank=0).audio)
    assert not np.allclose(b.audio, gen.batch(3, 4, seed=1, rank=1).audio)
    assert not np.allclose(b.audio, gen.batch(4, 4, seed=1, rank=0).audio)
    assert b.fault == ["normal"] * 4


def test_zero_severity_is_the_normal_machine(gen, normal):
    for f in FAULTS:
        np.testing.assert_allclose(gen.sample(N, 7, f, severity=0.0).audio, normal.audio,
                                   atol=1e-6)


def test_mixed_faults(gen):
    kinds = ["normal", "bearing", "rubbing", "normal", "looseness", "imbalance"]
    c = gen.sample(6, 0, kinds)
    assert c.fault == kinds and ((c.severity > 0) == [k != "normal" for k in kinds]).all()
    assert c.fault_order[1] > 3 and c.fault_order[5] == 1


def test_normal_clips_vary_and_show_their_shaft_rate(normal):
    gen = MachineSounds(MachineConfig(speed_ramp=0.0, load_am=0.0))
    c = gen.sample(N, 3)
    f, P = _power(c.audio.astype(np.float64))
    local = [np.median(P[i, (f > 0.5 * s) & (f < 1.5 * s)]) for i, s in enumerate(c.shaft_hz)]
    peak = [P[i, np.abs(f - s) <= 1.5].max() for i, s in enumerate(c.shaft_hz)]
    # A line at 1x, 10 dB above its neighbourhood, unless low-frequency noise buries it.
    assert np.mean(np.array(peak) > 10 * np.array(local)) > 0.85
    # Spectral shape varies a lot between normal clips: centroids spread over octaves.
    f, P = _power(normal.audio.astype(np.float64))
    centroid = (P * f).sum(1) / P.sum(1)
    assert centroid.max() / centroid.min() > 4
    assert normal.shaft_hz.max() / normal.shaft_hz.min() > 2.5


def test_bearing_strikes_at_the_defect_frequency(normal, faulty):
    c = faulty["bearing"]
    r = c.fault_order
    assert ((r > 3) & (r < 5) & (np.abs(r - np.round(r)) >= 0.1)).all()
    f, E = _envelope_spectrum(c.audio, 2000, 6000)
    _, En = _envelope_spectrum(normal.audio, 2000, 6000)
    defect = r * c.shaft_hz
    assert np.mean(_peak_at(f, E, defect) > 2 * _peak_at(f, En, defect)) > 0.85
    def kurtosis(a):  # of the band above 2 kHz: impulsive sound has heavy tails
        x = _highpass(a, 2000)
        return (x**4).mean(-1) / (x**2).mean(-1) ** 2

    assert np.mean(kurtosis(c.audio) > kurtosis(normal.audio)) > 0.8


def test_imbalance_raises_the_1x_share(normal, faulty):
    c = faulty["imbalance"]
    share = lambda clips: _order_power(clips, [1]) / _order_power(clips, range(2, 9))  # noqa: E731
    assert (share(c) > share(normal)).all()
    assert np.median(share(c) / share(normal)) > 10


def test_rubbing_is_peaky_once_per_revolution(normal, faulty):
    c = faulty["rubbing"]
    assert set(c.fault_order) <= {0.5, 1.0}
    f, E = _envelope_spectrum(c.audio, 1000, 7000)
    _, En = _envelope_spectrum(normal.audio, 1000, 7000)
    rate = c.fault_order * c.shaft_hz
    assert np.mean(_peak_at(f, E, rate) > 1.5 * _peak_at(f, En, rate)) > 0.75
    # The high band's envelope gets peakier (bursts over a small arc of each revolution).
    def crest(a):  # loudest 5 ms of the band above 1 kHz against the median 5 ms
        frames = np.abs(_highpass(a, 1000)).reshape(len(a), -1, 80).mean(-1)
        return frames.max(-1) / np.median(frames, -1)

    assert np.mean(crest(c.audio) > crest(normal.audio)) > 0.8


def test_looseness_adds_half_orders(normal, faulty):
    c = faulty["looseness"]
    ratio = lambda clips: (_order_power(clips, [0.5, 1.5, 2.5, 3.5], 0.03)  # noqa: E731
                           / _order_power(clips, [1, 2, 3, 4], 0.03))
    assert np.mean(ratio(c) > 3 * ratio(normal)) > 0.75


def test_loudness_does_not_give_faults_away(normal, gen):
    rms = lambda a: np.sqrt((a.astype(np.float64) ** 2).mean(-1))  # noqa: E731
    ref = rms(gen.sample(100, 11).audio)
    for f in FAULTS:
        assert abs(_auroc(ref, rms(gen.sample(100, 12, f).audio)) - 0.5) < 0.15, f


def test_config_and_argument_errors(gen):
    for bad in (dict(shaft_hz=(60.0, 15.0)), dict(rate=8000), dict(harmonics=200),
                dict(gear_prob=1.5), dict(speed_ramp=0.7), dict(seconds=0.01),
                dict(severity=(-1.0, 1.0))):
        with pytest.raises(ConfigError, match="MachineConfig"):
            dataclasses.replace(MachineConfig(), **bad).validate()
    with pytest.raises(ConfigError, match="fault must be"):
        gen.sample(2, 0, "overheating")
    with pytest.raises(ConfigError, match="fault must be"):
        gen.sample(3, 0, ["normal", "bearing"])
    with pytest.raises(ConfigError, match="severity"):
        gen.sample(2, 0, "bearing", severity=-1.0)
