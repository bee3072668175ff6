"""Linear-probe maths and the probe protocol end to end on a tiny model."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from monde.evals.probe import (
    BallsProbeProtocol,
    probe_encoder,
    r2_score,
    ridge_fit,
    ridge_predict,
    slot_targets,
)
from monde.jepa.config import EncoderConfig
from monde.jepa.networks import Encoder
from monde.worlds.balls import BallsConfig


def test_ridge_matches_closed_form_in_primal_and_dual():
    rng = np.random.default_rng(0)
    for n, f in [(50, 5), (8, 30)]:
        x, y = rng.normal(size=(n, f)), rng.normal(size=(n, 2))
        lam = 0.3
        model = ridge_fit(x, y, lam)
        xs = (x - x.mean(0)) / (x.std(0) + 1e-6)
        w = np.linalg.solve(xs.T @ xs + lam * n * np.eye(f), xs.T @ (y - y.mean(0)))
        np.testing.assert_allclose(model[0][:-1], w, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(ridge_predict(model, x), xs @ w + y.mean(0), atol=1e-8)


def test_r2_score_definition():
    y = np.array([[1.0], [2.0], [3.0]])
    assert r2_score(y, y) == 1.0
    assert abs(r2_score(y, np.full_like(y, 2.0))) < 1e-9
    assert abs(r2_score(y, np.array([[3.0], [2.0], [1.0]])) + 3.0) < 1e-9


def test_slot_targets_average_over_tubelets():
    state = np.arange(2 * 4 * 1 * 4, dtype=np.float32).reshape(2, 4, 1, 4)
    pos, vel = slot_targets(state, tubelet=2)
    assert pos.shape == (2, 2, 2) and vel.shape == (2, 2, 2)
    np.testing.assert_allclose(pos[0, 0], (state[0, 0, 0, :2] + state[0, 1, 0, :2]) / 2)


def _small_probe_setup():
    """A random 1-block encoder of 16×16 clips of one ball, and a smaller probe protocol."""
    torch.manual_seed(0)
    enc = Encoder(EncoderConfig(frames=4, height=16, width=16, patch=4, tubelet=2, dim=32,
                                depth=1, heads=2)).eval()
    balls = BallsConfig(frames=4, size=16, n_balls=1, radius=(0.15, 0.2))
    proto = dataclasses.replace(BallsProbeProtocol(), train_clips=256, test_clips=128, pool=4)
    return enc, balls, proto


def test_probe_recovers_positions_from_an_informative_encoder():
    """Even a random patch embedding of 16×16 clips keeps where a ball is (R² well above 0)."""
    enc, balls, proto = _small_probe_setup()
    r = probe_encoder(enc, balls, proto)
    assert r["r2_position"] > 0.5


def test_hidden_r2_only_scores_hidden_balls():
    from monde.evals.probe import hidden_r2

    y = np.array([[0.1, 0.2, 0.5, 0.5], [0.3, 0.4, 0.6, 0.7], [0.5, 0.9, 0.2, 0.1]])
    hidden = np.array([[True, False], [True, False], [True, False]])
    wrong_elsewhere = y.copy()
    wrong_elsewhere[:, 2:] += 10.0  # ball 1 is visible: its errors must not count
    assert abs(hidden_r2(y, wrong_elsewhere, hidden) - 1.0) < 1e-9
    assert hidden_r2(y, y + 0.5, hidden) < 0
    assert np.isnan(hidden_r2(y, y, np.zeros_like(hidden)))


def test_attentive_probe_reads_positions_from_all_tokens():
    from monde.evals.attentive_probe import ProbeConfig

    enc, balls, proto = _small_probe_setup()
    r = probe_encoder(enc, balls, proto, ProbeConfig(epochs=60, heads=2, batch_size=32))
    assert r["attentive_r2_position"] > 0.5 and np.isfinite(r["attentive_r2_velocity"])


def test_probe_reads_frame_causal_maps_one_slot_per_frame():
    """The frame-causal model's per-frame maps go through the same protocol (one slot per
    frame), and a saved model of a non-balls world is refused with a clear error."""
    import pytest

    from monde.errors import ConfigError
    from monde.evals.probe import clip_maps, map_reader, run_probe
    from monde.jepa.causal_video import CausalVideoConfig, CausalVideoJEPA
    from monde.jepa.causal_video_world_model import CausalVideoWorldModel

    net = CausalVideoJEPA(CausalVideoConfig(size=16, context=2, rollout=2, widths=(8, 8),
                                            map_channels=8, predictor_hidden=8), seed=0).eval()
    reader = map_reader(net)
    video = torch.rand(3, 4, 3, 16, 16)
    maps = clip_maps(reader, video)
    assert reader.tubelet == 1 and maps.shape == (3, 4, 8, 4, 4)
    torch.testing.assert_close(maps[1, 2], net.encode(video[1, 2]))
    balls = BallsConfig(frames=4, size=16, n_balls=1, radius=(0.15, 0.2))
    proto = dataclasses.replace(BallsProbeProtocol(), train_clips=256, test_clips=128, pool=4)
    r = probe_encoder(net, balls, proto)
    assert r["r2_position"] > 0.5
    model = CausalVideoWorldModel(net, {"data": {"source": "manipulation"}})
    with pytest.raises(ConfigError, match="bouncing-balls"):
        run_probe(model, proto)


def test_fit_heads_keeps_a_rotary_pair_per_axis():
    from monde.evals.attentive_probe import ProbeConfig
    from monde.evals.probe import fit_heads

    cfg = ProbeConfig(heads=4)
    assert fit_heads(cfg, 128, 3) is cfg          # the ViT's tokens: unchanged
    assert fit_heads(cfg, 16, 3).heads == 2       # 16 channels, 3 axes: 8 per head
    assert fit_heads(cfg, 6, 3).heads == 1
