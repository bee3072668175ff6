"""The frame-causal audio JEPA: causality, config checks, learning, surprise, recipes, evals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("soundfile")

from monde.cli import main  # noqa: E402
from monde.data.audio import write_audio  # noqa: E402
from monde.errors import ConfigError, DataError  # noqa: E402
from monde.jepa.causal_audio import CausalAudioConfig, CausalAudioJEPA  # noqa: E402
from monde.jepa.causal_audio_world_model import CausalAudioWorldModel  # noqa: E402
from monde.nn.specconv import CausalSpecEncoder, HistoryConv1dPredictor  # noqa: E402

TINY = ["train.steps=2", "train.batch_size=4", "model.widths=[8,8,8]",
        "model.map_channels=4", "model.predictor_hidden=16", "train.checkpoint_every=2"]


def tiny(**kw) -> CausalAudioConfig:
    base = dict(sample_rate=8000, n_fft=256, hop=80, n_mels=32, frames=48, widths=(8, 16, 16),
                map_channels=8, context=4, rollout=2, predictor_hidden=32, predictor_layers=3)
    return CausalAudioConfig(**{**base, **kw})


def test_encoder_never_looks_ahead_in_time():
    torch.manual_seed(0)
    enc = CausalSpecEncoder((8, 8, 8), (2, 2, 1), 4)
    x = torch.randn(2, 1, 32, 48)
    z = enc(x)
    assert z.shape == (2, 4, 4, 12)  # 32 mels / 8, 48 frames / 4
    y = x.clone()
    y[..., 20:] = torch.randn_like(y[..., 20:])  # change frames 20.. (step 5 onwards)
    w = enc(y)
    assert torch.equal(z[..., :5], w[..., :5])  # steps 0..4 end at frame 19: unchanged
    assert not torch.allclose(z[..., 5:], w[..., 5:])
    pred = HistoryConv1dPredictor(4, 3, hidden=8, layers=2)
    assert pred(torch.randn(5, 3, 4, 4)).shape == (5, 4, 4)
    with pytest.raises(ValueError, match="history maps"):
        pred(torch.randn(5, 2, 4, 4))


def test_config_checks_say_what_to_change():
    with pytest.raises(ConfigError, match="multiple of the product"):
        tiny(frames=46).validate()
    with pytest.raises(ConfigError, match="needs model.context"):
        tiny(context=10, rollout=3).validate()
    with pytest.raises(ConfigError, match="same length"):
        tiny(time_strides=(2, 2)).validate()
    with pytest.raises(ConfigError, match="multiple of 8"):
        tiny(n_mels=36).validate()
    c = tiny()
    assert (c.step_frames, c.steps, c.bands, c.token_dim, c.window_samples) == (4, 12, 4, 32,
                                                                                47 * 80)


def _tones(n: int, samples: int, rng, jump: bool = False) -> torch.Tensor:
    """Steady tones at a random pitch; with ``jump``, the pitch leaps up in the last third."""
    t = np.arange(samples) / 8000
    f = rng.uniform(300, 1200, (n, 1)) * np.ones((1, samples))
    if jump:
        f[:, 2 * samples // 3:] *= 2.5
    x = np.sin(2 * np.pi * np.cumsum(f, 1) / 8000) + 0.05 * rng.standard_normal((n, samples))
    return torch.from_numpy((0.3 * x * (1 + 0 * t)).astype(np.float32))


def test_learns_steady_tones_and_a_pitch_jump_is_surprising():
    torch.manual_seed(0)
    cfg = tiny()
    net = CausalAudioJEPA(cfg, seed=0)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
    rng = np.random.default_rng(0)
    first = last = None
    for step in range(80):
        out = net(_tones(16, cfg.window_samples, rng), step=step)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        first = float(out.loss) if first is None else first
        last = float(out.loss)
    assert last < 0.5 * first
    wm = CausalAudioWorldModel(net, {"recipe": "test"})
    test = np.random.default_rng(1)
    steady, jump = _tones(20, cfg.window_samples, test), _tones(20, cfg.window_samples, test, True)
    e_steady = net.step_errors(net.encode(steady)).max(1).values
    e_jump = net.step_errors(net.encode(jump)).max(1).values
    assert (e_jump > e_steady).float().mean() > 0.9
    # encode / pool shapes and the clear error for a wrong window
    assert wm.encode(steady[:3]).shape == (3, cfg.steps, cfg.token_dim)
    assert wm.encode(steady[0], pool=True).shape == (1, cfg.token_dim)
    with pytest.raises(DataError, match="windows of mono sound"):
        wm.encode(torch.zeros(2, 100))


def test_surprise_streams_a_file_and_refuses_a_short_sound(tmp_path):
    cfg = tiny()
    wm = CausalAudioWorldModel(CausalAudioJEPA(cfg), {})
    x = _tones(1, 3 * cfg.window_samples, np.random.default_rng(0))[0]
    r = wm.surprise(x)
    assert len(r.scores) == 5 and np.all(np.isfinite(r.scores))
    write_audio(tmp_path / "a.wav", x.numpy(), 8000)
    f = wm.surprise(str(tmp_path / "a.wav"))
    np.testing.assert_allclose(f.scores, r.scores, rtol=1e-4, atol=1e-6)
    with pytest.raises(DataError, match="longer sound"):
        wm.surprise(x[:100])
    with pytest.raises(ConfigError, match="tokens"):
        wm.surprise(x, tokens="median")


def test_recipe_cli_load_eval_and_surprise(tmp_path, capsys):
    import monde
    from monde.evals.attentive_probe import ProbeConfig
    from monde.evals.fsdd import FSDDProtocol, fsdd_eval, load_fsdd
    from monde.evals.machine import MachineProtocol, machine_eval
    from test_audio_model import fake_fsdd, noise_folder

    fake_fsdd(tmp_path / "fsdd")
    out = tmp_path / "c"
    assert main(["train", "fsdd-causal", "--data", str(tmp_path / "fsdd"), "--out", str(out),
                 "--quiet", *TINY]) == 0
    model = monde.load(out)
    assert isinstance(model, CausalAudioWorldModel) and model.meta["steps"] == 2
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["modality"] == "audio" and "time-causal CNN" in info["encoder"]
    x = torch.randn(2, model.window_samples)
    assert torch.allclose(model.encode(x), model.jepa.tokens(x))
    data = load_fsdd(tmp_path / "fsdd", 8000)
    r = fsdd_eval(model, data, FSDDProtocol(draws=1, probe=ProbeConfig(epochs=1)))
    for who in ("model", "random"):
        assert 0 <= r[who]["digit"]["1.0"]["attentive"] <= 1
    # Tones 300 Hz apart per digit: even the random twin's standardised features tell them apart.
    assert r["random"]["digit"]["1.0"]["linear"] > 0.8

    m = tmp_path / "m"
    assert main(["train", "audio-causal-tiny", "--out", str(m), "--quiet", *TINY]) == 0
    r = machine_eval(monde.load(m), MachineProtocol(normal_fit=30, normal_test=10, per_fault=10))
    assert all(0 <= x <= 1 for v in r["faults"].values() for x in v.values())
    wav, png = tmp_path / "x.wav", tmp_path / "x.png"
    write_audio(wav, np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1,
                16000)
    assert main(["surprise", str(wav), "--model", str(m), "--plot", str(png), "--json"]) == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["windows"] == 3 and png.stat().st_size > 1000
    # Your own folder of sounds (any rate: resampled to the model's 16 kHz).
    folder = noise_folder(tmp_path / "sounds")
    u = tmp_path / "u"
    assert main(["train", "audio-causal", "--data", str(folder), "--out", str(u), "--quiet",
                 *TINY]) == 0
    assert monde.load(u).meta["recipe"] == "audio-causal"
