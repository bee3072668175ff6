"""Tennessee Eastman under control moves: the tep-studio world, the tep-control protocol."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from monde.errors import ConfigError
from monde.jepa.sensor_model import SensorJEPA, SensorModelConfig
from monde.worlds.tep_sim import TepSimConfig, simulate

SHORT = dict(hours=0.6, warmup=0.1, clock=0.1, switch=1.0)


def test_simulated_runs_are_seeded_and_the_setpoint_moves_move_the_valves(monkeypatch):
    pytest.importorskip("tep_studio")
    monkeypatch.setenv("MONDE_CACHE", "off")  # determinism of the simulator, not of the cache
    a = simulate(TepSimConfig(**SHORT), runs=2, seed=3)
    assert a.values.shape == (24, 41) and a.actions.shape == (24, 12)
    assert a.runs == [slice(0, 12), slice(12, 24)] and a.shutdowns == 0
    assert len(a.sensor_names) == 41 and len(a.action_names) == 12
    assert np.isfinite(a.values).all()
    again = simulate(TepSimConfig(**SHORT), runs=1, seed=3)
    np.testing.assert_array_equal(again.values, a.values[:12])  # deterministic for a seed
    other = simulate(TepSimConfig(**SHORT), runs=1, seed=4)
    assert not np.array_equal(other.values, a.values[:12])
    still = simulate(TepSimConfig(**SHORT, moves={}), runs=1, seed=3)
    # The same noise seed without setpoint moves: the controller moves the valves far less.
    moved = np.abs(np.diff(a.actions[:12], axis=0)).sum()
    assert moved > 2 * np.abs(np.diff(still.actions, axis=0)).sum()
    from monde.recipes.sensors import SensorDataConfig, load_history

    hist = load_history(SensorDataConfig(source="tep-sim", tep_sim=TepSimConfig(**SHORT),
                                         sim_runs=2, sim_seed=3))
    np.testing.assert_array_equal(hist.values, a.values)
    assert hist.actions.shape == (24, 12) and "0 shut down" in hist.source
    with pytest.raises(ConfigError, match="unknown setpoints"):
        simulate(TepSimConfig(**{**SHORT, "moves": {"reactor_colour": 1.0}}), runs=1, seed=0)


def test_simulated_runs_are_cached_and_a_broken_entry_is_made_again(monkeypatch, tmp_path):
    pytest.importorskip("tep_studio")
    from monde.worlds import tep_sim

    monkeypatch.setenv("MONDE_CACHE", str(tmp_path))
    calls = []
    real = tep_sim._run
    monkeypatch.setattr(tep_sim, "_run", lambda *a: calls.append(a) or real(*a))
    a = simulate(TepSimConfig(**SHORT), runs=2, seed=3, quiet=True)
    assert len(calls) == 2 and len(list((tmp_path / "tep-sim").glob("*.npz"))) == 2
    b = simulate(TepSimConfig(**SHORT), runs=2, seed=3, quiet=True)
    assert len(calls) == 2  # both runs read back
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.actions, b.actions)
    assert b.runs == a.runs and b.shutdowns == a.shutdowns
    simulate(TepSimConfig(**{**SHORT, "switch": 0.5}), runs=1, seed=3, quiet=True)
    assert len(calls) == 3  # other settings, another entry
    for f in (tmp_path / "tep-sim").glob("*.npz"):
        f.write_bytes(f.read_bytes()[:100])  # as if a disk filled up mid-write
    with pytest.warns(UserWarning, match="does not read back"):
        c = simulate(TepSimConfig(**SHORT), runs=2, seed=3, quiet=True)
    assert len(calls) == 5
    np.testing.assert_array_equal(c.values, a.values)


def test_bad_settings_and_a_missing_simulator_say_what_to_do(monkeypatch):
    with pytest.raises(ConfigError, match="whole number of control intervals"):
        simulate(TepSimConfig(sample_every=0.0507), runs=1, seed=0)
    with pytest.raises(ConfigError, match="numbers >= 0"):
        simulate(TepSimConfig(moves={"reactor_level": -1.0}), runs=1, seed=0)
    with pytest.raises(ConfigError, match="runs must be >= 1"):
        simulate(TepSimConfig(), runs=0, seed=0)
    monkeypatch.setitem(sys.modules, "tep_studio", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"monde\[tep\]"):
        simulate(TepSimConfig(**SHORT), runs=1, seed=0)


def _linear_plant(n: int = 3000, seed: int = 0):
    """y[t] = 0.8 y[t-1] + u[t] (+ a second, unrelated channel): the future moves decide it."""
    rng = np.random.default_rng(seed)
    u = np.repeat(rng.normal(size=n // 10), 10)[:, None].astype(np.float32)
    y = np.zeros((n, 2), np.float32)
    y[:, 1] = rng.normal(size=n)
    for t in range(1, n):
        y[t, 0] = 0.8 * y[t - 1, 0] + u[t, 0]
    return y, u


def test_the_arx_baseline_recovers_a_linear_plant_from_its_future_moves():
    from monde.evals.tep_control import _arx_features, fit_arx

    y, u = _linear_plant()
    net = SensorJEPA(SensorModelConfig(channels=2, actions=1, groups=2, window=16, patch=4))
    net.set_normalization(np.zeros(2), np.ones(2), np.zeros(1), np.ones(1))
    runs = [slice(0, 3000)]
    wts, lam = fit_arx(net, y, u, runs, ctx=8, horizon=8, grid=(1e-6, 1e-2, 1.0))
    assert lam in (1e-6, 1e-2, 1.0)
    t = np.arange(100, 2900, 37)
    idx = t[:, None] + np.arange(16)[None]
    x = torch.from_numpy(y[idx].transpose(0, 2, 1).copy())
    a = torch.from_numpy(u[idx].copy())
    f, ref = _arx_features(net, x, a, 8)
    pred = (f @ wts).float().view(len(t), 2, 8) + ref
    err = ((pred - x[:, :, 8:]) ** 2).mean((0, 2))
    assert err[0] < 1e-3  # the controlled channel: exact up to the ridge
    assert err[1] > 0.5   # white noise stays unpredictable: the fit is not leaking the future


def test_the_protocol_scores_a_model_with_the_plants_moves_held_and_recorded():
    """The whole protocol on a tiny (untrained) model of the linear plant: every figure is
    there and finite, and the held moves really are held."""
    from monde.evals.tep_control import TepControlProtocol, tep_control_eval
    from monde.jepa.sensor_forecast import fit_decoder
    from monde.jepa.sensor_world_model import SensorWorldModel

    y, u = _linear_plant(1200)
    cfg = SensorModelConfig(channels=2, actions=1, groups=2, window=16, patch=4,
                            future_patches=2, dim=16, depth=1, heads=2, predictor_dim=16,
                            predictor_depth=1, predictor_heads=2)
    net = SensorJEPA(cfg)
    net.set_normalization(y.mean(0), y.std(0), u.mean(0), u.std(0))
    wm = SensorWorldModel(net, {"sensor_names": ["y", "noise"], "action_names": ["u"]})
    fit_decoder(wm, y, u, [slice(0, 800)])
    hist = SimpleNamespace(values=y[:800], actions=u[:800], runs=[slice(0, 800)])
    test = SimpleNamespace(values=y[800:], actions=u[800:], runs=[slice(0, 400)], shutdowns=0)
    r = tep_control_eval(wm, hist, test, TepControlProtocol(stride=8))
    assert r["windows"] == len(range(0, 400 - 16 + 1, 8)) and r["horizon_rows"] == 8
    b = r["baselines"]
    for row in (r["monde"]["moves"], r["monde"]["held"], b["random_init"]["moves"],
                b["random_init"]["held"], b["arx_ridge"], b["persistence"]):
        assert np.isfinite(row["mse"]) and np.isfinite(row["mse_moving"])
    # ARX reads the future moves of a plant they decide: far better than persistence.
    assert r["baselines"]["arx_ridge"]["mse"] < 0.7 * r["baselines"]["persistence"]["mse"]
    assert set(r["monde"]["latent_nmse"]) == {"moves", "held"}
    with pytest.raises(ConfigError, match="monde train tep-control"):
        tep_control_eval(wm, hist, SimpleNamespace(values=np.zeros((50, 41)),
                                                   actions=np.zeros((50, 12)), runs=[]))
