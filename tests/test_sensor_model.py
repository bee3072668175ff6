"""The sensor world model: tokenizer, masks, training objective, calibration, surprise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monde.data.sensor_windows import SensorWindows, split_runs, window_starts
from monde.errors import DataError
from monde.jepa.plant_masks import ChannelBlocks, FutureSteps
from monde.jepa.sensor_model import SensorJEPA, SensorModelConfig
from monde.jepa.sensor_world_model import SensorWorldModel, ewma, ledoit_wolf
from monde.nn import PlantTokenizer

TINY = dict(window=16, patch=4, dim=16, depth=1, heads=2, predictor_dim=16, predictor_depth=1,
            predictor_heads=2)


def _train(net, src, steps: int, batch: int, lr: float) -> list[float]:
    """A bare training loop (the trainer is tested elsewhere); returns the losses."""
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        out = net(src.batch(step, batch), step=step, generator=torch.Generator().manual_seed(step))
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        net.after_step(step, steps)
        losses.append(out.loss.item())
    return losses


def test_plant_tokenizer_groups_and_missing_values():
    tok = PlantTokenizer(channels=10, groups=4, dim=8, patch=4)
    assert (tok.group_size, tok.groups) == (3, 4)
    x = torch.randn(2, 10, 8)
    out = tok(x)
    assert out.values.shape == (2, 4 * 2, 8) and out.grid == (4, 2)
    assert out.positions[:, 0].tolist() == [0, 1] * 4
    # A missing reading is masked, not read as a value: changing what sits under a NaN
    # changes nothing, and a whole-NaN input still gives finite tokens.
    y = x.clone()
    y[0, 1, :4] = float("nan")
    z = x.clone()
    z[0, 1, :4] = 1e6
    a, b = tok(y).values, tok(z).values
    assert torch.isfinite(a).all() and not torch.allclose(a, b)
    assert torch.isfinite(tok(torch.full((1, 10, 8), float("nan"))).values).all()
    # Pooling only counts observed channels: a group whose other members are missing equals
    # the single observed channel's embedding (plus the group embedding).
    solo = torch.full((1, 10, 8), float("nan"))
    solo[0, 0] = x[0, 0]
    inp = torch.cat([x[0, 0].reshape(2, 4), torch.ones(2, 4)], -1)
    want = tok.proj(inp) + tok.channel_embed[0] + tok.group_embed[0]
    torch.testing.assert_close(tok(solo).values[0, :2], want)



def test_plant_tokenizer_roughness_input():
    """With roughness on, a channel's patch also enters as log(mean squared step + floor) and
    a flag saying whether any step was observed; steps across a missing reading are skipped."""
    tok = PlantTokenizer(channels=1, groups=1, dim=8, patch=4, roughness=True)
    floor = PlantTokenizer.ROUGHNESS_FLOOR
    x = torch.tensor([[[0.0, 1.0, 3.0, 2.0, 5.0, float("nan"), 6.0, float("nan")]]])
    w = tok.proj.weight  # [8, 2*4 + 2]
    # patch 1: steps 1, 2, -1 → mean square 2; patch 2: no two neighbours observed → flag 0
    r1 = torch.log(torch.tensor(2.0 + floor))
    in1 = torch.tensor([0.0, 1.0, 3.0, 2.0, 1, 1, 1, 1, r1, 1.0])
    in2 = torch.tensor([5.0, 0.0, 6.0, 0.0, 1, 0, 1, 0, 0.0, 0.0])
    e = torch.stack([in1, in2]) @ w.T + tok.proj.bias + tok.channel_embed[0] + tok.group_embed[0]
    torch.testing.assert_close(tok(x).values[0], e)
    # Noisier readings at the same level change the token; a plain tokenizer of the same
    # patch values sees only a linear map of them.
    quiet = torch.zeros(1, 1, 8)
    noisy = torch.tensor([[[1.0, -1.0, 1.0, -1.0] * 2]])
    assert not torch.allclose(tok(quiet).values, tok(noisy).values)
    with pytest.raises(ValueError, match="at least 2 steps"):
        PlantTokenizer(channels=1, groups=1, dim=8, patch=1, roughness=True)


def test_channel_and_future_masks():
    g = torch.Generator().manual_seed(0)
    m = ChannelBlocks((6, 4))(5, g)
    assert m.context_idx.shape[0] == 5
    for c, t in zip(m.context_idx, m.target_idx):
        assert not set(c.tolist()) & set(t.tolist())
        groups = {i // 4 for i in t.tolist()}
        assert 1 <= len(groups) <= 5  # never every group: something must be left to read
    f = FutureSteps((3, 4), max_steps=2)(2, g)
    times = (f.target_idx % 4).unique().tolist()
    assert times in ([3], [2, 3])
    assert ((f.context_idx % 4) < min(times)).all()


def test_sensor_jepa_learns_and_ema_moves():
    torch.manual_seed(0)
    cfg = SensorModelConfig(channels=6, actions=2, groups=3, **TINY)
    net = SensorJEPA(cfg)
    t = np.arange(4000)
    base = np.sin(t / 7.0)[:, None] * np.arange(1, 7)[None, :]
    values = (base + 0.05 * np.random.default_rng(0).normal(size=base.shape)).astype(np.float32)
    actions = np.random.default_rng(1).normal(size=(4000, 2)).astype(np.float32)
    net.set_normalization(values.mean(0), values.std(0), actions.mean(0), actions.std(0))
    src = SensorWindows(values, actions, [slice(0, 4000)], cfg.window, seed=0)
    before = [p.clone() for p in net.target.parameters()]
    losses = _train(net, src, steps=60, batch=16, lr=3e-3)
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    assert any(not torch.equal(a, b) for a, b in zip(before, net.target.parameters()))


def test_multi_layer_targets_average_the_last_blocks():
    import torch.nn.functional as F

    torch.manual_seed(0)
    cfg = SensorModelConfig(channels=6, groups=3, **{**TINY, "depth": 2}, target_layers=2)
    net = SensorJEPA(cfg)
    x = torch.randn(3, 6, cfg.window)
    tok = net.target["tokenizer"](net.model_inputs(x))
    blocks = net.target["encoder"].blocks
    rotation = blocks[0].attn.rotation(tok.positions, torch.float32)
    h1 = blocks[0](tok.values, tok.positions, rotation)
    h2 = blocks[1](h1, tok.positions, rotation)
    want = F.layer_norm((F.layer_norm(h1, (16,)) + F.layer_norm(h2, (16,))) / 2, (16,))
    torch.testing.assert_close(net.encode_target(x), want)
    with pytest.raises(ValueError, match="target_layers must be in 1..2"):
        SensorJEPA(SensorModelConfig(channels=6, groups=3, **{**TINY, "depth": 2}, target_layers=3))


def test_window_helpers():
    runs = [slice(0, 10), slice(10, 13), slice(13, 30)]
    s = window_starts(runs, 5, stride=2)
    assert s.tolist() == [0, 2, 4, 13, 15, 17, 19, 21, 23, 25]
    tr, held = split_runs([slice(0, 100), slice(100, 150)], 0.2)
    assert tr == [slice(0, 80), slice(100, 140)] and held == [slice(80, 100), slice(140, 150)]
    with pytest.raises(DataError, match="long enough"):
        SensorWindows(np.zeros((10, 2), np.float32), None, [slice(0, 10)], 16)


def test_ledoit_wolf_and_ewma():
    x = torch.randn(300, 2, 5, dtype=torch.float64) @ torch.randn(5, 5, dtype=torch.float64)
    x = x - x.mean(0)
    s = ledoit_wolf(x)
    sample = torch.einsum("ngi,ngj->gij", x, x) / 300
    # Shrinkage keeps the trace and pulls eigenvalues towards their mean.
    torch.testing.assert_close(torch.diagonal(s, dim1=-2, dim2=-1).sum(-1),
                               torch.diagonal(sample, dim1=-2, dim2=-1).sum(-1))
    ev, ev_s = torch.linalg.eigvalsh(s), torch.linalg.eigvalsh(sample)
    assert (ev[:, 0] >= ev_s[:, 0] - 1e-9).all() and (ev[:, -1] <= ev_s[:, -1] + 1e-9).all()
    out, state = ewma(np.array([np.nan, 1.0, 3.0, np.nan, 5.0]), 0.5)
    assert np.isnan(out[0]) and np.isnan(out[3])
    assert out[1:3].tolist() == [1.0, 2.0] and out[4] == 3.5 and state == 3.5
    more, _ = ewma(np.array([1.0]), 0.5, state)  # streaming continues where it stopped
    assert more[0] == 2.25


@pytest.fixture(scope="module")
def plant_model():
    """A tiny model of a synthetic plant with 12 sensors, calibrated on normal data."""
    from monde.worlds.plant import PlantConfig, SyntheticPlant

    plant = SyntheticPlant(PlantConfig(sensors=12, actions=2, seed=0))
    normal = plant.simulate(6000, seed=1)
    torch.manual_seed(0)
    # "both": a persistent sensor bias is predicted well once it is in the context (little
    # prediction error after the onset), but the plant is then in a state it never visited.
    cfg = SensorModelConfig(channels=12, actions=2, groups=4, surprise="both", **TINY)
    net = SensorJEPA(cfg)
    net.set_normalization(normal.values.mean(0), normal.values.std(0), normal.actions.mean(0),
                          normal.actions.std(0))
    src = SensorWindows(normal.values, normal.actions, [slice(0, 4000)], cfg.window, seed=0)
    _train(net, src, steps=400, batch=32, lr=2e-3)
    wm = SensorWorldModel(net, {"sensor_names": normal.sensor_names,
                                "action_names": normal.action_names})
    # Calibrated on 2,000 held-out rows: with a few hundred, the threshold does not
    # generalise to a new run of the plant (34% false alarms in a test with 500).
    wm.calibrate(normal.values, normal.actions, [slice(4000, 6000)])
    return wm, plant


def test_surprise_is_causal_and_flags_a_fault(plant_model):
    from monde.worlds.plant import PlantFault

    wm, plant = plant_model
    assert wm.calibrated
    fault = PlantFault("bias", start=600, channels=(3,), magnitude=6.0)
    run = plant.simulate(1000, seed=7, faults=[fault])
    res = wm.surprise(run.values, run.actions)
    assert np.isnan(res.scores[: wm.window - 1]).all() and np.isfinite(res.scores[wm.window - 1:]).all()
    thr = wm.threshold(0.01)
    before, after = res.scores[wm.window:600], res.scores[620:]
    assert (before > thr).mean() < 0.05
    assert (after > thr).mean() > 0.4
    # The alarm points at the group holding sensor 3 (sensors 0-2, 3-5, ... → group 1).
    assert wm.group_names[1] == f"{run.sensor_names[3]}…{run.sensor_names[5]}"
    assert res.top_groups(700, k=1)[0][0] == wm.group_names[1]
    # Causal: changing the future does not change past scores.
    changed = run.values.copy()
    changed[800:] += 50.0
    res2 = wm.surprise(changed, run.actions)
    np.testing.assert_allclose(res2.scores[:800], res.scores[:800], rtol=1e-5)


def test_surprise_input_errors(plant_model):
    wm, plant = plant_model
    run = plant.simulate(200, seed=3)
    with pytest.raises(DataError, match="12 sensors"):
        wm.surprise(run.values[:, :5], run.actions)
    with pytest.raises(DataError, match="control inputs"):
        wm.surprise(run.values, None)
    with pytest.raises(DataError, match="at least 16 rows"):
        wm.surprise(run.values[:10], run.actions[:10])
    with pytest.raises(DataError, match="false-alarm"):
        wm.threshold(1.5)
    # Missing readings are fine (masked), and give finite scores.
    v = run.values.copy()
    v[50:60, 2] = np.nan
    assert np.isfinite(wm.surprise(v, run.actions).scores[20:]).all()


def test_forecast_reads_out_predicted_latents_and_answers_what_if(plant_model):
    from monde.jepa.sensor_forecast import fit_decoder

    wm, plant = plant_model
    normal = plant.simulate(6000, seed=1)
    fit = fit_decoder(wm, normal.values, normal.actions, [slice(0, 4000)])
    assert fit["windows"] > 1000 and fit["held_out_mse"] < 1.0 and fit["horizon"] == 8
    longer = plant.simulate(100, seed=12)  # 30 rows > the 8-row read-out: rolls forward
    assert wm.forecast(longer.values, 30, longer.actions).shape == (30, 12)
    run = plant.simulate(1000, seed=11)
    ctx = wm.window - wm.config.future_patches * wm.config.patch
    from monde.jepa.sensor_forecast import forecast_batch

    ends = np.arange(100, 900, 10)
    hists = np.stack([run.values[e - ctx:e] for e in ends])
    acts = np.stack([run.actions[e - ctx:e + 8] for e in ends])
    futures = np.stack([run.values[e:e + 8] for e in ends])
    preds = forecast_batch(wm, hists, 8, acts)
    # Better than holding the last reading, over 80 forecasts, in normalised units.
    std = wm.net.std.numpy()
    mse = (((preds - futures) / std) ** 2).mean()
    hold = (((hists[:, -1:] - futures) / std) ** 2).mean()
    assert mse < 0.8 * hold, (mse, hold)
    hist = run.values[:300]
    pred = wm.forecast(hist, 20, run.actions[:320])
    assert pred.shape == (20, 12) and np.isfinite(pred).all()
    # What-if: other control moves give another forecast; only the context rows are read.
    moved = run.actions[:320].copy()
    moved[300:] += 3.0 * run.actions.std(0)
    assert not np.allclose(wm.forecast(hist, 20, moved), pred)
    np.testing.assert_allclose(wm.forecast(hist[-ctx:], 20, run.actions[300 - ctx:320]), pred,
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(DataError, match="rows of history"):
        wm.forecast(hist[:3], 5, run.actions[:8])
    with pytest.raises(DataError, match="actions must be"):
        wm.forecast(hist, 20, run.actions[:50])


def test_instance_norm_makes_forecasts_follow_level_and_scale():
    """With ``instance_norm`` the encoder sees each window's shape, not its level: a history
    shifted and scaled per channel gives the same latents and the same forecast, shifted and
    scaled alike (the RevIN property ETTh1's level changes need). Without it, latents move."""
    from monde.jepa.sensor_forecast import forecast_batch

    torch.manual_seed(0)
    cfg = SensorModelConfig(channels=3, groups=3, instance_norm=True, **TINY)
    net = SensorJEPA(cfg)
    net.set_normalization(np.array([1.0, -2.0, 0.5]), np.array([2.0, 0.5, 1.0]))
    net.decoder.normal_(0, 0.05)          # any read-out: the property is the model's, not the fit's
    net.decoder_ready.fill_(1.0)
    wm = SensorWorldModel(net, {"sensor_names": ["a", "b", "c"], "action_names": []})
    ctx = cfg.window - cfg.future_patches * cfg.patch
    rng = np.random.default_rng(0)
    hist = np.cumsum(rng.normal(size=(4, ctx, 3)), 1).astype(np.float32)
    hist[1, 5, 2] = np.nan                  # a missing reading is left out of the statistics
    scale, shift = np.array([3.0, 0.2, 10.0]), np.array([50.0, -7.0, 0.0])
    moved = (hist * scale + shift).astype(np.float32)
    x, xm = (torch.from_numpy(h.transpose(0, 2, 1).copy()) for h in (hist, moved))
    np.testing.assert_allclose(net.encode_target(xm), net.encode_target(x), atol=2e-4)
    pred, pred_moved = forecast_batch(wm, hist, 6), forecast_batch(wm, moved, 6)
    assert pred.shape == (4, 6, 3) and np.isfinite(pred).all()
    np.testing.assert_allclose(pred_moved, pred * scale + shift, rtol=1e-3, atol=1e-3 * scale.max())
    # A flat channel does not divide by zero.
    flat = hist.copy()
    flat[:, :, 0] = 4.0
    assert np.isfinite(forecast_batch(wm, flat, 6)).all()
    # The default model reads global z-scores: a level shift changes its latents.
    plain = SensorJEPA(SensorModelConfig(channels=3, groups=3, **TINY))
    assert not torch.allclose(plain.encode_target(xm), plain.encode_target(x), atol=1e-2)
