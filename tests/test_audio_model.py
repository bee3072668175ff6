"""The audio world model: spectrogram tokens, masks, surprise on sounds, recipes and evaluations."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("soundfile")

from monde.cli import main  # noqa: E402
from monde.data.audio import write_audio  # noqa: E402
from monde.errors import DataError  # noqa: E402
from monde.jepa.config import EncoderConfig, MaskConfig, ModelConfig, PredictorConfig  # noqa: E402
from monde.jepa.model import JEPA, build_masks  # noqa: E402
from monde.jepa.world_model import WorldModel  # noqa: E402

TINY = ["train.steps=2", "train.batch_size=4", "model.encoder.dim=24", "model.encoder.depth=1",
        "model.encoder.heads=2", "model.predictor.dim=12", "model.predictor.depth=1",
        "model.predictor.heads=2", "train.checkpoint_every=2"]


def tiny(rate: int = 8000) -> ModelConfig:
    return ModelConfig(
        encoder=EncoderConfig(modality="audio", channels=1, height=32, width=48, patch=8,
                              dim=32, depth=1, heads=2, sample_rate=rate, n_fft=256, hop=80),
        predictor=PredictorConfig(dim=16, depth=1, heads=2), mask=MaskConfig(kind="audio"))


def test_spectrogram_tokens_grid_and_gain_invariance():
    jepa = JEPA(tiny())
    x = torch.randn(3, 47 * 80) * 0.1
    tok = jepa.encoder.tokenize(x)
    assert tok.grid == (4, 6) and tok.values.shape == (3, 24, 32)
    assert tok.positions.shape == (24, 2)
    # Per-clip standardisation: a louder recording of the same sound gives the same tokens.
    torch.testing.assert_close(jepa.encoder.tokenize(4 * x).values, tok.values, atol=1e-3,
                               rtol=1e-3)
    # Shorter sounds are padded, longer ones cut, to the model's frames.
    assert jepa.encoder.tokenize(torch.randn(2, 2000)).grid == (4, 6)
    assert jepa.encoder.tokenize(torch.randn(2, 9000)).grid == (4, 6)


def test_audio_masks_cover_blocks_bands_spans_and_the_future():
    from monde.jepa.masks import CausalFuture, MultiBlock2D, TimeBlocks

    m = build_masks(MaskConfig(kind="audio"), (4, 6))
    kinds = [type(g) for g in m.generators]
    assert kinds.count(TimeBlocks) == 2 and MultiBlock2D in kinds and CausalFuture in kinds
    axes = sorted(g.time_axis for g in m.generators if isinstance(g, TimeBlocks))
    assert axes == [0, 1]   # frequency bands and time spans


def test_audio_jepa_learns():
    torch.manual_seed(0)
    jepa = JEPA(tiny())
    t = torch.arange(47 * 80) / 8000
    x = torch.stack([torch.sin(2 * torch.pi * f * t) for f in (300, 500, 900, 1500)])
    opt = torch.optim.Adam(jepa.parameters(), 2e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for i in range(30):
        out = jepa(x, step=i, generator=g)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        jepa.after_step(i, 30)
        losses.append(out.loss.item())
    assert np.isfinite(losses).all() and np.mean(losses[-5:]) < np.mean(losses[:5])


def test_surprise_on_a_sound_tensor_and_file(tmp_path):
    wm = WorldModel(JEPA(tiny()))
    n = 47 * 80
    sound = torch.randn(3 * n) * 0.1
    r = wm.surprise(sound)
    assert len(r.scores) == 5 and r.times[1] == pytest.approx(n / 2 / 8000)
    path = tmp_path / "s.wav"
    write_audio(path, sound.numpy(), 8000)
    rf = wm.surprise(str(path))
    np.testing.assert_allclose(rf.scores, r.scores, rtol=1e-3, atol=1e-3)
    write_audio(tmp_path / "s16.wav", np.repeat(sound.numpy(), 2), 16000)  # resampled on read
    assert len(wm.surprise(str(tmp_path / "s16.wav")).scores) == 5
    with pytest.raises(DataError, match="longer sound"):
        wm.surprise(torch.randn(n - 1))
    write_audio(tmp_path / "short.wav", np.zeros(100, np.float32), 8000)
    with pytest.raises(DataError, match="too short"):
        wm.surprise(str(tmp_path / "short.wav"))


def noise_folder(folder, files: int = 2, rate: int = 22050):
    """``files`` FLAC files of 24,000 samples of quiet noise at ``rate``: someone's own folder
    of sounds (at a rate the models resample from)."""
    folder.mkdir()
    for i in range(files):
        write_audio(folder / f"{i}.flac", np.random.default_rng(i).standard_normal(24000)
                    .astype(np.float32) * 0.1, rate)
    return folder


def fake_fsdd(root, per: int = 6) -> None:
    rng = np.random.default_rng(0)
    rec = root / "recordings"
    rec.mkdir(parents=True)
    t = np.arange(3000) / 8000
    for digit in range(10):
        for spk in ("ann", "bob"):
            for idx in range(per):
                f0 = 200 + 300 * digit + (40 if spk == "bob" else 0)
                x = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal(len(t))
                write_audio(rec / f"{digit}_{spk}_{idx}.wav", x.astype(np.float32), 8000)


def test_fsdd_loader_split_and_eval(tmp_path):
    from monde.evals.attentive_probe import ProbeConfig
    from monde.evals.fsdd import FSDDProtocol, fsdd_eval, load_fsdd, stratified

    fake_fsdd(tmp_path)
    data = load_fsdd(tmp_path, 8000)
    assert len(data.test_sounds) == 10 * 2 * 5 and len(data.train_sounds) == 10 * 2 * 1
    assert data.speakers == ["ann", "bob"] and set(data.test_digit) == set(range(10))
    idx = stratified(np.repeat(np.arange(3), 10), 0.2, np.random.default_rng(0))
    assert len(idx) == 6
    model = WorldModel(JEPA(tiny()), {"recipe": "test"})
    r = fsdd_eval(model, data, FSDDProtocol(draws=1, probe=ProbeConfig(epochs=1)))
    for who in ("model", "random"):
        for task in ("digit", "speaker"):
            for frac in ("1.0", "0.1"):
                assert 0 <= r[who][task][frac]["attentive"] <= 1
    # Tones 300 Hz apart per digit: log-mel statistics separate them.
    assert r["logmel_stats"]["digit"]["1.0"]["linear"] > 0.9
    (tmp_path / "recordings" / "oops.wav").write_bytes(b"")
    with pytest.raises(DataError, match="not an FSDD file name"):
        load_fsdd(tmp_path, 8000)


def test_audio_recipes_cli_surprise_and_machine_eval(tmp_path, capsys):
    from monde.evals.machine import MachineProtocol, machine_eval
    from monde.worlds.machine_sounds import MachineConfig, MachineSounds

    out = tmp_path / "m"
    assert main(["train", "audio-tiny", "--out", str(out), "--quiet", *TINY]) == 0
    import monde

    model = monde.load(out)
    r = machine_eval(model, MachineProtocol(normal_fit=30, normal_test=10, per_fault=10))
    assert set(r["faults"]) == {"bearing", "imbalance", "rubbing", "looseness"}
    for v in r["faults"].values():
        assert all(0 <= x <= 1 for x in v.values())

    clip = MachineSounds(MachineConfig(seconds=3.0)).sample(1, 0, fault="bearing").audio[0]
    wav, png = tmp_path / "pump.wav", tmp_path / "pump.png"
    write_audio(wav, clip, 16000)
    assert main(["surprise", str(wav), "--model", str(out), "--plot", str(png), "--json"]) == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["windows"] == 5 and png.stat().st_size > 1000

    # Your own folder of sounds; a folder without any is refused.
    folder = tmp_path / "sounds"
    folder.mkdir()
    for i in range(3):
        write_audio(folder / f"{i}.flac", clip[i * 8000:(i + 2) * 8000], 16000)
    assert main(["train", "audio", "--data", str(folder), "--out", str(tmp_path / "u"),
                 "--quiet", *TINY]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "audio", "--data", str(empty), "--out", str(tmp_path / "e"),
                 "--quiet", *TINY]) == 2
    assert "no sound files" in capsys.readouterr().err


def test_surprise_refuses_sound_for_a_video_model(tmp_path, capsys):
    out = tmp_path / "v"
    assert main(["train", "video-physics-tiny", "--out", str(out), "--quiet", "train.steps=1",
                 "model.encoder.depth=1", "model.predictor.depth=1"]) == 0
    wav = tmp_path / "a.wav"
    write_audio(wav, np.zeros(16000, np.float32), 16000)
    assert main(["surprise", str(wav), "--model", str(out)]) == 2
    assert "needs an audio model" in capsys.readouterr().err
