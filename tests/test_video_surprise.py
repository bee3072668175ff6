"""Video surprise, the pixel-predicting baseline, and the future-predicting masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monde.errors import ConfigError, DataError
from monde.jepa.config import (
    EncoderConfig,
    MaskConfig,
    ModelConfig,
    ObjectiveConfig,
    PredictorConfig,
)
from monde.jepa.masks import CausalFuture, MaskMixture
from monde.jepa.model import JEPA, build_masks
from monde.jepa.world_model import WorldModel
from monde.nn import TubeletTokenizer


def tiny(target: str = "latent", frames: int = 8) -> ModelConfig:
    return ModelConfig(
        encoder=EncoderConfig(frames=frames, height=32, width=32, patch=8, tubelet=2, dim=48,
                              depth=1, heads=2),
        predictor=PredictorConfig(dim=24, depth=1, heads=2),
        mask=MaskConfig(kind="vjepa+causal"),
        objective=ObjectiveConfig(target=target))


def test_patchify_follows_token_order():
    tok = TubeletTokenizer(3, 16, patch=4, tubelet=2)
    x = torch.rand(2, 4, 3, 8, 12)
    p = tok.patchify(x)
    grid = tok(x).grid
    assert grid == (2, 2, 3) and p.shape == (2, 12, 2 * 3 * 4 * 4)
    for n in (0, 5, 11):
        t, rem = divmod(n, 6)
        h, w = divmod(rem, 3)
        patch = x[:, 2 * t:2 * t + 2, :, 4 * h:4 * h + 4, 4 * w:4 * w + 4]
        assert torch.equal(p[:, n], patch.reshape(2, -1))


def test_vjepa_causal_mixture_has_every_context_length():
    m = build_masks(MaskConfig(kind="vjepa+causal"), (4, 4, 4))
    assert isinstance(m, MaskMixture)
    causal = [g for g in m.generators if isinstance(g, CausalFuture)]
    assert sorted(g.steps()[0] for g in causal) == [1, 2, 3]
    assert len(m.generators) == 5


def test_pixel_baseline_predicts_pixels_and_learns():
    torch.manual_seed(0)
    model = JEPA(tiny("pixels"))
    assert model.target_encoder is None and model.regularizer is None
    assert model.predictor.head.out_features == 2 * 3 * 8 * 8
    x = torch.rand(4, 8, 3, 32, 32)
    assert torch.equal(model.targets(x), model.encoder.tokenizer.patchify(x))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(30):
        out = model(x, generator=g)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_pixel_target_refuses_series():
    cfg = tiny("pixels")
    cfg.encoder.modality = "series"
    with pytest.raises(ValueError, match="pixels"):
        JEPA(cfg)


def test_surprise_shape_and_frames_without_a_forecast():
    wm = WorldModel(JEPA(tiny()))
    video = torch.rand(20, 3, 32, 32)
    r = wm.surprise(video)
    assert r.scores.shape == (20,) and r.window == 8 and r.context == 4
    assert np.isnan(r.scores[:4]).all() and np.isfinite(r.scores[4:]).all()
    assert list(r.window_starts) == list(range(0, 13, 2))
    frame, peak = r.peak
    assert 4 <= frame < 20 and peak == pytest.approx(np.nanmax(r.scores))


def test_mean_and_max_agree_when_each_frame_is_forecast_once():
    wm = WorldModel(JEPA(tiny()))
    video = torch.rand(16, 3, 32, 32)
    a = wm.surprise(video, stride=4, aggregate="max")
    b = wm.surprise(video, stride=4, aggregate="mean")
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)
    c = wm.surprise(video, aggregate="mean")  # stride 2: frames forecast by two windows
    assert not np.allclose(np.nan_to_num(a.scores), np.nan_to_num(c.scores))


def test_surprise_peaks_where_the_video_changes():
    """Pixel baseline, untrained: a still black video with two noisy frames — the error is
    largest on those frames, which checks that scores land on the right frame indices."""
    torch.manual_seed(0)
    wm = WorldModel(JEPA(tiny("pixels")))
    video = torch.zeros(30, 3, 32, 32)
    video[18:20] = torch.rand(2, 3, 32, 32)
    r = wm.surprise(video, tokens="mean")
    assert r.peak[0] in (18, 19)
    # Before the noise every window sees and forecasts the same black frames.
    np.testing.assert_allclose(r.scores[4:18], r.scores[4], rtol=1e-5)
    assert r.scores[4] < r.peak[1]


def test_surprise_bad_input():
    wm = WorldModel(JEPA(tiny()))
    with pytest.raises(DataError, match="at least 8 frames"):
        wm.surprise(torch.rand(6, 3, 32, 32))
    with pytest.raises(DataError, match="resolution"):
        wm.surprise(torch.rand(12, 3, 64, 64))
    with pytest.raises(DataError, match="multiple of the tubelet"):
        wm.surprise(torch.rand(12, 3, 32, 32), context=3)
    with pytest.raises(ConfigError, match="'max' or 'mean'"):
        wm.surprise(torch.rand(12, 3, 32, 32), aggregate="median")


def test_surprise_streams_a_file_and_resizes(tmp_path):
    pytest.importorskip("av")
    from monde.data.video import write_video

    wm = WorldModel(JEPA(tiny()))
    frames = (np.random.default_rng(0).random((24, 3, 48, 48)) * 255).astype(np.uint8)
    path = tmp_path / "clip.mp4"
    write_video(path, frames, fps=10)
    r = wm.surprise(str(path), batch_size=3)  # several batches of windows
    assert r.scores.shape == (24,) and np.isfinite(r.scores[4:]).all()
    short = tmp_path / "short.mp4"
    write_video(short, frames[:4], fps=10)
    with pytest.raises(DataError, match="has 4 frames"):
        wm.surprise(str(short))
