"""Sound files and log-mel spectrograms: read, resample, stream, and turn bad input into errors."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from monde.data.audio import (
    audio_info,
    iter_audio_windows,
    read_audio,
    resample,
    write_audio,
)
from monde.data.logmel import LogMel, MelConfig, hz_to_mel, mel_filterbank, mel_to_hz
from monde.errors import ConfigError, DataError

sf = pytest.importorskip("soundfile", reason="needs soundfile (pip install 'monde[audio]')")

PCM16 = 1 / 32768  # one step of 16-bit PCM


def _tone(freq: float, rate: int, n: int, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.float32)


def _db(x: torch.Tensor, ref: float) -> float:
    return 20 * math.log10(x.double().pow(2).mean().sqrt().item() / ref)


# ------------------------------------------------------------------------------- reading
@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_read_wav_and_flac(tmp_path, suffix):
    x = _tone(440, 16000, 8000)
    path = tmp_path / f"tone{suffix}"
    sf.write(path, x, 16000)
    y, rate = read_audio(path)
    assert rate == 16000 and y.dtype == torch.float32 and y.shape == (1, 8000)
    assert np.abs(y[0].numpy() - x).max() <= PCM16
    info = audio_info(path)
    assert (info.frames, info.rate, info.channels) == (8000, 16000, 1)
    assert info.seconds == pytest.approx(0.5) and info.format.startswith(suffix[1:].upper())


def test_stereo_to_mono_and_start_duration(tmp_path):
    left, right = _tone(300, 8000, 8000), _tone(700, 8000, 8000, amp=0.25)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], 1), 8000, subtype="FLOAT")
    both, _ = read_audio(path, mono=False)
    assert both.shape == (2, 8000)
    np.testing.assert_allclose(both.numpy(), np.stack([left, right]), atol=1e-7)
    mono, _ = read_audio(path)
    np.testing.assert_allclose(mono[0].numpy(), (left + right) / 2, atol=1e-7)
    part, _ = read_audio(path, start=0.25, duration=0.5)
    np.testing.assert_allclose(part[0].numpy(), ((left + right) / 2)[2000:6000], atol=1e-7)


def test_resample_on_read(tmp_path):
    path = tmp_path / "hi.wav"
    sf.write(path, _tone(1000, 48000, 48000), 48000, subtype="FLOAT")
    y, rate = read_audio(path, rate=16000)
    assert rate == 16000 and y.shape == (1, 16000)
    ref = torch.from_numpy(_tone(1000, 16000, 16000))
    assert (y[0, 100:-100] - ref[100:-100]).abs().max() < 1e-3


def test_write_audio_round_trip(tmp_path):
    x = torch.from_numpy(np.stack([_tone(200, 16000, 1600), _tone(900, 16000, 1600)]))
    write_audio(tmp_path / "w.flac", x, 16000)
    y, _ = read_audio(tmp_path / "w.flac", mono=False)
    assert (y - x).abs().max() <= PCM16
    with pytest.raises(DataError, match=r"\[C, N\]"):
        write_audio(tmp_path / "bad.wav", np.zeros((2, 3, 4)), 16000)


# ----------------------------------------------------------------------------- bad input
def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_audio(tmp_path / "nope.wav")


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x00\x00garbage that is not a wave file" * 10)
    with pytest.raises(DataError, match="corrupt.wav.*re-encode"):
        read_audio(path)


def test_empty_files(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty.wav.*0 bytes"):
        read_audio(empty)
    no_samples = tmp_path / "nosamples.wav"
    sf.write(no_samples, np.zeros((0, 1), np.float32), 16000)
    with pytest.raises(DataError, match="nosamples.wav.*no samples"):
        read_audio(no_samples)


def test_non_finite_samples(tmp_path):
    x = _tone(440, 8000, 800)
    x[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, x, 8000, subtype="FLOAT")
    with pytest.raises(DataError, match="nan.wav.*NaN"):
        read_audio(path)


def test_start_past_end_and_bad_arguments(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, _tone(440, 8000, 800), 8000)
    with pytest.raises(DataError, match="past the end"):
        read_audio(path, start=1.0)
    with pytest.raises(DataError, match="duration > 0"):
        read_audio(path, duration=0)


def test_missing_soundfile_is_a_config_error(tmp_path, monkeypatch):
    path = tmp_path / "x.wav"
    sf.write(path, _tone(440, 8000, 800), 8000)
    monkeypatch.setitem(sys.modules, "soundfile", None)
    with pytest.raises(ConfigError, match=r"monde\[audio\]"):
        read_audio(path)


# ------------------------------------------------------------------------------ resample
@pytest.mark.parametrize(
    "orig,new", [(48000, 16000), (44100, 16000), (16000, 22050), (8000, 16000)]
)
def test_resample_keeps_a_tone(orig, new):
    x = torch.from_numpy(_tone(1000, orig, orig // 2))
    y = resample(x, orig, new)
    assert y.shape[-1] == math.ceil(x.shape[-1] * new / orig)
    ref = torch.from_numpy(_tone(1000, new, y.shape[-1]))
    assert (y - ref)[200:-200].abs().max() < 1e-3  # away from the zero-padded ends


def test_resample_removes_what_the_new_rate_cannot_hold():
    # 10 kHz and 9 kHz would alias to 6 and 7 kHz at 16 kHz: they must vanish instead.
    for freq in (10000, 9000):
        y = resample(torch.from_numpy(_tone(freq, 48000, 48000)), 48000, 16000)
        assert _db(y[300:-300], 0.5 / math.sqrt(2)) < -30


def test_resample_lengths_identity_and_batches():
    for n, orig, new in [(1, 48000, 16000), (1001, 16000, 22050), (7, 3, 2), (100, 44100, 48000)]:
        assert resample(torch.zeros(n), orig, new).shape == (math.ceil(n * new / orig),)
    x = torch.randn(3, 2, 1001)
    assert resample(x, 16000, 16000) is x
    y = resample(x, 16000, 22050)
    assert y.shape == (3, 2, 1380) and y.dtype == torch.float32
    torch.testing.assert_close(y[1, 0], resample(x[1, 0], 16000, 22050), rtol=1e-5, atol=1e-6)
    assert resample(x.double(), 16000, 22050).dtype == torch.float64


# ------------------------------------------------------------------------------ windows
def test_windows_match_the_whole_file(tmp_path):
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal((3 * 8000 + 123, 2))).astype(np.float32)
    path = tmp_path / "long.flac"
    sf.write(path, x, 8000)
    whole, _ = read_audio(path, mono=False)
    wins = list(iter_audio_windows(path, window=1.0, hop=0.75, mono=False))
    assert [s for s, _ in wins] == [0.0, 0.75, 1.5]  # a 4th window would run past 3.02 s
    for start, w in wins:
        i = round(start * 8000)
        assert w.shape == (2, 8000)
        torch.testing.assert_close(w, whole[:, i : i + 8000], rtol=0, atol=0)
    # Resampled windows that start on the output grid equal the resampled whole file.
    high, _ = read_audio(path, rate=12000)
    for start, w in iter_audio_windows(path, window=0.5, hop=0.5, rate=12000):
        i = round(start * 12000)
        assert w.shape == (1, 6000)
        torch.testing.assert_close(w, high[:, i : i + 6000], rtol=0, atol=1e-5)


def test_window_longer_than_the_file(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, _tone(440, 8000, 4000), 8000)
    with pytest.raises(DataError, match=r"short.wav: too short for one window: 0.500s.*2.0s"):
        next(iter_audio_windows(path, window=2.0))


# -------------------------------------------------------------------------------- log-mel
def test_mel_scale_round_trip():
    f = torch.tensor([0.0, 500.0, 1000.0, 4000.0, 8000.0], dtype=torch.float64)
    torch.testing.assert_close(mel_to_hz(hz_to_mel(f)), f)
    assert hz_to_mel(torch.tensor([1000.0])).item() == pytest.approx(15.0)


def test_filterbank_is_non_negative_and_covers_the_range():
    cfg = MelConfig()
    fb = mel_filterbank(cfg)
    assert fb.shape == (64, 201) and (fb >= 0).all()
    assert (fb.sum(1) > 0).all()  # no empty band
    assert (fb[:, 1:-1].sum(0) > 0).all()  # every bin strictly inside (0, rate/2) is seen
    with pytest.raises(ConfigError, match="no FFT bin"):
        mel_filterbank(MelConfig(n_mels=200))


def test_tone_peaks_in_its_band():
    m = LogMel()
    centres = mel_to_hz(torch.linspace(hz_to_mel(torch.tensor([0.0])).item(),
                                       hz_to_mel(torch.tensor([8000.0])).item(), 66))[1:-1]
    for freq in (250.0, 1000.0, 3000.0, 6500.0):
        y = m(torch.from_numpy(_tone(freq, 16000, 16000))[None])
        band = y[0].mean(-1).argmax().item()
        assert abs(band - (centres - freq).abs().argmin().item()) <= 1


def test_shapes_batches_and_white_noise():
    m = LogMel()
    x = torch.randn(3, 2, 16000)
    y = m(x)
    assert y.shape == (3, 2, 64, m.frames(16000)) == (3, 2, 64, 101)
    assert m(x[:, 0]).shape == (3, 64, 101)
    torch.testing.assert_close(y[1, 1], m(x[1:2, 1])[0], rtol=1e-4, atol=1e-4)
    # Area-normalised filters: white noise gives about the same level in every band.
    level = m(torch.randn(8, 32000)).mean((0, 2))
    assert (level.max() - level.min()) < 0.6
    assert m.frames(1000) == m(torch.randn(1, 1000)).shape[-1]


def test_logmel_runs_in_float32_under_autocast():
    m = LogMel()
    x = torch.randn(2, 4000)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x.bfloat16())
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    torch.testing.assert_close(y, m(x.bfloat16().float()))
    assert m.bfloat16()(x).dtype == torch.float32  # a module cast still computes in float32
    assert dict(m.state_dict()) == {}  # buffers follow .to() but stay out of checkpoints
    assert {n for n, _ in m.named_buffers()} == {"fb", "window"}


def test_mel_config_errors():
    for bad in (MelConfig(n_fft=1), MelConfig(f_min=9000.0), MelConfig(f_max=9000.0),
                MelConfig(log_offset=0.0), MelConfig(hop=0)):
        with pytest.raises(ConfigError, match="MelConfig"):
            bad.validate()
    with pytest.raises(DataError, match="too short"):
        LogMel()(torch.zeros(1, 100))
    with pytest.raises(DataError, match=r"\[B, N\]"):
        LogMel()(torch.zeros(100))
