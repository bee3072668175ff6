"""Faults of the synthetic plant: what each kind does, and how it is checked and applied.

Sensor faults (bias, drift, stuck, noise) change the readings after the fact; process faults
(dynamics, actuator) change the simulated process itself, so their effect spreads through the
plant's dynamics to every sensor that reads the affected states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from monde.errors import ConfigError

if TYPE_CHECKING:
    from monde.worlds.plant import SyntheticPlant

FAULT_KINDS = ("bias", "drift", "stuck", "noise", "dynamics", "actuator")
SENSOR_FAULTS = ("bias", "drift", "stuck", "noise")


@dataclass
class PlantFault:
    """A fault that starts at step ``start`` of a run and lasts to its end."""

    kind: Literal["bias", "drift", "stuck", "noise", "dynamics", "actuator"]
    """bias: constant offset; drift: growing ramp; stuck: readings frozen at their value at
    ``start``; noise: extra sensor noise; dynamics: a new coupling between two latent modes
    (a process fault, seen by many sensors together); actuator: the plant receives the
    command plus an offset (a sticking valve; the recorded action stays the command)."""
    start: int
    """First faulty step (0-based, after warm-up)."""
    channels: tuple[int, ...] = ()
    """Sensor indices (bias/drift/stuck/noise), action indices (actuator) or the latent pair
    ``(to, from)`` (dynamics); empty = a default group drawn from the plant's seed."""
    magnitude: float = 1.0
    """Size in units of the affected sensors' normal std (bias, drift per ``ramp`` steps, extra
    noise std), of the action std (actuator offset) or of the target state's std (dynamics,
    roughly)."""
    ramp: int = 500
    """Steps over which a drift grows by ``magnitude`` (it keeps growing afterwards)."""


def resolve_fault(plant: SyntheticPlant, f: PlantFault) -> PlantFault:
    """Check ``f`` against ``plant`` and fill in its default channels."""
    if f.kind not in FAULT_KINDS:
        raise ConfigError(f"unknown fault kind '{f.kind}'; use one of {', '.join(FAULT_KINDS)}")
    if f.start < 0 or f.ramp < 1 or not np.isfinite(f.magnitude):
        raise ConfigError(f"fault {f.kind}: start must be >= 0, ramp >= 1 and magnitude finite; "
                          f"got start={f.start}, ramp={f.ramp}, magnitude={f.magnitude}")
    cfg = plant.cfg
    size = {"actuator": cfg.actions, "dynamics": cfg.latent}.get(f.kind, cfg.sensors)
    what = {"actuator": "actions", "dynamics": "latent states"}.get(f.kind, "sensors")
    channels = tuple(int(c) for c in f.channels) or _default_channels(plant, f.kind)
    if not channels or any(not 0 <= c < size for c in channels):
        raise ConfigError(f"fault {f.kind}: channels {channels or '()'} must index the plant's "
                          f"{size} {what}")
    if f.kind == "dynamics" and len(channels) != 2:
        raise ConfigError(f"a dynamics fault couples two latent states: channels=(to, from); "
                          f"got {channels}")
    return PlantFault(f.kind, int(f.start), channels, float(f.magnitude), int(f.ramp))


def _default_channels(plant: SyntheticPlant, kind: str) -> tuple[int, ...]:
    cfg = plant.cfg
    if kind == "actuator":
        return (0,) if cfg.actions else ()
    if kind == "dynamics":  # last (real) mode driven by the first block: keeps D triangular
        return (cfg.latent - 1, 0)
    rng = np.random.default_rng([cfg.seed, 5, FAULT_KINDS.index(kind)])
    n = max(1, cfg.sensors // 16)
    return tuple(sorted(int(c) for c in rng.choice(cfg.sensors, n, replace=False)))


def coupling(plant: SyntheticPlant, f: PlantFault, current: np.ndarray) -> np.ndarray:
    """The change of the dynamics for a dynamics fault: state ``to`` starts to follow state
    ``from``. ``current`` is ``D`` with the earlier dynamics faults of the run applied."""
    to, frm = f.channels
    delta = np.zeros_like(current)
    # Scaled so that the extra steady input moves `to` by about `magnitude` of its own std.
    ratio = plant.latent_std[to] / max(plant.latent_std[frm], 1e-9)
    delta[to, frm] = f.magnitude * plant.leak[to] * ratio
    if np.abs(np.linalg.eigvals(current + delta)).max() >= 0.999:
        raise ConfigError(f"a dynamics fault of magnitude {f.magnitude} on states {to}<-{frm} "
                          "would make the plant unstable; use a smaller magnitude or couple a "
                          "later state to an earlier one")
    return delta


def apply_sensor_fault(plant: SyntheticPlant, values: np.ndarray, f: PlantFault,
                       rng: np.random.Generator) -> None:
    """Apply a bias/drift/stuck/noise fault to ``values [T, N]`` in place (others: no-op)."""
    if f.kind not in SENSOR_FAULTS or f.start >= len(values):
        return
    ch, rows = list(f.channels), slice(f.start, None)
    size = f.magnitude * plant.sensor_std[ch]
    if f.kind == "bias":
        values[rows, ch] += size
    elif f.kind == "drift":
        ramp = np.arange(len(values) - f.start, dtype=np.float32)[:, None] / f.ramp
        values[rows, ch] += ramp * size
    elif f.kind == "stuck":
        values[rows, ch] = values[f.start, ch]
    else:  # noise
        values[rows, ch] += size * rng.standard_normal((len(values) - f.start, len(ch)),
                                                       dtype=np.float32)
