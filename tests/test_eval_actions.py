"""Attentive probe, class metrics, the manipulation training source and monde eval actions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from monde.cli import main
from monde.errors import ConfigError
from monde.evals.actions import ActionsProtocol, actions_eval, forecast_features
from monde.evals.attentive_probe import (
    ProbeConfig,
    class_metrics,
    fit_attentive_probe,
    predict_scores,
)

TINY = ["train.steps=2", "train.batch_size=4", "model.encoder.dim=24", "model.encoder.depth=1",
        "model.encoder.heads=2", "model.predictor.dim=12", "model.predictor.depth=1",
        "model.predictor.heads=2", "train.checkpoint_every=2"]


def test_class_metrics_on_known_scores():
    y = np.array([0, 0, 1, 2])
    scores = np.array([[3, 2, 1, 0], [0, 1, 2, 3], [0, 3, 1, 2], [3, 2, 1, 0.0]])
    m = class_metrics(scores, y, classes=4, k=2)
    assert m["top1"] == 0.5                      # samples 0 and 2
    # recall@2 per class: class 0 -> 1/2, class 1 -> 1, class 2 -> 0 (rank 3)
    assert m["recall@2"] == pytest.approx((0.5 + 1 + 0) / 3, abs=1e-4)
    assert m["chance_top1"] == 0.5 and m["chance_recall@2"] == 0.5


def test_attentive_probe_finds_the_one_informative_token():
    """The class is written in one token among 16 noise tokens: mean-pooling dilutes it, the
    learnable query must find it."""
    g = torch.Generator().manual_seed(0)
    n, tokens, dim, classes = 1200, 16, 16, 4
    y = torch.randint(classes, (n,), generator=g)
    x = torch.randn(n, tokens, dim, generator=g)
    x[torch.arange(n), 5, :classes] += 4 * torch.nn.functional.one_hot(y, classes)
    pos = torch.arange(tokens, dtype=torch.float32)[:, None]
    probe = fit_attentive_probe(x[:1000], y[:1000].numpy(), pos, classes,
                                ProbeConfig(epochs=20, heads=2, depth=1))
    acc = (predict_scores(probe, x[1000:], pos).argmax(1) == y[1000:].numpy()).mean()
    assert acc > 0.8  # chance 0.25; a probe that averages the tokens is far below


def test_attentive_probe_regresses_a_value_written_in_one_token():
    """classes=0 makes a regression head: the target is a number written in token 9."""
    g = torch.Generator().manual_seed(1)
    n, tokens, dim = 1200, 12, 16
    x = torch.randn(n, tokens, dim, generator=g)
    y = torch.randn(n, 2, generator=g)
    x[:, 9, :2] = 3 * y
    pos = torch.arange(tokens, dtype=torch.float32)[:, None]
    probe = fit_attentive_probe(x[:1000], y[:1000].numpy(), pos, 0,
                                ProbeConfig(epochs=20, heads=2, depth=1))
    y_hat = predict_scores(probe, x[1000:], pos)
    assert y_hat.shape == (200, 2)
    resid = ((y_hat - y[1000:].numpy()) ** 2).sum() / ((y[1000:].numpy()) ** 2).sum()
    assert resid < 0.2  # R² > 0.8; predicting the mean gives R² ≈ 0


@pytest.fixture(scope="module")
def tiny_actions(tmp_path_factory):
    out = tmp_path_factory.mktemp("actions") / "m"
    assert main(["train", "actions-tiny", "--out", str(out), "--quiet", *TINY]) == 0
    return out


def test_manipulation_source_is_deterministic():
    from monde.recipes import get_recipe
    from monde.recipes.video_data import ManipulationSource

    cfg = get_recipe("actions-tiny").build()
    src = ManipulationSource(cfg.data, 8, seed=3)
    a, b, c = src.batch(5, 6), src.batch(5, 6), src.batch(6, 6)
    assert a.shape == (6, 8, 3, 64, 64) and torch.equal(a, b) and not torch.equal(a, c)
    assert 0 <= a.min() and a.max() <= 1


def test_actions_eval_and_cli(tiny_actions, capsys):
    import monde

    model = monde.load(tiny_actions)
    protocol = ActionsProtocol(train_episodes=4, test_episodes=3, probe=ProbeConfig(epochs=1))
    r = actions_eval(model, protocol)
    for who in ("model", "random"):
        for task in ("recognition", "anticipation"):
            m = r[who][task]
            assert 0 <= m["top1"] <= 1 and 0 <= m["recall@5"] <= 1 and m["n"] > 0
    assert r["clips"]["recognition"][1] == r["model"]["recognition"]["n"]
    with pytest.raises(ConfigError, match="multiple of the tubelet"):
        forecast_features(model.jepa, np.zeros((2, 3, 3, 64, 64), np.uint8), pool=2)


def test_forecast_features_use_only_the_observed_frames(tiny_actions):
    """The probe's anticipation input is a function of the observed frames alone."""
    import monde

    jepa = monde.load(tiny_actions).jepa
    rng = np.random.default_rng(0)
    obs = (rng.random((2, 4, 3, 64, 64)) * 255).astype(np.uint8)
    a = forecast_features(jepa, obs, pool=2)
    assert a.shape == (2, 4 * 16, 24)
    b = forecast_features(jepa, obs[:1], pool=2)
    torch.testing.assert_close(a[:1], b, rtol=1e-4, atol=1e-5)


def test_cli_eval_actions_with_model(tiny_actions, capsys, monkeypatch):
    import monde.evals.actions as A

    monkeypatch.setattr(A, "ActionsProtocol",
                        lambda: ActionsProtocol(train_episodes=3, test_episodes=2,
                                                probe=ProbeConfig(epochs=1)))
    assert main(["eval", "actions", "--model", str(tiny_actions), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["protocol"]["settings"]["train_episodes"] == 3
    assert (tiny_actions / "actions.json").is_file()


def test_actions_eval_scores_a_frame_causal_model(tmp_path):
    """The frame-causal family: recognition reads the clip's maps, anticipation the observed
    maps plus the predictor's rollout — a function of the observed frames alone."""
    import monde
    from monde.evals.actions import causal_forecast_features

    out = tmp_path / "actions-causal"
    assert main(["train", "actions-causal-tiny", "--out", str(out), "--quiet", "train.steps=2",
                 "train.batch_size=2", "model.widths=[8,8,8]", "model.map_channels=8",
                 "model.predictor_hidden=8", "model.predictor_layers=2",
                 "train.checkpoint_every=2"]) == 0
    model = monde.load(out)
    protocol = ActionsProtocol(train_episodes=4, test_episodes=3, probe=ProbeConfig(epochs=1))
    r = actions_eval(model, protocol)
    for who in ("model", "random"):
        for task in ("recognition", "anticipation"):
            assert 0 <= r[who][task]["top1"] <= 1 and r[who][task]["n"] > 0
    obs = (np.random.default_rng(0).random((2, 4, 3, 64, 64)) * 255).astype(np.uint8)
    a = causal_forecast_features(model.jepa, obs, pool=2)
    # 4 observed + 4 forecast frames, 4x4 tokens of 2x2 cells with 8 channels each
    assert a.shape == (2, 8 * 4 * 4, 8 * 4)
    torch.testing.assert_close(a[:1], causal_forecast_features(model.jepa, obs[:1], pool=2),
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(ConfigError, match="forecasts from 4 frames"):
        causal_forecast_features(model.jepa, obs[:, :3], pool=2)


def test_standardise_uses_the_training_statistics_only():
    from monde.evals.attentive_probe import standardise_tokens as _standardise

    g = torch.Generator().manual_seed(0)
    xtr = torch.randn(50, 6, 3, generator=g) * torch.tensor([1e-3, 1.0, 1e3]) + 5
    xte = xtr[:10] + 1e-3
    a, b = _standardise(xtr, xte)
    torch.testing.assert_close(a.mean((0, 1)), torch.zeros(3), atol=1e-3, rtol=0)
    torch.testing.assert_close(a.std((0, 1)), torch.ones(3), atol=1e-3, rtol=0)
    # the test set is shifted with the training set's scale, not re-centred on its own
    torch.testing.assert_close(b, a[:10] + 1e-3 / xtr.std((0, 1)), atol=1e-3, rtol=1e-4)


def test_cli_eval_actions_trains_the_frame_causal_recipe_by_default(tiny_actions, capsys,
                                                                    monkeypatch):
    import monde.cli_video as V
    import monde.evals.actions as A

    monkeypatch.setattr(A, "ActionsProtocol",
                        lambda: ActionsProtocol(train_episodes=3, test_episodes=2,
                                                probe=ProbeConfig(epochs=1)))
    trained = []
    monkeypatch.setattr(V, "_train", lambda name, *a, **k: trained.append(name) or tiny_actions)
    assert main(["eval", "actions", "--json"]) == 0
    assert trained == ["actions-causal-tiny"]
