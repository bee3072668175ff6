"""The frame-causal video JEPA: its loss, its streaming surprise, training, saving, loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from monde.cli import main
from monde.errors import ConfigError, DataError
from monde.jepa.causal_video import CausalVideoConfig, CausalVideoJEPA
from monde.jepa.causal_video_world_model import CausalVideoWorldModel
from monde.recipes.video_causal import check_config, intphys_tiny
from monde.train.metrics import read_metrics

SMALL = dict(size=32, context=3, rollout=2, widths=(8, 8), map_channels=4, predictor_hidden=8,
             predictor_layers=3)
TINY = ["train.steps=2", "train.batch_size=2", "model.widths=[8,8,8]", "model.map_channels=4",
        "model.predictor_hidden=8", "model.predictor_layers=2", "train.checkpoint_every=2"]


def _video(t: int = 12, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (t, 3, size, size),
                                                                 dtype=np.uint8))


@pytest.mark.parametrize("target,predictor,memory", [
    ("latent", "history", "window"), ("pixels", "history", "window"),
    ("latent", "recurrent", "window"), ("latent", "recurrent", "stream"),
    ("pixels", "recurrent", "stream")])
def test_loss_trains_every_part(target, predictor, memory):
    net = CausalVideoJEPA(CausalVideoConfig(**SMALL, target=target, predictor=predictor,
                                            memory=memory))
    x = torch.rand(2, 5, 3, 32, 32)
    out = net(x)
    out.loss.backward()
    assert torch.isfinite(out.loss) and {"pred", "rollout"} <= set(out.parts)
    assert ("std" in out.parts) == (target == "latent")
    assert out.embeddings.shape == (2, 4 * 8 * 8)
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match="T > 3"):
        net(torch.rand(2, 3, 3, 32, 32))


def test_pixel_twin_learns_with_cross_entropy_on_logits():
    """The pixel loss is binary cross-entropy on the decoder's logits: a decoder stuck at black
    (the MSE-after-sigmoid collapse) still gets a full-size gradient from a bright pixel."""
    net = CausalVideoJEPA(CausalVideoConfig(**SMALL, target="pixels"))
    x = torch.rand(2, 5, 3, 32, 32)
    out = net(x)
    with torch.no_grad():
        z = net.encode(x)
        want = F.binary_cross_entropy_with_logits(
            net.decoder.logits(net.forecast(z).flatten(0, 1)), x[:, 3:].flatten(0, 1))
    assert out.parts["pred"].item() == pytest.approx(want.item(), rel=1e-5)
    last = net.decoder.net[-1]
    with torch.no_grad():
        last.bias.fill_(-8.0)  # every decoded pixel ~0.0003: black
    x = torch.zeros(1, 5, 3, 32, 32)
    x[:, 3:, :, 10:14, 10:14] = 0.9  # a bright square to forecast
    net(x).loss.backward()
    # d(BCE)/d(logit) = sigmoid(logit) - target: ~ -0.9 on the square's pixels, averaged
    assert last.bias.grad.abs().max() > 0.9 * 16 / 1024 * 0.5


@pytest.mark.parametrize("target_grad", [True, False])
def test_detached_targets_take_no_gradient_from_the_forecast_losses(target_grad):
    """The last frame of a clip is only ever a target: with ``target_grad=False`` (and the
    regulariser off) the loss must not depend on its pixels through any gradient path."""
    cfg = CausalVideoConfig(**SMALL, target_grad=target_grad, std_weight=0.0, cov_weight=0.0)
    net = CausalVideoJEPA(cfg)
    x = torch.rand(2, 5, 3, 32, 32, requires_grad=True)
    net(x).loss.backward()
    last = x.grad[:, -1].abs().sum()
    assert (last > 0) if target_grad else (last == 0)
    assert x.grad[:, :3].abs().sum() > 0  # context frames train the encoder either way


@pytest.mark.parametrize("predictor,memory", [("history", "window"), ("recurrent", "window"),
                                              ("recurrent", "stream")])
def test_forecast_uses_only_the_frames_before(predictor, memory):
    """Changing frame t must not change the forecasts of frames <= t (causality)."""
    net = CausalVideoJEPA(CausalVideoConfig(**SMALL, predictor=predictor, memory=memory)).eval()
    x = torch.rand(1, 8, 3, 32, 32)
    y = x.clone()
    y[:, 5] = torch.rand(3, 32, 32)
    with torch.no_grad():
        a, b = net.forecast(net.encode(x)), net.forecast(net.encode(y))
    # forecasts are of frames 3..7: frames 3, 4, 5 use only frames < 5
    assert torch.allclose(a[:, :3], b[:, :3]) and not torch.allclose(a[:, 3:], b[:, 3:])


@pytest.mark.parametrize("target,predictor,memory", [
    ("latent", "history", "window"), ("pixels", "history", "window"),
    ("latent", "recurrent", "window"), ("latent", "recurrent", "stream"),
    ("pixels", "recurrent", "stream")])
def test_streamed_surprise_equals_whole_video(target, predictor, memory):
    model = CausalVideoWorldModel(CausalVideoJEPA(CausalVideoConfig(
        **SMALL, target=target, predictor=predictor, memory=memory)))
    video = _video(13)
    whole = model.surprise(video, batch_size=64)
    for chunk in (1, 2, 5):  # chunks shorter than, equal to and longer than the context
        np.testing.assert_allclose(model.surprise(video, batch_size=chunk).scores, whole.scores,
                                   rtol=1e-5, atol=1e-6)
    assert np.isnan(whole.scores[:3]).all() and np.isfinite(whole.scores[3:]).all()
    assert whole.window == 4 and whole.context == 3 and len(whole.window_starts) == 10
    # The score of a frame is the error of its forecast from the 3 frames before it (a
    # streaming model: from every frame before it).
    net = model.jepa
    with torch.no_grad():
        x = video[(0 if memory == "stream" else 4):8].float()[None] / 255
        z = net.encode(x)[0]
        expect = net.step_errors(z, x[0, 3:], "max")[-1].item()
    assert whole.scores[7] == pytest.approx(expect, rel=1e-5)
    mean = model.surprise(video, tokens="mean").scores[3:]
    assert (mean <= whole.scores[3:] + 1e-6).all()


@pytest.mark.parametrize("target", ["latent", "pixels"])
def test_surprise_blur_forgives_a_forecast_one_cell_off(target, monkeypatch):
    """``blur`` compares neighbourhood averages: a forecast that puts an object (3×3 cells) one
    cell away costs far less than with ``blur=0``, while an object that was not forecast at all
    still costs the full error."""
    net = CausalVideoJEPA(CausalVideoConfig(**SMALL, target=target))
    K, side = net.cfg.context, net.cfg.map_side
    z = torch.zeros(K + 1, 4, side, side)
    z[K, :, 2:5, 2:5] = 1.0  # an object shows up in cells 2-4 x 2-4 of the forecast frame
    off = torch.zeros(1, 4, side, side)
    off[0, :, 2:5, 3:6] = 1.0  # the forecast put it one cell to the right
    frames = None
    if target == "pixels":  # compare decoded pixels: make the decoder an upsampler
        cell = net.cfg.size // side
        net.decoder = torch.nn.Upsample(scale_factor=cell)
        frames = F.interpolate(z[K:], scale_factor=cell)
    monkeypatch.setattr(net, "forecast", lambda zz: off[None])
    sharp, soft = (net.step_errors(z, frames, blur=b)[0].item() for b in (0, 1))
    assert soft < 0.2 * sharp, (sharp, soft)
    monkeypatch.setattr(net, "forecast", lambda zz: torch.zeros_like(off)[None])
    missed = net.step_errors(z, frames, blur=1)[0].item()
    assert missed > 5 * soft, (missed, soft)
    net.cfg.surprise_blur = 1  # the model's default applies when blur is left out
    assert net.step_errors(z, frames)[0].item() == pytest.approx(missed)
    model = CausalVideoWorldModel(CausalVideoJEPA(CausalVideoConfig(**SMALL)))
    with pytest.raises(ConfigError, match="blur"):
        model.surprise(_video(6), blur=-1)
    with pytest.raises(ConfigError, match="surprise_blur"):
        CausalVideoConfig(surprise_blur=-1).validate()


def test_surprise_over_longer_leads_averages_calibrated_open_loop_errors():
    from monde.jepa.causal_video import calibrate_step_scale

    cfg = CausalVideoConfig(**SMALL, surprise_horizon=3)  # context 3
    net = CausalVideoJEPA(cfg).eval()
    video = _video(14)
    with torch.no_grad():
        z = net.encode(video.float()[None] / 255)[0]  # [14, C, h, w]
        lead = net.lead_errors(z)  # [3 leads, 11 forecast frames]
        assert lead.shape == (3, 11)
        assert lead[1, :1].isnan().all() and lead[2, :2].isnan().all()
        assert not lead[0].isnan().any() and not lead[2, 2:].isnan().any()
        one = CausalVideoJEPA(CausalVideoConfig(**SMALL))
        one.load_state_dict(net.state_dict())
        torch.testing.assert_close(lead[0], one.step_errors(z))  # lead 1: the one-step forecast
        # lead 2 of frame 4 (column 1): two steps rolled out from frames 0-2
        expect = (net.rollout(z[None, :3], 2)[0, 1] - z[4]).pow(2).sum(0).max()
        assert lead[1, 1].item() == pytest.approx(expect.item(), rel=1e-5)
        with pytest.raises(ConfigError, match="step_scale"):
            net.step_errors(z)  # not calibrated
        cfg.step_scale = (1.0, 2.0, 4.0)
        want = (lead / torch.tensor([1.0, 2.0, 4.0])[:, None]).nanmean(0)
        torch.testing.assert_close(net.step_errors(z), want)
    # Streaming in chunks keeps enough frames for the longest lead: same scores as one pass.
    model = CausalVideoWorldModel(net)
    whole, chunked = (model.surprise(video, batch_size=b).scores for b in (64, 4))
    np.testing.assert_allclose(chunked[3:], whole[3:], rtol=1e-4)
    np.testing.assert_allclose(whole[3:], want.numpy(), rtol=1e-4)
    scale = calibrate_step_scale(net, torch.rand(4, 6, 3, 32, 32))
    assert len(scale) == 3 and all(v > 0 for v in scale)
    with pytest.raises(ValueError, match="at least 6 frames"):
        calibrate_step_scale(net, torch.rand(2, 5, 3, 32, 32))
    with pytest.raises(ConfigError, match="surprise_horizon"):
        CausalVideoConfig(target="pixels", surprise_horizon=2).validate()


def test_a_streaming_model_remembers_past_its_context_and_scores_chunks_as_one_pass():
    cfg = CausalVideoConfig(**SMALL, predictor="recurrent", memory="stream", surprise_horizon=3,
                            step_scale=(1.0, 2.0, 4.0))  # context 3
    net = CausalVideoJEPA(cfg).eval()
    window = CausalVideoJEPA(CausalVideoConfig(**{**SMALL, "predictor": "recurrent"})).eval()
    window.load_state_dict(net.state_dict())
    video = _video(14)
    with torch.no_grad():
        z = net.encode(video.float()[None] / 255)  # [1, 14, C, h, w]
        other = z.clone()
        other[:, 0] += 1.0  # frame 0 is 9 frames before the forecast of frame 10
        assert not torch.allclose(net.forecast(z)[:, -4], net.forecast(other)[:, -4])
        torch.testing.assert_close(window.forecast(z)[:, -4], window.forecast(other)[:, -4])
        # lead 1 is the one-step forecast; a lead-2 forecast rolls on from the state
        lead = net.lead_errors(z[0])
        torch.testing.assert_close(lead[0], _one_step(net, z))
        expect = (net.rollout(z[:, :5], 2)[0, 1] - z[0, 6]).pow(2).sum(0).max()
        assert lead[1, 3].item() == pytest.approx(expect.item(), rel=1e-5)
        # going on from advance() is the same stream
        start = net.advance(z[0, :6])
        torch.testing.assert_close(net.step_errors(z[0, 6:], start=start)[2:],
                                   net.step_errors(z[0])[8:])
    model = CausalVideoWorldModel(net)
    whole = model.surprise(video, batch_size=64).scores
    for chunk in (1, 4, 5):
        np.testing.assert_allclose(model.surprise(video, batch_size=chunk).scores[3:],
                                   whole[3:], rtol=1e-4)
    with pytest.raises(ValueError, match="stream"):
        window.step_errors(z[0], start=start)


def _one_step(net: CausalVideoJEPA, z: torch.Tensor) -> torch.Tensor:
    """Per-frame max-over-cells one-step error of a streaming model (no blur)."""
    return (net.forecast(z)[0] - z[0, net.cfg.context:]).pow(2).sum(1).flatten(1).amax(1)


def test_surprise_rejects_bad_settings_and_input():
    model = CausalVideoWorldModel(CausalVideoJEPA(CausalVideoConfig(**SMALL)))
    video = _video(6)
    with pytest.raises(ConfigError, match="context must be 3"):
        model.surprise(video, context=4)
    assert model.surprise(video, context=3).peak[0] >= 3
    with pytest.raises(ConfigError, match="stride"):
        model.surprise(video, stride=2)
    with pytest.raises(ConfigError, match="tokens"):
        model.surprise(video, tokens="median")
    with pytest.raises(DataError, match="at least 4"):
        model.surprise(video[:3])
    with pytest.raises(DataError, match="model's resolution"):
        model.surprise(_video(6, size=64))
    with pytest.raises(ConfigError, match="cannot plan"):
        model.plan()
    assert model.encode(video).shape == (1, 6, 4 * 8 * 8)
    assert model.encode(video[None], pool=True).shape == (1, 6, 4)


def test_config_checks_name_the_fields():
    cfg = intphys_tiny()
    cfg.data.balls.frames = 8
    with pytest.raises(ConfigError, match="data.balls.frames"):
        check_config(cfg)
    with pytest.raises(ConfigError, match="multiple of 8"):
        CausalVideoConfig(size=60).validate()
    with pytest.raises(ConfigError, match="'latent' or 'pixels'"):
        CausalVideoConfig(target="depth").validate()
    with pytest.raises(ConfigError, match="model.predictor must be 'history' or 'recurrent'"):
        CausalVideoConfig(predictor="lstm").validate()
    with pytest.raises(ConfigError, match="model.memory=stream needs model.predictor=recurrent"):
        CausalVideoConfig(memory="stream").validate()
    with pytest.raises(ConfigError, match="model.memory must be"):
        CausalVideoConfig(predictor="recurrent", memory="forever").validate()
    with pytest.raises(ConfigError, match="longer clips need model.memory=stream"):
        CausalVideoConfig(predictor="recurrent", clip=24).validate()
    assert CausalVideoConfig(predictor="recurrent", memory="stream", clip=24).clip_frames == 24
    with pytest.raises(ValueError, match="at least context \\+ rollout"):
        CausalVideoJEPA(CausalVideoConfig(**SMALL, predictor="recurrent", memory="stream"))(
            torch.rand(1, 4, 3, 32, 32))


def test_train_save_load_and_a_rerun_resumes(tmp_path, capsys):
    import monde

    out = tmp_path / "m"
    assert main(["train", "intphys-tiny", "--out", str(out), "--quiet", *TINY]) == 0
    model = monde.load(out)
    assert isinstance(model, CausalVideoWorldModel) and model.target == "latent"
    from monde.worlds.intphys import IntPhys

    # the recipe scores 8 leads, each calibrated on normal clips at the end of training
    assert model.config.surprise_horizon == 8 and len(model.config.step_scale) == 8
    assert all(v > 0 for v in model.config.step_scale)
    clip = IntPhys().pairs("continuity", 1, 0).impossible[0]
    s = model.surprise(clip).scores
    assert np.isfinite(s[8:]).all()
    # A finished run, rerun, resumes from its last checkpoint and trains nothing more.
    assert main(["train", "intphys-tiny", "--out", str(out), "--quiet", "--json", *TINY]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["resumed"] and summary["resumed_from"] == 2 and summary["steps"] == 2
    rows = read_metrics(out / "metrics.jsonl")
    assert {"pred", "rollout", "std", "cov"} <= set(rows[-1])
    assert main(["train", "intphys-tiny", "--out", str(out), "--quiet", *TINY, "model.rollout_weight=0.5"]) == 2
    assert "holds another run" in capsys.readouterr().err


def test_a_short_training_makes_a_teleport_surprising():
    """After ~300 steps on possible clips only, a ball that jumps is more surprising than its
    possible twin in most pairs; an untrained model is not (it scores both alike at random)."""
    from monde.recipes.video_data import BallsSource
    from monde.worlds.intphys import IntPhys, IntPhysConfig

    world = IntPhysConfig(size=32)
    cfg = CausalVideoConfig(size=32, context=4, rollout=2, widths=(16, 32), map_channels=8,
                            predictor_hidden=32, predictor_layers=4)
    net = CausalVideoJEPA(cfg, seed=0)
    data = BallsSource(world.balls(cfg.clip_frames), seed=0)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)

    pairs = IntPhys(IntPhysConfig(size=32)).pairs("continuity", 24, seed=7)

    def pairwise(model) -> float:
        wm = CausalVideoWorldModel(model)
        p = np.array([np.nanmax(wm.surprise(v).scores) for v in pairs.possible])
        i = np.array([np.nanmax(wm.surprise(v).scores) for v in pairs.impossible])
        return float(np.mean((i > p) + 0.5 * (i == p)))

    before = pairwise(net)
    net.train()
    for step in range(300):
        loss = net(data.batch(step, 16)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = pairwise(net.eval())
    assert after >= 0.75 and after > before + 0.1, (before, after)
