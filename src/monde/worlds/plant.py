"""A synthetic industrial plant: many correlated sensors, a few control inputs, injectable faults.

Real plant histories (Tennessee Eastman, turbofan fleets) are few and small; this simulator
gives an endless, fully known stand-in whose size is a parameter (64 sensors for tests, 2,000
for the scale benchmark) and whose faults are labelled step by step.

Model (all structure drawn from ``PlantConfig.seed``; noise and setpoint moves from the
``seed`` given to :meth:`SyntheticPlant.simulate`)::

    x_{t+1} = D x_t + G tanh(x_t[j]) + B u_t + w_t        latent state, k-dimensional
    y_t     = offset + scale * (sat(W lag(x)_t - c) + noise * e_t)     N sensors

* ``D`` is block-diagonal in modal coordinates: damped oscillators (radius 0.95-0.99) and slow
  real modes (0.9-0.995), plus a weak one-way coupling from earlier to later blocks. A
  block-triangular ``D`` keeps exactly the eigenvalues of its blocks, so the plant is stable
  by construction; the ``tanh`` feedback of one or two states is a bounded input, so the
  state stays bounded too.
* ``B = (I - D) B0`` so that a setpoint step ``u`` settles at ``x = B0 u``: every mode
  answers a move by about one unit, whatever its time constant.
* Each sensor reads a few latent states through ``W``, some through a first-order lag (0.7 or
  0.95), and one in eight saturates softly. Rows of ``W`` are scaled so that every sensor's
  signal has unit variance in a long reference run; ``scale`` / ``offset`` then give sensors
  different physical units.

The latent recursion is the only loop over time (``k``-dimensional); the sensor map is one
matmul on ``[T, 3k]`` lagged latents, so 2,000 sensors x 20,000 steps take about a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monde.errors import ConfigError, DataError
from monde.worlds.plant_faults import (
    FAULT_KINDS,
    PlantFault,
    apply_sensor_fault,
    coupling,
    resolve_fault,
)

__all__ = ["FAULT_KINDS", "PlantConfig", "PlantFault", "PlantRun", "SyntheticPlant"]

_LAGS = np.array([0.7, 0.95])  # sensor lag poles; sensors of group 0 have no lag
_LAG_SHARE = (0.6, 0.25, 0.15)  # share of sensors without lag, with lag 0.7, with lag 0.95
_REF_STEPS = 4000  # reference run that fixes sensor scaling: ~20 time constants of the slowest mode


@dataclass
class PlantConfig:
    """Structure of a synthetic plant; the same config always builds the same plant."""

    sensors: int = 64
    """Number of sensors N."""
    actions: int = 4
    """Number of control inputs A (setpoints / valves); may be 0."""
    latent: int = 8
    """Dimension k of the hidden process state."""
    noise: float = 0.02
    """Sensor noise std, relative to each sensor's normal std."""
    process_noise: float = 0.05
    """Std of the per-step disturbance added to every latent state."""
    move_every: int = 50
    """Mean number of steps between two setpoint moves of one control input."""
    seed: int = 0
    """Draws the structure: dynamics, loadings, lags, saturations, units."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` for a plant that cannot be built."""
        if self.sensors < 1 or self.latent < 1 or self.actions < 0:
            raise ConfigError(f"PlantConfig needs sensors >= 1, latent >= 1 and actions >= 0; got "
                              f"sensors={self.sensors}, latent={self.latent}, actions={self.actions}")
        if self.noise < 0 or self.process_noise < 0 or self.move_every < 1:
            raise ConfigError(f"PlantConfig needs noise >= 0, process_noise >= 0 and "
                              f"move_every >= 1; got {self.noise}, {self.process_noise}, "
                              f"{self.move_every}")


@dataclass
class PlantRun:
    """One simulated run; row ``t`` of every array is step ``t``."""

    values: np.ndarray
    """float32 [T, N] sensor readings."""
    actions: np.ndarray
    """float32 [T, A] commanded control inputs."""
    latent: np.ndarray
    """float32 [T, k] hidden process state."""
    fault: np.ndarray
    """int8 [T] label: 0 normal, ``i + 1`` while ``faults[i]`` is active (the latest wins)."""
    sensor_names: list[str]
    """N sensor names: ``s0000``, ``s0001``, …"""
    action_names: list[str]
    """A action names: ``u0``, ``u1``, …"""

    def __len__(self) -> int:
        return int(self.values.shape[0])


class SyntheticPlant:
    """A deterministic, vectorised plant simulator (see the module docstring for the model).

    Ground truth for tests and benchmarks: ``dynamics`` ``D [k, k]``, ``input_gain`` ``B [k, A]``,
    ``steady_gain`` ``B0 [k, A]``, ``loading`` ``W [N, 3k]``, ``latent_std [k]`` and
    ``sensor_std [N]`` (each sensor's normal std in its units: the unit of fault magnitudes).
    """

    def __init__(self, cfg: PlantConfig):
        cfg.validate()
        self.cfg = cfg
        n, a, k = cfg.sensors, cfg.actions, cfg.latent
        rng = np.random.default_rng([cfg.seed, 0])
        self.dynamics, self.leak = _modal_dynamics(k, rng)
        self.steady_gain = rng.standard_normal((k, a)) / np.sqrt(max(a, 1))  # B0 [k, A]
        self.input_gain = (np.eye(k) - self.dynamics) @ self.steady_gain  # B [k, A]
        self.nl_index = rng.choice(k, size=min(2, k), replace=False)
        self.nl_gain = 0.5 * rng.standard_normal((k, self.nl_index.size)) * self.leak[:, None]
        # Loadings: each sensor reads a few states, through the lag of its group.
        pick = rng.random((n, k)).argsort(axis=1)[:, :min(3, k)]
        w = np.zeros((n, k))
        np.put_along_axis(w, pick, rng.standard_normal(pick.shape), axis=1)
        group = rng.choice(3, size=n, p=_LAG_SHARE)
        self.loading = np.zeros((n, 3 * k))  # [N, 3k] over (x, lag 0.7 x, lag 0.95 x)
        for g in range(3):
            self.loading[group == g, g * k:(g + 1) * k] = w[group == g]
        self.saturating = np.flatnonzero(rng.random(n) < 0.125)
        self.sat_limit = rng.uniform(1.0, 2.0, self.saturating.size).astype(np.float32)
        self.scale = (10 ** rng.uniform(-1, 2, n)).astype(np.float32)
        self.offset = (10 ** rng.uniform(0, 3, n) * rng.choice([-1, 1], n, p=[0.2, 0.8]))
        self.offset = self.offset.astype(np.float32)
        self._calibrate(rng)
        self.sensor_names = [f"s{i:0{max(4, len(str(n - 1)))}d}" for i in range(n)]
        self.action_names = [f"u{i}" for i in range(a)]

    def _calibrate(self, rng: np.random.Generator) -> None:
        """Scale loadings to unit signal variance and record normal stds, from a reference run."""
        u = _moves(rng, _REF_STEPS, self.cfg.actions, self.cfg.move_every)
        drive = u @ self.input_gain.T + self.cfg.process_noise * rng.standard_normal(
            (_REF_STEPS, self.cfg.latent))
        lat = self._latent(drive, [], self.steady_gain @ u[0]).reshape(_REF_STEPS, -1)
        self.latent_std = lat[:, :self.cfg.latent].std(axis=0)
        cov = np.cov(lat, rowvar=False)
        var = np.einsum("nk,kl,nl->n", self.loading, cov, self.loading)
        self.loading /= np.where(var > 1e-12, np.sqrt(np.maximum(var, 1e-12)), 1.0)[:, None]
        self.center = (self.loading @ lat.mean(axis=0)).astype(np.float32)
        sig = np.ones(self.cfg.sensors)
        if self.saturating.size:
            v = lat @ self.loading[self.saturating].T - self.center[self.saturating]
            sig[self.saturating] = (self.sat_limit * np.tanh(v / self.sat_limit)).std(axis=0)
        self.loading = self.loading.astype(np.float32)
        # float32 [N] normal std of each sensor in its own units: the unit of fault magnitudes.
        self.sensor_std = (self.scale * np.sqrt(sig**2 + self.cfg.noise**2)).astype(np.float32)

    def _latent(self, drive: np.ndarray, switches: list[tuple[int, np.ndarray]],
                x0: np.ndarray) -> np.ndarray:
        """Run the recursion: ``drive [T, k]`` -> ``[T, 3, k]`` (x, lag 0.7 x, lag 0.95 x)."""
        t_all, k = drive.shape
        out = np.empty((t_all, 3, k))
        x, f = x0.astype(np.float64), np.tile(x0, (2, 1)).astype(np.float64)
        pole, keep = _LAGS[:, None], 1.0 - _LAGS[:, None]
        d, idx, g = self.dynamics, self.nl_index, self.nl_gain
        todo = sorted(switches, key=lambda s: s[0])
        for t in range(t_all):
            while todo and todo[0][0] == t:
                d = todo.pop(0)[1]
            f = pole * f + keep * x  # sensors' lag filters see x_t
            out[t, 0] = x
            out[t, 1:] = f
            x = d @ x + g @ np.tanh(x[idx]) + drive[t]
        return out

    def simulate(self, steps: int, seed: int, faults: Sequence[PlantFault] = (),
                 actions: np.ndarray | None = None, warmup: int = 200) -> PlantRun:
        """Simulate ``steps`` steps after ``warmup`` unrecorded ones.

        The same arguments always give identical arrays. ``actions [steps, A]``, when given,
        replace the random setpoint moves (the what-if interface; the warm-up holds
        ``actions[0]``); process and sensor noise depend only on ``seed``, so two runs with the
        same seed and different actions differ only through the actions.
        """
        cfg, k = self.cfg, self.cfg.latent
        if steps < 1 or warmup < 0:
            raise ConfigError(f"simulate needs steps >= 1 and warmup >= 0; got {steps}, {warmup}")
        faults = [self.resolve_fault(f) for f in faults]
        if len(faults) > 127:
            raise ConfigError("at most 127 faults per run (labels are int8)")
        u = self._commands(steps, seed, actions, warmup)
        applied = u.copy()
        for f in faults:
            if f.kind == "actuator":
                applied[warmup + f.start:, list(f.channels)] += f.magnitude
        rng = np.random.default_rng([cfg.seed, seed, 2])
        drive = applied @ self.input_gain.T + cfg.process_noise * rng.standard_normal(
            (warmup + steps, k))
        switches, d = [], self.dynamics
        for f in sorted((f for f in faults if f.kind == "dynamics"), key=lambda f: f.start):
            d = d + coupling(self, f, d)
            switches.append((warmup + f.start, d))
        lat = self._latent(drive, switches, self.steady_gain @ applied[0])[warmup:]
        values = self._sensors(lat.reshape(steps, 3 * k).astype(np.float32), seed)
        label = np.zeros(steps, np.int8)
        for i, f in enumerate(faults):
            apply_sensor_fault(self, values, f, np.random.default_rng([cfg.seed, seed, 4, i]))
            label[f.start:] = i + 1
        return PlantRun(values, u[warmup:].astype(np.float32),
                        np.ascontiguousarray(lat[:, 0], dtype=np.float32), label,
                        list(self.sensor_names), list(self.action_names))

    def _commands(self, steps: int, seed: int, actions: np.ndarray | None,
                  warmup: int) -> np.ndarray:
        a = self.cfg.actions
        if actions is None:
            rng = np.random.default_rng([self.cfg.seed, seed, 1])
            return _moves(rng, warmup + steps, a, self.cfg.move_every)
        actions = np.asarray(actions, dtype=np.float64)
        if actions.shape != (steps, a):
            raise DataError(f"actions must have shape [steps, A] = [{steps}, {a}] for this plant; "
                            f"got {actions.shape}")
        if not np.isfinite(actions).all():
            raise DataError("actions hold NaN or inf; give a finite command for every step")
        return np.concatenate([np.repeat(actions[:1], warmup, axis=0), actions])

    def _sensors(self, lat: np.ndarray, seed: int) -> np.ndarray:
        """``[T, 3k]`` lagged latents -> float32 ``[T, N]`` readings (one matmul, in place)."""
        v = lat @ self.loading.T
        v -= self.center
        if self.saturating.size:
            s = self.saturating
            v[:, s] = self.sat_limit * np.tanh(v[:, s] / self.sat_limit)
        rng = np.random.default_rng([self.cfg.seed, seed, 3])
        e = rng.standard_normal(v.shape, dtype=np.float32)
        e *= self.cfg.noise
        v += e
        del e
        v *= self.scale
        v += self.offset
        return v

    def resolve_fault(self, fault: PlantFault) -> PlantFault:
        """``fault`` checked against this plant, with its default channels filled in."""
        return resolve_fault(self, fault)

    def to_frame(self, run: PlantRun):
        """A pandas DataFrame with columns ``time``, the sensors, the actions and ``fault``."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ConfigError('plant tables need pandas: pip install "monde[sensors]"') from e
        parts = [pd.DataFrame({"time": np.arange(len(run))}),
                 pd.DataFrame(run.values, columns=run.sensor_names),
                 pd.DataFrame(run.actions, columns=run.action_names),
                 pd.DataFrame({"fault": run.fault})]
        return pd.concat(parts, axis=1)

    def write_csv(self, run: PlantRun, path: Path | str) -> Path:
        """Write :meth:`to_frame` as CSV (read it back with ``sensors=["s*"], actions=["u*"]``)."""
        self.to_frame(run).to_csv(path, index=False, float_format="%.7g")
        return Path(path)

    def write_parquet(self, run: PlantRun, path: Path | str) -> Path:
        """Write :meth:`to_frame` as Parquet."""
        self.to_frame(run).to_parquet(path, index=False)
        return Path(path)


def _modal_dynamics(k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Stable ``D [k, k]`` (oscillator blocks, then real modes) and each state's ``1 - |pole|``."""
    d, leak, blocks, i = np.zeros((k, k)), np.zeros(k), [], 0
    for _ in range(k // 4):
        r, th = rng.uniform(0.95, 0.99), rng.uniform(0.05, 0.5)
        d[i:i + 2, i:i + 2] = r * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
        leak[i:i + 2] = 1 - r
        blocks.append(slice(i, i + 2))
        i += 2
    while i < k:
        d[i, i] = rng.uniform(0.9, 0.995)
        leak[i] = 1 - d[i, i]
        blocks.append(slice(i, i + 1))
        i += 1
    for j, later in enumerate(blocks):  # weak one-way coupling: only earlier -> later blocks
        for earlier in blocks[:j]:
            if rng.random() < 0.3:
                shape = (later.stop - later.start, earlier.stop - earlier.start)
                d[later, earlier] = 0.3 * rng.standard_normal(shape) * leak[later][:, None]
    return d, leak


def _moves(rng: np.random.Generator, steps: int, actions: int, every: int) -> np.ndarray:
    """Piecewise-constant setpoints ``[steps, A]``: a new N(0, 1) level at random times."""
    move = rng.random((steps, actions)) < 1.0 / every
    move[0] = True
    # float32 levels: the recorded actions are then exactly the ones applied, so replaying a
    # run's actions reproduces it bit for bit.
    level = rng.standard_normal((steps, actions)).astype(np.float32).astype(np.float64)
    last = np.maximum.accumulate(np.where(move, np.arange(steps)[:, None], 0), axis=0)
    return level[last, np.arange(actions)]
