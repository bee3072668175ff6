"""Frozen planning protocols: reach goals in a built-in world with MPC, count successes."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from monde.errors import ConfigError
from monde.evals.protocol import protocol_record
from monde.planning.config import PlannerConfig
from monde.planning.mpc import EpisodeResult, run_episode
from monde.worlds.two_rooms import TwoRooms, TwoRoomsConfig


@dataclass(frozen=True)
class TwoRoomsPlanProtocol:
    """Two-Rooms goal reaching (PLDM's protocol): start and goal in opposite rooms.

    Starts and goals are uniform in their rooms, at least ``inset`` pixels from walls and
    border; success is reaching the goal within ``success_radius`` pixels inside ``budget``
    steps. The world's geometry is the model's (from its training data), checked against
    ``door_half`` and ``max_speed`` here so that a result always means the same task.
    """

    name: str = "two-rooms-plan"
    version: int = 1
    episodes: int = 50
    seed: int = 20261129
    budget: int = 200
    inset: float = 2.0
    success_radius: float = 4.5
    door_half: float = 5.0
    max_speed: float = 2.45


@dataclass(frozen=True)
class ReacherPlanProtocol:
    """Reacher goal reaching: start and goal poses at rest, uniform (shoulder in [-π, π], elbow
    within ±2.5 rad); the goal is given as an image of the arm at the goal pose; success is the
    fingertip within ``success_radius`` metres of the goal pose's fingertip inside ``budget``
    environment steps (``budget`` × 0.02 s of simulated time)."""

    name: str = "reacher-plan"
    version: int = 1
    episodes: int = 50
    seed: int = 20261129
    budget: int = 100
    success_radius: float = 0.02


@dataclass(frozen=True)
class PushTPlanProtocol:
    """PushT goal reaching (DINO-WM's test): the goal is the state a scripted pusher reaches
    ``goal_steps`` steps from a random start (so it is reachable in that many steps), given as
    an image plus the agent's proprioception; success is the block within ``success_pos``
    units (of the 512-unit table) and ``success_angle`` radians of the goal pose at any step
    inside ``budget`` steps. Tasks whose start already succeeds are redrawn."""

    name: str = "pusht-plan"
    version: int = 1
    episodes: int = 50
    seed: int = 20261129
    budget: int = 50
    goal_steps: int = 25
    success_pos: float = 20.0
    success_angle: float = math.pi / 9


@dataclass(frozen=True)
class PointMazePlanProtocol:
    """PointMaze goal reaching in gymnasium-robotics' U-maze: start and goal at rest, uniform
    over the free cells (``cell_margin`` from their walls) and at least ``min_distance`` units
    apart, so most tasks lead around the inner wall; the goal is an image plus the point's
    proprioception at the goal; success is the point within ``success_radius`` of the goal
    (gymnasium-robotics' own test) at any step inside ``budget`` environment steps of 0.05 s."""

    name: str = "pointmaze-plan"
    version: int = 1
    episodes: int = 50
    seed: int = 20261129
    budget: int = 200
    maze: str = "PointMaze_UMaze-v3"
    min_distance: float = 1.5
    success_radius: float = 0.45
    substeps: int = 5
    cell_margin: float = 0.3


PROTOCOLS = {"two-rooms": TwoRoomsPlanProtocol, "reacher": ReacherPlanProtocol,
             "pusht": PushTPlanProtocol, "pointmaze": PointMazePlanProtocol}


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (sensible at 0% and 100%, unlike ±1.96·SE)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def tasks(protocol, world) -> tuple[np.ndarray, np.ndarray]:
    """The protocol's start and goal states (Two-Rooms: positions ``[episodes, 2]`` each)."""
    rng = np.random.default_rng(protocol.seed)
    if isinstance(protocol, ReacherPlanProtocol):
        return world.sample_task(rng, protocol.episodes)
    if isinstance(protocol, PushTPlanProtocol):
        return world.sample_task(rng, protocol.episodes, protocol.goal_steps)
    if isinstance(protocol, PointMazePlanProtocol):
        return world.sample_task(rng, protocol.episodes, protocol.min_distance)
    room = rng.integers(0, 2, size=protocol.episodes)
    return (world.sample_positions(rng, protocol.episodes, room, protocol.inset),
            world.sample_positions(rng, protocol.episodes, 1 - room, protocol.inset))


def world_for(model, protocol):
    """The model's world, checked to be the protocol's task."""
    if isinstance(protocol, ReacherPlanProtocol):
        from monde.worlds.reacher import Reacher, ReacherConfig

        if model.meta.get("world") != "reacher":
            raise ConfigError(f"this model was trained on world {model.meta.get('world')!r}, "
                              "not reacher; plan with a model trained by `monde train reacher`")
        rc = ReacherConfig(**model.meta.get("world_config", {}))
        if rc.success_radius != protocol.success_radius:
            raise ConfigError("the model's reacher success radius differs from the protocol's")
        return Reacher(rc)
    if isinstance(protocol, PushTPlanProtocol):
        from monde.worlds.pusht import PushT, PushTConfig

        if model.meta.get("world") != "pusht":
            raise ConfigError(f"this model was trained on world {model.meta.get('world')!r}, "
                              "not pusht; plan with a model trained by `monde train pusht`")
        pc = PushTConfig(**model.meta.get("world_config", {}))
        if (pc.success_pos, pc.success_angle) != (protocol.success_pos, protocol.success_angle):
            raise ConfigError("the model's pusht success test differs from the protocol's")
        return PushT(pc)
    if isinstance(protocol, PointMazePlanProtocol):
        from monde.worlds.pointmaze import PointMaze, PointMazeConfig

        if model.meta.get("world") != "pointmaze":
            raise ConfigError(f"this model was trained on world {model.meta.get('world')!r}, "
                              "not pointmaze; plan with a model trained by `monde train pointmaze`")
        mc = PointMazeConfig(**model.meta.get("world_config", {}))
        if (mc.maze, mc.success_radius, mc.substeps, mc.cell_margin) != (
                protocol.maze, protocol.success_radius, protocol.substeps, protocol.cell_margin):
            raise ConfigError("the model's pointmaze (maze, success radius, substeps or cell "
                              "margin) differs from the protocol's; results would not be comparable")
        return PointMaze(mc)
    if model.meta.get("world") != "two-rooms":
        raise ConfigError(f"this model was trained on world {model.meta.get('world')!r}, not "
                          "two-rooms; plan with a model trained by `monde train two-rooms`")
    wc = TwoRoomsConfig(**model.meta.get("world_config", {}))
    if (wc.door_half, wc.max_speed, wc.success_radius) != (
            protocol.door_half, protocol.max_speed, protocol.success_radius):
        raise ConfigError("the model's world differs from the protocol's (door, speed or "
                          "success radius); results would not be comparable")
    return TwoRooms(wc)


def evaluate(model, protocol, planner: PlannerConfig, *,
             progress=None, record: int = 0) -> tuple[dict, list[EpisodeResult]]:
    """Run the protocol; returns the JSON-able summary and the episodes.

    ``progress`` is an optional ``callable(done, successes)``; ``record`` keeps imagined plans
    for the first ``record`` episodes (for plots).
    """
    planner.validate()
    world = world_for(model, protocol)
    starts, goals = tasks(protocol, world)
    episodes, t0 = [], time.perf_counter()
    for i in range(protocol.episodes):
        ep = run_episode(model, world, starts[i], goals[i], planner, protocol.budget,
                         record_plans=i < record)
        episodes.append(ep)
        if progress:
            progress(i + 1, sum(e.success for e in episodes))
    total = time.perf_counter() - t0
    wins = sum(e.success for e in episodes)
    lo, hi = wilson_interval(wins, len(episodes))
    plan_times = [s for e in episodes for s in e.plan_seconds]
    summary = {
        "protocol": protocol_record(protocol), "world": model.meta.get("world"),
        "planner": asdict(planner),
        "success_rate": wins / len(episodes), "success_ci95": [round(lo, 4), round(hi, 4)],
        "episodes": len(episodes), "successes": wins,
        "mean_steps_to_success": (float(np.mean([e.steps for e in episodes if e.success]))
                                  if wins else None),
        "seconds_per_episode": round(total / len(episodes), 4),
        "seconds_per_plan": round(float(np.mean(plan_times)), 5) if plan_times else None,
        "seconds": round(total, 2)}
    return summary, episodes
