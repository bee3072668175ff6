"""The synthetic plant: determinism, shapes, the what-if interface, and each fault's effect."""

from __future__ import annotations

import numpy as np
import pytest

from monde.errors import ConfigError, DataError
from monde.worlds import PlantConfig, PlantFault, PlantRun, SyntheticPlant

STEPS, START = 400, 200


@pytest.fixture(scope="module")
def plant() -> SyntheticPlant:
    return SyntheticPlant(PlantConfig(sensors=48, actions=3, latent=6, seed=3))


@pytest.fixture(scope="module")
def normal(plant) -> PlantRun:
    return plant.simulate(STEPS, seed=7)


def _with(plant, kind, **kw) -> tuple[PlantRun, tuple[int, ...]]:
    """A faulty run with the same seed as ``normal`` (same noise), and the fault's channels."""
    run = plant.simulate(STEPS, seed=7, faults=[PlantFault(kind, START, **kw)])
    return run, plant.resolve_fault(PlantFault(kind, START, **kw)).channels


def test_shapes_names_and_determinism(plant, normal):
    assert normal.values.shape == (STEPS, 48) and normal.values.dtype == np.float32
    assert normal.actions.shape == (STEPS, 3) and normal.latent.shape == (STEPS, 6)
    assert normal.fault.dtype == np.int8 and not normal.fault.any() and len(normal) == STEPS
    assert normal.sensor_names[:2] == ["s0000", "s0001"] and normal.action_names[-1] == "u2"
    again = SyntheticPlant(PlantConfig(sensors=48, actions=3, latent=6, seed=3)).simulate(
        STEPS, seed=7)
    np.testing.assert_array_equal(again.values, normal.values)
    np.testing.assert_array_equal(again.actions, normal.actions)
    other = plant.simulate(STEPS, seed=8)
    assert not np.allclose(other.values, normal.values)
    assert not np.array_equal(other.actions, normal.actions)


def test_stable_and_scaled(plant):
    assert np.abs(np.linalg.eigvals(plant.dynamics)).max() < 1
    long = plant.simulate(4000, seed=1)
    assert np.isfinite(long.values).all()
    ratio = long.values.std(axis=0) / plant.sensor_std
    assert 0.5 < np.median(ratio) < 2.0  # sensors vary by about their nominal std
    # Setpoints move piecewise-constantly, about every `move_every` steps per input.
    moves = (np.diff(long.actions, axis=0) != 0).sum(axis=0)
    assert np.all((moves > 4000 / 50 / 2) & (moves < 4000 / 50 * 2))


def test_sensor_map_is_lagged_loading_saturation_and_units():
    """Golden maths: with no sensor noise, readings are offset + scale * sat(W lag(x) - c)."""
    plant = SyntheticPlant(PlantConfig(sensors=200, actions=2, latent=5, noise=0.0, seed=1))
    run = plant.simulate(300, seed=0, warmup=0)
    x = run.latent.astype(np.float64)
    lags = [x]
    for pole in (0.7, 0.95):
        f, out = x[0], np.empty_like(x)
        for t in range(len(x)):
            f = pole * f + (1 - pole) * x[t]
            out[t] = f
        lags.append(out)
    v = np.concatenate(lags, axis=1) @ plant.loading.T.astype(np.float64) - plant.center
    sat = plant.saturating
    assert sat.size > 0 and (np.abs(v[:, sat]) > plant.sat_limit).any()  # saturation bites
    v[:, sat] = plant.sat_limit * np.tanh(v[:, sat] / plant.sat_limit)
    # Compared in signal units (unit std); float32 readings carry ~1e-4 of rounding there.
    np.testing.assert_allclose((run.values - plant.offset) / plant.scale, v, atol=2e-3)
    groups = (plant.loading.reshape(200, 3, 5) != 0).any(axis=2).sum(axis=0)
    assert np.all(groups > 10)  # every lag group is used
    assert plant.scale.max() / plant.scale.min() > 50  # sensors in very different units


def test_replayed_actions_reproduce_the_run_and_changes_act_causally(plant):
    run = plant.simulate(300, seed=4, warmup=0)
    replay = plant.simulate(300, seed=4, actions=run.actions, warmup=0)
    np.testing.assert_array_equal(replay.values, run.values)
    what_if = run.actions.copy()
    what_if[100:, 0] += 2.0
    changed = plant.simulate(300, seed=4, actions=what_if, warmup=0)
    np.testing.assert_array_equal(changed.values[:100], run.values[:100])
    shift = np.abs(changed.values[200:] - run.values[200:]).mean(axis=0) / plant.sensor_std
    assert (shift > 0.2).mean() > 0.3  # a setpoint move is seen by many sensors
    with pytest.raises(DataError, match=r"\[300, 3\]"):
        plant.simulate(300, seed=4, actions=np.zeros((300, 2)))
    with pytest.raises(DataError, match="NaN"):
        plant.simulate(2, seed=4, actions=np.full((2, 3), np.nan))


def test_bias_shifts_the_mean_of_its_group(plant, normal):
    run, ch = _with(plant, "bias", magnitude=2.0)
    diff = run.values.astype(np.float64) - normal.values
    assert np.all(run.fault[:START] == 0) and np.all(run.fault[START:] == 1)
    np.testing.assert_array_equal(diff[:START], 0)
    np.testing.assert_allclose(diff[START:, list(ch)], np.broadcast_to(
        2.0 * plant.sensor_std[list(ch)], (STEPS - START, len(ch))), rtol=1e-3)
    others = np.setdiff1d(np.arange(48), ch)
    np.testing.assert_array_equal(diff[:, others], 0)


def test_drift_grows(plant, normal):
    run, ch = _with(plant, "drift", magnitude=1.0, ramp=100)
    dev = (run.values[:, list(ch)].astype(np.float64) - normal.values[:, list(ch)])
    dev /= plant.sensor_std[list(ch)]
    np.testing.assert_allclose(dev[START + 100], 1.0, rtol=1e-3)
    np.testing.assert_allclose(dev[-1], (STEPS - 1 - START) / 100, rtol=1e-3)
    assert np.all(np.diff(dev[START:], axis=0) > 0)


def test_stuck_sensors_freeze(plant, normal):
    run, ch = _with(plant, "stuck", channels=(1, 5))
    assert ch == (1, 5)
    after = run.values[START:, [1, 5]]
    assert np.all(after == after[0])
    np.testing.assert_array_equal(after[0], normal.values[START, [1, 5]])
    assert np.all(normal.values[START:, [1, 5]].std(axis=0) > 0.1 * plant.sensor_std[[1, 5]])


def test_noise_fault_adds_variance(plant, normal):
    run, ch = _with(plant, "noise", magnitude=1.5)
    extra = (run.values[START:, list(ch)].astype(np.float64) - normal.values[START:, list(ch)])
    np.testing.assert_allclose(extra.std(axis=0) / plant.sensor_std[list(ch)], 1.5, rtol=0.25)


def test_dynamics_fault_is_a_correlated_change(plant, normal):
    run, (to, frm) = _with(plant, "dynamics", magnitude=3.0)
    np.testing.assert_array_equal(run.values[:START], normal.values[:START])
    lat = run.latent[START:, to] - normal.latent[START:, to]
    assert np.abs(lat).mean() > 0.5 * plant.latent_std[to]
    change = (run.values[START:].astype(np.float64) - normal.values[START:]) / plant.sensor_std
    moved = np.abs(change).mean(axis=0) > 0.2
    assert moved.sum() >= 6  # seen by many sensors, not one
    sv = np.linalg.svd(change[:, moved] - change[:, moved].mean(axis=0), compute_uv=False)
    assert sv[0] ** 2 / (sv**2).sum() > 0.6  # ... and together: one underlying cause


def test_actuator_fault_changes_the_plant_not_the_record(plant, normal):
    run, ch = _with(plant, "actuator", magnitude=2.0)
    assert ch == (0,)
    np.testing.assert_array_equal(run.actions, normal.actions)
    np.testing.assert_array_equal(run.values[:START], normal.values[:START])
    shift = np.abs(run.values[START + 100:] - normal.values[START + 100:]).mean(axis=0)
    assert (shift / plant.sensor_std > 0.3).sum() >= 6


def test_fault_errors(plant):
    with pytest.raises(ConfigError, match="unknown fault kind 'leak'"):
        plant.simulate(10, seed=0, faults=[PlantFault("leak", 5)])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="48 sensors"):
        plant.simulate(10, seed=0, faults=[PlantFault("bias", 5, channels=(48,))])
    with pytest.raises(ConfigError, match="unstable"):
        plant.simulate(10, seed=0, faults=[PlantFault("dynamics", 5, channels=(0, 0),
                                                      magnitude=50.0)])
    with pytest.raises(ConfigError, match="sensors >= 1"):
        SyntheticPlant(PlantConfig(sensors=0))


def test_two_thousand_sensors(tmp_path):
    big = SyntheticPlant(PlantConfig(sensors=2000, seed=1))
    run = big.simulate(500, seed=0, faults=[PlantFault("bias", 250)])
    assert run.values.shape == (500, 2000) and np.isfinite(run.values).all()
    assert run.sensor_names[-1] == "s1999" and run.fault[249] == 0 and run.fault[250] == 1
    spread = run.values.std(axis=0) / big.sensor_std
    assert 0.2 < np.median(spread) < 2.0


def test_table_round_trip_through_read_table(plant, tmp_path):
    pytest.importorskip("pandas")
    from monde.data import SensorSchema, read_table

    run = plant.simulate(50, seed=2, faults=[PlantFault("bias", 25)])
    schema = SensorSchema(time="time", sensors=["s*"], actions=["u*"])
    for path in (plant.write_csv(run, tmp_path / "p.csv"),
                 plant.write_parquet(run, tmp_path / "p.parquet")):
        table = read_table(path, schema)
        assert table.sensor_names == run.sensor_names and table.action_names == run.action_names
        np.testing.assert_allclose(table.values, run.values, rtol=1e-6)
        np.testing.assert_allclose(table.actions, run.actions, rtol=1e-6)
    assert list(plant.to_frame(run)["fault"])[24:26] == [0, 1]
