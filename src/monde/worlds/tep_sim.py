"""Tennessee Eastman under control moves: action-conditioned plant histories from ``tep-studio``.

The TEP data in ``../shared/data`` hold one operating point and no record of the control
moves. To learn *what the controls do*, this world runs the Tennessee Eastman simulator of
the optional ``tep-studio`` package (``pip install 'monde[tep]'``) in closed loop under its
decentralised PI controller (Ricker), and moves the controller's setpoints at random —
production rate, reactor pressure, level and temperature, separator and stripper levels,
product mix — to a new level every ``clock`` hours (with probability ``switch``). The
controller answers by moving the plant's 12 manipulated variables (valves, agitator speed),
and those *applied* moves are recorded as the actions beside the 41 measurements: the
history a plant engineer has, from which a world model learns ``readings | past readings,
valve moves``. The plant is open-loop unstable, which is why the excitation goes through the
setpoints rather than straight into the valves.

Rows are sampled every ``sample_every`` hours (0.05 h = 3 minutes, the TEP data's rate);
runs are deterministic for a seed (the measurement noise and the setpoint draws). A run that
ends in a plant shutdown is kept up to the shutdown and counted.
"""

from __future__ import annotations

import dataclasses as dc
from dataclasses import dataclass, field

import numpy as np

from monde.errors import ConfigError

DEFAULT_MOVES = {
    "production_rate": 2.0,
    "reactor_pressure": 30.0,
    "reactor_level": 5.0,
    "reactor_temperature": 1.0,
    "separator_level": 5.0,
    "stripper_level": 5.0,
    "pct_g": 5.0,
}
"""Setpoints moved, with the largest deviation from their base value (the setpoint's units:
m³/h-equivalent production index, kPa, %, °C, %, %, % G in the product)."""


@dataclass
class TepSimConfig:
    """How the simulated plant is run and recorded."""

    hours: float = 24.0
    """Simulated hours per run."""
    sample_every: float = 0.05
    """Hours between recorded rows (0.05 h = 3 min)."""
    control_interval: float = 0.0005
    """Hours per controller step and simulator advance (tep-studio's default)."""
    warmup: float = 1.0
    """Hours at the base setpoints before the first move."""
    clock: float = 1.0
    """Hours between setpoint decisions."""
    switch: float = 0.5
    """Probability that a setpoint takes a new random level at a decision."""
    moves: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MOVES))
    """Setpoint name → largest deviation from its base value (0 holds it)."""

    def validate(self) -> None:
        if self.hours <= 0 or self.sample_every <= 0 or self.control_interval <= 0:
            raise ConfigError("tep_sim: hours, sample_every and control_interval must be > 0")
        ratio = self.sample_every / self.control_interval
        if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
            raise ConfigError(f"tep_sim: sample_every ({self.sample_every} h) must be a whole "
                              f"number of control intervals ({self.control_interval} h)")
        if self.clock <= 0 or not 0 <= self.switch <= 1 or self.warmup < 0:
            raise ConfigError("tep_sim: clock must be > 0, switch in [0, 1], warmup >= 0")
        bad = {k: v for k, v in self.moves.items()
               if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0}
        if bad:
            raise ConfigError(f"tep_sim: setpoint moves must be numbers >= 0, got {bad}")


@dataclass
class TepHistory:
    """Simulated runs, concatenated."""

    values: np.ndarray
    """``float32 [T, 41]`` measurements."""
    actions: np.ndarray
    """``float32 [T, 12]`` applied manipulated variables (% open / speed)."""
    runs: list[slice]
    """Row range of each run."""
    sensor_names: list[str]
    action_names: list[str]
    shutdowns: int
    """Runs that ended early in a plant shutdown."""


def _tep():
    try:
        import tep_studio
    except ImportError as e:
        raise ConfigError("the Tennessee Eastman simulator is an optional extra: "
                          "pip install 'monde[tep]' (the tep-studio package)") from e
    return tep_studio


def _schedule(cfg: TepSimConfig, sim, rng: np.random.Generator):
    """``time (h) → ControllerSetpoints``: base setpoints plus held random deviations."""
    decisions = int(np.ceil(max(cfg.hours - cfg.warmup, 0) / cfg.clock)) + 1
    names = [n for n, a in cfg.moves.items() if a > 0]
    dev = np.zeros((decisions, len(names)))
    for i in range(1, decisions):  # decision 0 keeps the base; then switch with probability
        new = rng.uniform(-1, 1, len(names)) * [cfg.moves[n] for n in names]
        dev[i] = np.where(rng.random(len(names)) < cfg.switch, new, dev[i - 1])
    base = {}

    def schedule(t: float):
        sp = sim.controller.setpoints  # the mode's setpoints, set by the runner's reset
        if not base:
            unknown = [n for n in names if not hasattr(sp, n)]
            if unknown:
                raise ConfigError(f"tep_sim: unknown setpoints {unknown}")
            base.update({n: getattr(sp, n) for n in names})
        if t < cfg.warmup:
            return sp
        i = min(int((t - cfg.warmup) / cfg.clock), decisions - 1)
        return dc.replace(sp, **{n: base[n] + dev[i, j] for j, n in enumerate(names)})

    return schedule


def _run(cfg: TepSimConfig, seed: int, i: int) -> dict[str, np.ndarray]:
    """Run ``i`` of a set seeded ``seed``: ``values [T, 41]``, ``actions [T, 12]`` and
    ``terminated`` (1 when the plant shut down before ``cfg.hours``)."""
    tep = _tep()
    sim = tep.ClosedLoopSimulation(horizon=cfg.hours, control_interval=cfg.control_interval)
    rng = np.random.default_rng([seed, i])
    out = sim.run(seed=seed + i, setpoint_schedule=_schedule(cfg, sim, rng),
                  record_every=int(round(cfg.sample_every / cfg.control_interval)))
    steps = out.results  # one per `sample_every` hours (and the last, at a shutdown)
    return {"values": np.stack([r.measurements for r in steps]).astype(np.float32),
            "actions": np.stack([r.implemented_action for r in steps]).astype(np.float32),
            "terminated": np.array(int(out.terminated))}


def simulate(cfg: TepSimConfig, runs: int, seed: int, *, quiet: bool = False) -> TepHistory:
    """``runs`` closed-loop runs of ``cfg.hours``, run ``i`` seeded with ``seed + i``.

    A 24-h run takes about 20 s of simulation, so each run is kept in the on-disk cache
    (:mod:`monde.data.cache`, keyed by the settings, the seed, the run and tep-studio's
    version): training a model and evaluating it later simulate its runs once."""
    from importlib.metadata import version

    from monde.data.cache import cached_arrays
    from monde.train.metrics import Progress

    cfg.validate()
    if runs < 1:
        raise ConfigError(f"tep_sim: runs must be >= 1, got {runs}")
    tep = _tep()
    key = {"config": dc.asdict(cfg), "seed": seed, "tep_studio": version("tep-studio")}
    parts = []
    with Progress(runs, desc="simulating Tennessee Eastman", quiet=quiet, unit="run") as bar:
        for i in range(runs):
            parts.append(cached_arrays("tep-sim", {**key, "run": i}, lambda i=i: _run(cfg, seed, i),
                                       names=("values", "actions", "terminated")))
            bar.update(i + 1)
    lengths = np.cumsum([0] + [len(p["values"]) for p in parts])
    schema = tep.TEP_SCHEMA
    return TepHistory(np.concatenate([p["values"] for p in parts]),
                      np.concatenate([p["actions"] for p in parts]),
                      [slice(int(a), int(b)) for a, b in zip(lengths[:-1], lengths[1:])],
                      [v.name for v in schema.measurements],
                      [v.name for v in schema.manipulated_variables],
                      int(sum(int(p["terminated"]) for p in parts)))
