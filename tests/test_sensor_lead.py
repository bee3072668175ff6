"""Far-future targets of the sensor model (``SensorModelConfig.lead``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from monde.data.sensor_windows import SensorWindows
from monde.errors import ConfigError
from monde.jepa.sensor_model import SensorJEPA, SensorModelConfig

TINY = dict(window=16, patch=4, dim=16, depth=1, heads=2, predictor_dim=16, predictor_depth=1,
            predictor_heads=2)


def test_later_windows_stay_in_their_run_and_respect_the_lead():
    runs = [slice(0, 40), slice(40, 57), slice(57, 120)]
    values = np.arange(120, dtype=np.float32)[:, None].repeat(2, 1)  # a row's value = its index
    src = SensorWindows(values, None, runs, window=16, seed=3, lead=10)
    seen_zero = False
    for step in range(30):
        b = src.batch(step, 32)
        start, later, lead = b["x"][:, 0, 0], b["x_future"][:, 0, 0], b["lead"]
        assert torch.equal(later, start + lead)
        assert (lead >= 0).all() and (lead <= 10).all()
        for s, d in zip(start.tolist(), lead.tolist()):
            run = next(r for r in runs if r.start <= s < r.stop)
            assert s + d + 16 <= run.stop          # the later window ends inside the same run
            assert d >= 1 or s + 16 == run.stop    # 0 only when the run has no rows left
            seen_zero |= d == 0
    assert seen_zero  # run 2 has one window: its later window can only be itself
    # Without a lead the batches are the same windows as before, and nothing more.
    plain = SensorWindows(values, None, runs, window=16, seed=3).batch(5, 32)
    assert set(plain) == {"x"} and torch.equal(plain["x"], src.batch(5, 32)["x"])


def test_far_targets_pool_each_group_and_the_loss_trains_the_far_query():
    torch.manual_seed(0)
    cfg = SensorModelConfig(channels=6, groups=3, lead=32, **TINY)
    net = SensorJEPA(cfg)
    t = np.arange(3000)
    # A slow drift (what the far query must anticipate) under a fast oscillation.
    values = (np.sin(t / 5.0)[:, None] + (t / 3000.0)[:, None] * np.arange(1, 7)).astype(np.float32)
    net.set_normalization(values.mean(0), values.std(0))
    src = SensorWindows(values, None, [slice(0, 3000)], cfg.window, seed=0, lead=cfg.lead)

    x = src.batch(0, 4)["x_future"]
    h = net.encode_target(x).view(4, 3, cfg.patches, cfg.dim)
    torch.testing.assert_close(net.pooled_target(x), F.layer_norm(h.mean(2), (cfg.dim,)))
    # Centre of a window starting d rows later, in this window's patch coordinates.
    assert net.far_position(torch.tensor([0.0, 8.0])).tolist() == [1.5, 3.5]

    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    far = []
    for step in range(80):
        out = net(src.batch(step, 16), step=step, generator=torch.Generator().manual_seed(step))
        out.loss.backward()
        if step == 0:
            assert net.predictor.far_token.grad.abs().sum() > 0
        opt.step()
        opt.zero_grad()
        net.after_step(step, 80)
        far.append(out.parts["far"].item())
    assert np.mean(far[-10:]) < 0.7 * np.mean(far[:10])


def test_models_without_a_lead_are_unchanged_and_bad_settings_fail():
    from monde.recipes.sensors import check_config, sensors

    net = SensorJEPA(SensorModelConfig(channels=6, groups=3, **TINY))
    assert net.predictor.far_token is None
    assert not any("far" in k for k in net.state_dict())
    with pytest.raises(ValueError, match="lead > 0"):
        net.predictor(torch.randn(2, 3, 16), torch.zeros(2, 3, dtype=torch.long),
                      torch.ones(2, 1, dtype=torch.long), torch.zeros(12, 1),
                      far_pos=torch.zeros(2))
    cfg = sensors()
    cfg.model.lead = -1
    with pytest.raises(ConfigError, match="model.lead"):
        check_config(cfg)


def test_far_latents_and_the_probe_features_that_read_them():
    from monde.evals.plant import far_leads, latent_features
    from monde.jepa.sensor_world_model import SensorWorldModel

    torch.manual_seed(0)
    cfg = SensorModelConfig(channels=6, groups=3, lead=40, **TINY)
    wm = SensorWorldModel(SensorJEPA(cfg))
    windows = np.random.default_rng(0).normal(size=(5, cfg.window, 6)).astype(np.float32)
    assert far_leads(40) == (10, 20, 40) and far_leads(2) == (1, 2)
    far = wm.far_latents(windows, (10, 40))
    assert far.shape == (5, 2, 3, cfg.dim)
    assert not torch.allclose(far[:, 0], far[:, 1])  # the lead is part of the question
    # One window at a time gives the same answers (no leakage across a batch).
    torch.testing.assert_close(wm.far_latents(windows[2:3], (10, 40)), far[2:3])
    feats = latent_features(wm, windows)
    assert feats.shape == (5, cfg.dim + 3 * cfg.dim)  # now + three forecasts
    torch.testing.assert_close(torch.from_numpy(feats[:, cfg.dim:2 * cfg.dim]),
                               wm.far_latents(windows, (10,))[:, 0].mean(1), atol=0.1, rtol=0)
    plain = SensorWorldModel(SensorJEPA(SensorModelConfig(channels=6, groups=3, **TINY)))
    assert latent_features(plain, windows).shape == (5, 4 * cfg.dim)
    with pytest.raises(ConfigError, match="model.lead > 0"):
        plain.far_latents(windows, (10,))
    with pytest.raises(Exception, match="encodes windows"):
        wm.far_latents(windows[:, :8], (10,))
