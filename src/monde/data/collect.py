"""``monde data collect``: roll a policy in a built-in world and write an episode dataset."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from monde.data.episodes import EpisodeWriter
from monde.errors import ConfigError
from monde.worlds.policies import POLICIES, SmoothRandom, make_policy
from monde.worlds.two_rooms import TwoRooms

WORLDS = ("two-rooms", "reacher", "pusht", "pointmaze")
# Data-collection policies each world knows.
WORLD_POLICIES = {"two-rooms": POLICIES, "reacher": ("random",), "pusht": ("push", "random"),
                  "pointmaze": ("random",)}


@dataclass
class CollectConfig:
    """What to collect."""

    world: str = "two-rooms"
    """Built-in world (``two-rooms``, ``reacher``, ``pusht`` or ``pointmaze``)."""
    episodes: int = 1000
    """Episodes to write."""
    steps: int = 64
    """Actions per episode (each episode holds ``steps + 1`` observations)."""
    policy: str = "random"
    """Two-Rooms: ``random`` or ``noisy-expert``; Reacher and PointMaze: ``random``; PushT: ``push`` (a
    scripted pusher that keeps touching the block) or ``random``."""
    seed: int = 0
    """Seeds start states and the policy."""
    chunk: int = 500
    """Episodes per file chunk."""
    door_crossings: bool = True
    """False keeps only episodes that stay in one room (PLDM's hard split)."""


def collect(cfg: CollectConfig, out: Path | str, world_cfg=None, progress=None) -> dict:
    """Collect ``cfg.episodes`` episodes into ``out``; returns the manifest (plus timing).

    ``world_cfg`` is the world's config (``TwoRoomsConfig`` or ``ReacherConfig``; default
    settings when None). ``progress`` is an optional ``callable(episodes_done)``.
    """
    if cfg.world not in WORLDS:
        raise ConfigError(f"unknown world '{cfg.world}'; worlds with data collection: "
                          + ", ".join(WORLDS))
    if cfg.policy not in WORLD_POLICIES[cfg.world]:
        raise ConfigError(f"unknown policy '{cfg.policy}' for the {cfg.world} world; choose one of "
                          + ", ".join(WORLD_POLICIES[cfg.world]))
    if cfg.episodes < 1 or cfg.steps < 1 or cfg.chunk < 1:
        raise ConfigError("episodes, steps and chunk must be positive")
    if cfg.world == "reacher":
        return _collect_reacher(cfg, out, world_cfg, progress)
    if cfg.world == "pusht":
        return _collect_pusht(cfg, out, world_cfg, progress)
    if cfg.world == "pointmaze":
        return _collect_pointmaze(cfg, out, world_cfg, progress)
    world = TwoRooms(world_cfg)
    rng = np.random.default_rng(cfg.seed)
    writer = EpisodeWriter(out, {"world": cfg.world, "world_config": asdict(world.cfg),
                                 "policy": cfg.policy, "seed": cfg.seed,
                                 "door_crossings_kept": cfg.door_crossings})
    t0, done, crossings, tries = time.perf_counter(), 0, 0, 0
    while done < cfg.episodes:
        n = min(cfg.chunk, cfg.episodes - done)
        pos, act = _rollout(world, rng, cfg.policy, n if cfg.door_crossings else 2 * n, cfg.steps)
        rooms = world.room(pos.reshape(-1, 2)).reshape(pos.shape[:2])
        crossed = (rooms != rooms[:, :1]).any(axis=1)
        tries += 1
        if not cfg.door_crossings:
            pos, act, crossed = pos[~crossed][:n], act[~crossed][:n], crossed[~crossed][:n]
            if tries > 50 * (cfg.episodes // cfg.chunk + 1):
                raise ConfigError("could not find enough episodes without door crossings")
        e = len(pos)
        obs = world.render(pos.reshape(-1, 2)).reshape(e, cfg.steps + 1, 1, world.cfg.size, world.cfg.size)
        writer.add(obs, act, pos.astype(np.float32))
        done += e
        crossings += int(crossed.sum())
        if progress:
            progress(done)
    manifest = writer.close() | {"episodes_with_door_crossing": crossings}
    manifest["seconds"] = round(time.perf_counter() - t0, 2)
    return manifest


def _rollout(world: TwoRooms, rng: np.random.Generator, policy: str, n: int,
             steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``[n, steps+1, 2]`` and the actions actually applied ``[n, steps, 2]``."""
    pos = np.empty((n, steps + 1, 2))
    act = np.empty((n, steps, 2))
    pos[:, 0] = world.sample_positions(rng, n, inset=0.0)
    pi = make_policy(policy, world, rng, n)
    for t in range(steps):
        # Store the clipped action: it is what the world executed, and what a planner emits.
        act[:, t] = world.clip_action(pi(pos[:, t]))
        pos[:, t + 1] = world.step(pos[:, t], act[:, t])
    return pos, act


def _collect_reacher(cfg: CollectConfig, out, world_cfg, progress) -> dict:
    """Reacher episodes from rest poses, with smoothly varying random torques.

    Torques follow ``a_{t+1} = clip(0.8 a_t + 0.5 ε)``: persistent enough to swing the arm
    across its workspace, varied enough to cover speeds and reversals.
    """
    from monde.worlds.reacher import Reacher

    return _collect_states(Reacher(world_cfg), "reacher", 4, cfg, out, SmoothRandom, progress)


def _collect_pointmaze(cfg: CollectConfig, out, world_cfg, progress) -> dict:
    """PointMaze episodes from rest states anywhere in the maze, with smoothly varying random
    forces (the point runs into walls and along them, as in DINO-WM's random PointMaze data)."""
    from monde.worlds.pointmaze import PointMaze

    world = PointMaze(world_cfg)
    return _collect_states(world, "pointmaze", world.state_dim, cfg, out, SmoothRandom, progress)


def _collect_pusht(cfg: CollectConfig, out, world_cfg, progress) -> dict:
    """PushT episodes from random rest states, with the scripted pusher or smooth random moves.

    The stored proprioception is the agent's position and velocity
    (:meth:`~monde.worlds.pusht.PushT.proprio`); the block's pose is only in the images.
    """
    from monde.worlds.pusht import PushT
    from monde.worlds.pusht_policies import make_pusht_policy

    world = PushT(world_cfg)
    return _collect_states(world, "pusht", world.state_dim, cfg, out,
                           lambda w, rng, n: make_pusht_policy(cfg.policy, w, rng, n), progress)


def _collect_states(world, name: str, state_dim: int, cfg: CollectConfig, out, make_policy,
                    progress) -> dict:
    """Roll ``make_policy(world, rng, n)`` from ``world.sample_states`` in chunks of episodes.

    ``world`` has the stateless interface of the state-based worlds (Reacher, PushT):
    ``sample_states``, ``step``, ``clip_action``, ``render`` (RGB) and ``proprio``.
    """
    rng = np.random.default_rng(cfg.seed)
    writer = EpisodeWriter(out, {"world": name, "world_config": asdict(world.cfg),
                                 "policy": cfg.policy, "seed": cfg.seed})
    t0, done = time.perf_counter(), 0
    while done < cfg.episodes:
        n = min(cfg.chunk, cfg.episodes - done)
        states = np.empty((n, cfg.steps + 1, state_dim))
        act = np.empty((n, cfg.steps, world.action_dim))
        states[:, 0] = world.sample_states(rng, n)
        pi = make_policy(world, rng, n)
        for t in range(cfg.steps):
            # Store the clipped action: what the world executed, and what a planner emits.
            act[:, t] = world.clip_action(pi(states[:, t]))
            states[:, t + 1] = world.step(states[:, t], act[:, t])
        flat = states.reshape(-1, state_dim)
        obs = world.render(flat).reshape(n, cfg.steps + 1, 3, world.cfg.size, world.cfg.size)
        writer.add(obs, act, world.proprio(flat).reshape(n, cfg.steps + 1, -1))
        done += n
        if progress:
            progress(done)
    manifest = writer.close()
    manifest["seconds"] = round(time.perf_counter() - t0, 2)
    return manifest
