"""The spectral audio JEPA: its front end, config checks, learning, surprise, recipe and evals."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

pytest.importorskip("soundfile")

from monde.cli import main  # noqa: E402
from monde.data.audio import write_audio  # noqa: E402
from monde.data.spectrum import MachineSpectrum, SpectrumConfig, grid_hz  # noqa: E402
from monde.errors import ConfigError, DataError  # noqa: E402
from monde.jepa.spectral_audio import SpectralAudioConfig, SpectralAudioJEPA  # noqa: E402
from monde.jepa.spectral_audio_world_model import SpectralAudioWorldModel  # noqa: E402

RATE = 8000
TINY = ["train.steps=2", "train.batch_size=4", "model.width=16", "model.latent=8",
        "data.machine_pool=8", "train.checkpoint_every=2"]


def small_spectrum(**kw) -> SpectrumConfig:
    base = dict(rate=RATE, samples=4096, f_min=15.625, octaves=8, per_octave=16,
                envelope_from=1000.0, envelope_to=500.0)
    return SpectrumConfig(**{**base, **kw})


def small(**kw) -> SpectralAudioConfig:
    base = dict(spectrum=small_spectrum(), width=16, latent=8, span=(2, 6), score_span=4)
    return SpectralAudioConfig(**{**base, **kw})


def machines(n: int, samples: int, rng: np.random.Generator, half_orders: bool = False):
    """Harmonic series at a random shaft rate (40–120 Hz), with random harmonic levels and
    noise; ``half_orders`` adds tones halfway between the harmonics (a rattling part)."""
    t = np.arange(samples) / RATE
    out = np.zeros((n, samples), np.float32)
    for i in range(n):
        f0 = np.exp(rng.uniform(np.log(40), np.log(120)))
        orders = [k for k in range(1, 13)] + ([k + 0.5 for k in range(0, 12)] if half_orders else [])
        for k in orders:
            level = k ** -0.7 * np.exp(rng.normal(0, 0.3)) * (0.6 if k % 1 else 1.0)
            out[i] += level * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi))
        out[i] += 0.05 * rng.standard_normal(samples)
    return torch.from_numpy(out)


def test_front_end_reads_tones_and_modulation_and_ignores_gain():
    cfg = small_spectrum()
    fe = MachineSpectrum(cfg)
    t = torch.arange(cfg.samples) / RATE
    noise = torch.randn(cfg.samples, generator=torch.Generator().manual_seed(0))
    tone = torch.sin(2 * math.pi * 250 * t) + 0.01 * noise
    # noise in the high band, amplitude modulated at 60 Hz (an impacting part)
    hi = torch.fft.irfft(torch.fft.rfft(noise) * (torch.fft.rfftfreq(cfg.samples, 1 / RATE) > 1500),
                         cfg.samples)
    pulsing = hi * (1 + 0.8 * torch.sin(2 * math.pi * 60 * t)) + 0.01 * noise
    spec = fe(torch.stack([tone, 10 * tone, pulsing, 0.1 * pulsing]))
    assert spec.shape == (4, 2, cfg.bins) and torch.isfinite(spec).all()
    f = grid_hz(cfg)
    assert abs(float(f[spec[0, 0].argmax()]) - 250) < 250 * (2 ** (1 / 16) - 1)
    # the microphone's gain drops out
    torch.testing.assert_close(spec[0], spec[1], atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(spec[2], spec[3], atol=1e-3, rtol=1e-3)
    env = spec[2, 1]
    assert abs(float(f[env.argmax()]) - 60) < 60 * (2 ** (1 / 16) - 1) + 2
    assert (env[f > cfg.envelope_to] == 0).all()
    assert torch.isfinite(fe(torch.zeros(2, cfg.samples))).all()  # digital silence
    fl = MachineSpectrum(small_spectrum(fluctuation_frame=256))
    bursts = fl(torch.stack([noise, noise * (torch.rand(cfg.samples // 256) > 0.5)
                             .float().repeat_interleave(256)]))
    assert bursts.shape == (2, 3, cfg.bins)
    assert float(bursts[1, 2].mean()) > 2 * float(bursts[0, 2].mean())  # bursts fluctuate
    with pytest.raises(DataError, match="windows"):
        fe(torch.zeros(2, 100))


def test_config_checks_say_what_to_change():
    with pytest.raises(ConfigError, match="below rate/2"):
        small_spectrum(octaves=9).validate()
    with pytest.raises(ConfigError, match="multiple of 4"):
        SpectralAudioJEPA(small(spectrum=small_spectrum(octaves=7, per_octave=15)))
    with pytest.raises(ConfigError, match="multiple of 8"):
        SpectralAudioJEPA(small(width=12))
    with pytest.raises(ConfigError, match="span"):
        SpectralAudioJEPA(small(span=(4, 100)))


def test_latents_do_not_depend_on_the_rest_of_the_batch():
    net = SpectralAudioJEPA(small(), seed=0).eval()
    x = machines(4, 4096, np.random.default_rng(0))
    torch.testing.assert_close(net.encode(x)[:1], net.encode(x[:1]), atol=1e-5, rtol=1e-4)
    m = net.random_masks(64, torch.Generator().manual_seed(0))
    assert m.any(1).all() and (m.sum(1) <= 3 * 6).all()


@pytest.mark.parametrize("target_grad", [True, False])
def test_detached_targets_train_the_encoder_only_through_the_context(target_grad):
    """With ``target_grad=False`` (regulariser off) the encoder's gradient is that of the
    prediction loss against fixed targets; with the default it also pulls the targets."""
    net = SpectralAudioJEPA(small(std_weight=0.0, cov_weight=0.0, target_grad=target_grad))
    x = machines(4, 4096, np.random.default_rng(0))
    enc = list(net.encoder.parameters())
    got = torch.autograd.grad(net(x, generator=torch.Generator().manual_seed(0)).loss, enc)
    spec = net.spectrum(x)
    with torch.no_grad():
        fixed = net.encode_spectrum(spec)
    masked = net.random_masks(4, torch.Generator().manual_seed(0))
    sel = masked[:, None].expand_as(fixed)
    want = torch.autograd.grad(
        torch.nn.functional.mse_loss(net.predict(spec, masked)[sel], fixed[sel]), enc)
    same = all(torch.allclose(a, b, atol=1e-7, rtol=1e-5) for a, b in zip(got, want))
    assert same != target_grad


def test_learns_harmonic_series_and_half_orders_are_surprising():
    torch.manual_seed(0)
    net = SpectralAudioJEPA(small(), seed=0)
    rng = np.random.default_rng(0)
    net.fit_normalization(machines(128, 4096, rng))
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    first = last = None
    for step in range(120):
        out = net(machines(16, 4096, rng), step=step, generator=gen)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        first = float(out.loss) if first is None else first
        last = float(out.loss)
    assert last < 0.5 * first
    net.eval()
    test = np.random.default_rng(1)
    normal = net.position_errors(machines(24, 4096, test)).mean(1)
    loose = net.position_errors(machines(24, 4096, test, half_orders=True)).mean(1)
    from monde.evals.physics import auroc

    assert auroc(loose.numpy(), normal.numpy()) > 0.9


def test_surprise_streams_a_file_and_refuses_a_short_sound(tmp_path):
    cfg = small()
    wm = SpectralAudioWorldModel(SpectralAudioJEPA(cfg), {})
    x = 0.1 * machines(1, 3 * 4096, np.random.default_rng(0))[0]  # no clipping in the file
    r = wm.surprise(x)
    assert len(r.scores) == 5 and np.all(np.isfinite(r.scores))
    write_audio(tmp_path / "a.wav", x.numpy(), RATE)
    f = wm.surprise(str(tmp_path / "a.wav"))
    np.testing.assert_allclose(f.scores, r.scores, rtol=1e-3, atol=1e-5)
    assert wm.encode(x[:4096]).shape == (1, cfg.positions, cfg.latent)
    assert wm.encode(x[:4096], pool=True).shape == (1, cfg.latent)
    with pytest.raises(DataError, match="longer sound"):
        wm.surprise(x[:100])
    with pytest.raises(ConfigError, match="tokens"):
        wm.surprise(x, tokens="median")
    with pytest.raises(DataError, match="windows of mono sound"):
        wm.encode(torch.zeros(2, 100))


def test_recipe_cli_load_eval_surprise_and_resume(tmp_path, capsys):
    import monde
    from monde.evals.fsdd import audio_twin
    from monde.evals.machine import MachineProtocol, machine_eval
    from test_audio_model import noise_folder

    out = tmp_path / "s"
    assert main(["train", "audio-spectral-tiny", "--out", str(out), "--quiet", *TINY]) == 0
    model = monde.load(out)
    assert isinstance(model, SpectralAudioWorldModel) and model.meta["steps"] == 2
    # the normalisation fitted before training travels with the weights
    assert not torch.allclose(model.jepa.mean, torch.zeros_like(model.jepa.mean))
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["modality"] == "audio" and "along frequency" in info["encoder"]
    r = machine_eval(model, MachineProtocol(normal_fit=30, normal_test=10, per_fault=10))
    assert all(0 <= x <= 1 for v in r["faults"].values() for x in v.values())
    with pytest.raises(ConfigError, match="machine monitoring"):
        audio_twin(model, 0)
    wav, png = tmp_path / "x.wav", tmp_path / "x.png"
    write_audio(wav, np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1,
                16000)
    assert main(["surprise", str(wav), "--model", str(out), "--plot", str(png), "--json"]) == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["windows"] == 3 and png.stat().st_size > 1000
    # rerunning the same command finds the finished run and trains nothing more
    assert main(["train", "audio-spectral-tiny", "--out", str(out), "--quiet", "--json",
                 *TINY]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["resumed"] and again["steps"] == 2
    assert main(["train", "audio-spectral-tiny", "--out", str(tmp_path / "bad"), "--quiet",
                 *TINY, "data.machine_pool=-1"]) != 0
    assert "machine_pool must be >= 0" in capsys.readouterr().err
    # your own folder of sounds (any rate: resampled to the model's 16 kHz)
    folder = noise_folder(tmp_path / "sounds")
    u = tmp_path / "u"
    assert main(["train", "audio-spectral", "--data", str(folder), "--out", str(u), "--quiet",
                 *TINY[:-2], "train.checkpoint_every=2"]) == 0
    assert monde.load(u).meta["recipe"] == "audio-spectral"
