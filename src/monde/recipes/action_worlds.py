"""Action-conditioned world models (Two-Rooms, Reacher, PushT, PointMaze) learned from reward-free
offline episodes."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from monde.data.collect import CollectConfig, collect
from monde.data.episodes import EpisodeDataset, EpisodeWindows, WindowSpec
from monde.errors import ConfigError, DataError
from monde.jepa.action_model import ActionJEPA, ActionModelConfig
from monde.planning.config import PlannerConfig
from monde.train.config import TrainConfig
from monde.worlds.pointmaze import PointMazeConfig
from monde.worlds.pusht import PushTConfig
from monde.worlds.reacher import ReacherConfig
from monde.worlds.two_rooms import TwoRoomsConfig


@dataclass
class EpisodeDataConfig:
    """Where the training episodes come from, and how windows are cut from them."""

    path: str = ""
    """An episode dataset (``monde data collect``); empty: collect one into ``OUT/data``."""
    collect: CollectConfig = field(default_factory=CollectConfig)
    """What to collect when ``path`` is empty."""
    chunks: int = 8
    """Predicted transitions per training window (the rollout loss's length)."""


@dataclass
class PlanRunConfig:
    """A whole action-conditioned run: world, data, model, training, default planner."""

    recipe: str = "two-rooms"
    """Recipe the run started from (informational)."""
    world: TwoRoomsConfig = field(default_factory=TwoRoomsConfig)
    """Two-Rooms geometry and dynamics (collected data must match)."""
    reacher: ReacherConfig = field(default_factory=ReacherConfig)
    """Reacher rendering and task (used when ``data.collect.world`` is ``reacher``)."""
    pusht: PushTConfig = field(default_factory=PushTConfig)
    """PushT physics, rendering and success test (used when ``data.collect.world`` is ``pusht``)."""
    pointmaze: PointMazeConfig = field(default_factory=PointMazeConfig)
    """PointMaze maze, rendering and task (used when ``data.collect.world`` is ``pointmaze``)."""
    data: EpisodeDataConfig = field(default_factory=EpisodeDataConfig)
    """Training episodes."""
    model: ActionModelConfig = field(default_factory=ActionModelConfig)
    """Encoder, predictor and loss weights."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Optimisation, precision, checkpoints, parallelism."""
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    """Planner saved with the model as its default (``monde plan`` can override it)."""


def two_rooms() -> PlanRunConfig:
    """CPU-sized Two-Rooms: 1000 random-walk episodes, a small CNN + MLP predictor (~3 min)."""
    return PlanRunConfig(
        data=EpisodeDataConfig(collect=CollectConfig(episodes=1000, steps=64, policy="random")),
        train=TrainConfig(steps=1500, batch_size=64, lr=1e-3, min_lr=1e-5, warmup_steps=100,
                          weight_decay=0.0, weight_decay_end=0.0, precision="auto",
                          checkpoint_every=250, log_every=25, diag_every=50))


def two_rooms_no_door() -> PlanRunConfig:
    """Two-Rooms whose training data never crosses the door (PLDM's hard generalisation case)."""
    cfg = two_rooms()
    cfg.recipe = "two-rooms-no-door"
    cfg.data.collect.door_crossings = False
    return cfg


def _rgb_proprio_world(recipe: str, collect: CollectConfig, size: int,
                       proprio_dim: int) -> PlanRunConfig:
    """Two-Rooms' run adapted to an RGB world whose state needs proprioception (Reacher,
    PushT): the image alone holds no velocity, so the encoder also reads proprioception. A
    stronger VICReg and weaker smoothness than Two-Rooms: with Two-Rooms' weights the arm's
    latents nearly collapse (std term 0.62, proprio read-out MSE 0.12) and Reacher planning
    reaches 15%."""
    cfg = two_rooms()
    cfg.recipe = recipe
    cfg.data.collect = collect
    cfg.model = ActionModelConfig(channels=3, size=size, proprio_dim=proprio_dim,
                                  use_proprio=True, proprio_scale=1.0, action_scale=1.0,
                                  std_weight=10.0, cov_weight=1.0, smooth_weight=0.02)
    cfg.planner = PlannerConfig(horizon=8)
    return cfg


def reacher() -> PlanRunConfig:
    """Reacher (MuJoCo): 400 random-torque episodes; images + joint angles/velocities."""
    return _rgb_proprio_world("reacher", CollectConfig(world="reacher", episodes=400, steps=64,
                                                       policy="random", chunk=100),
                              ReacherConfig().size, proprio_dim=6)


def pusht() -> PlanRunConfig:
    """PushT (pymunk): 2000 episodes of a scripted pusher; images + the agent's position and
    velocity; actions in [-1, 1]² move the agent's PD target (3000 steps, ~9 min).

    The latent is a spatial map (8 channels × 4 × 4 cells at 64 px) with a convolutional predictor:
    in a 32-D vector the agent, which inverse dynamics needs, took most of the latent and the
    planner moved the agent instead of the block (28% vs 38% success: docs/results.md). After
    training, a goal-conditioned policy is fitted on the frozen latents (~90 s) and is the
    default planner (58% against MPPI's 38% on `pusht-plan`)."""
    cfg = _rgb_proprio_world("pusht", CollectConfig(world="pusht", episodes=2000, steps=64,
                                                    policy="push", chunk=250),
                             PushTConfig().size, proprio_dim=4)
    cfg.model.encoder_head = "spatial"
    cfg.model.map_channels = 8
    cfg.model.predictor_hidden = 64
    cfg.model.predictor_layers = 4
    cfg.train.steps = 3000
    # A goal-conditioned policy on the frozen latents, followed by default: on validation
    # tasks 18/30 against MPPI's 4/30 on the same model (`name=mppi` still searches).
    cfg.model.policy_steps = 6000
    cfg.planner.name = "policy"
    return cfg


def pointmaze() -> PlanRunConfig:
    """PointMaze U-maze (MuJoCo, gymnasium-robotics): 600 random-force episodes; images + the
    point's position and velocity; MPPI on the latents."""
    return _rgb_proprio_world("pointmaze", CollectConfig(world="pointmaze", episodes=600, steps=64,
                                                         policy="random", chunk=100),
                              PointMazeConfig().size, proprio_dim=4)


def world_name(cfg: PlanRunConfig) -> str:
    return cfg.data.collect.world


def world_config(cfg: PlanRunConfig):
    return {"reacher": cfg.reacher, "pusht": cfg.pusht,
            "pointmaze": cfg.pointmaze}.get(world_name(cfg), cfg.world)


def check_config(cfg: PlanRunConfig) -> None:
    """Cross-field checks the types alone cannot express."""
    cfg.world.validate()
    cfg.planner.validate()
    m = cfg.model
    cfg.pusht.validate()
    cfg.pointmaze.validate()
    channels, size = {"reacher": (3, cfg.reacher.size), "pusht": (3, cfg.pusht.size),
                      "pointmaze": (3, cfg.pointmaze.size)}.get(world_name(cfg), (1, cfg.world.size))
    if (m.channels, m.size) != (channels, size):
        raise ConfigError(f"model.size ({m.size}) and model.channels ({m.channels}) must match "
                          f"the world's images ({channels} channels, {size} px)")
    if m.encoder_head not in ("linear", "keypoints", "spatial"):
        raise ConfigError(f"model.encoder_head={m.encoder_head!r} is not a head; choose "
                          "linear, keypoints or spatial")
    if m.spatial and m.map_channels < 1:
        raise ConfigError("model.map_channels must be ≥ 1")
    if cfg.train.steps < 1 or cfg.train.batch_size < 2:
        raise ConfigError("train.steps must be ≥ 1 and train.batch_size ≥ 2")
    if cfg.data.chunks < 1 or m.frameskip < 1:
        raise ConfigError("data.chunks and model.frameskip must be ≥ 1")
    if m.ensemble < 1:
        raise ConfigError(f"model.ensemble={m.ensemble}: an ensemble needs at least 1 predictor")
    if m.cell_centred and not m.spatial:
        raise ConfigError("model.cell_centred needs a spatial latent (model.encoder_head=spatial)")


def open_dataset(cfg: PlanRunConfig, out: Path, quiet: bool) -> EpisodeDataset:
    """The run's training data: ``data.path``, or episodes collected into ``out/data`` once."""
    if cfg.data.path:
        data = EpisodeDataset(Path(cfg.data.path).expanduser())
    else:
        folder = out / "data"
        if not (folder / "manifest.json").is_file():
            shutil.rmtree(folder, ignore_errors=True)  # an interrupted collection
            c = cfg.data.collect
            if not quiet:
                print(f"collecting {c.episodes} {c.policy} episodes of {c.steps} steps "
                      f"into {folder} ...", flush=True)
            collect(c, folder, world_config(cfg))
        data = EpisodeDataset(folder)
    m = data.manifest
    if m.get("world") != world_name(cfg):
        raise DataError(f"the dataset at {data.path} is from world {m.get('world')!r}, "
                        f"not {world_name(cfg)} (set data.collect.world to match)")
    data.check_action_dim(cfg.model.action_dim)
    if tuple(data.obs_shape) != (cfg.model.channels, cfg.model.size, cfg.model.size):
        raise DataError(f"the dataset's observations are {data.obs_shape}, the model expects "
                        f"{(cfg.model.channels, cfg.model.size, cfg.model.size)}")
    if m.get("world_config") and m["world_config"] != asdict(world_config(cfg)):
        raise DataError(f"the dataset at {data.path} was collected with other world settings "
                        "than this run's (world.* / reacher.* / pusht.* / pointmaze.*); make them agree")
    return data


def run(cfg: PlanRunConfig, out: Path, *, quiet: bool = False, overwrite: bool = False) -> dict:
    """Collect (if needed) and train ``cfg`` into ``out``, then export the model folder."""
    from monde.recipes.runs import exporter, open_run, train_and_export

    check_config(cfg)
    run = open_run(cfg, out, overwrite)
    data = open_dataset(cfg, out, quiet or not run.is_main)
    # The policy is fitted after training (it has no training loss), so the trained network is
    # built without it: under DDP a module that gets no gradient is an error.
    model = ActionJEPA(replace(cfg.model, policy_steps=0), seed=cfg.train.seed)
    windows = EpisodeWindows(data, WindowSpec(cfg.data.chunks, cfg.model.frameskip),
                             seed=cfg.train.seed)
    meta = {"recipe": cfg.recipe, "modality": "image+action", "world": world_name(cfg)}
    export = exporter(
        run.out, run.config["model"], meta, world_config=asdict(world_config(cfg)),
        planner=run.config["planner"], data={
            "path": str(data.path), "episodes": len(data), "steps": data.steps,
            "policy": data.manifest.get("policy"),
            "door_crossings_kept": data.manifest.get("door_crossings_kept")},
        params=sum(p.numel() for p in model.parameters()))
    if cfg.model.policy_steps > 0:
        export = _with_policy(export, cfg, data, quiet)
    return train_and_export(run, cfg, model, windows, meta, quiet=quiet, export=export)


def _with_policy(export, cfg: PlanRunConfig, data: EpisodeDataset, quiet: bool):
    """Wrap the trainer's export: fit the goal-conditioned policy on the trained, frozen
    latents first (:mod:`monde.jepa.goal_policy`), then save the model with it."""
    from monde.jepa.goal_policy import fit_policy

    def export_with_policy(state: dict, result) -> None:
        if result.steps == result.resumed_from:  # a finished run rerun: its export stands
            return export(state, result)
        net = ActionJEPA(cfg.model, seed=cfg.train.seed)
        missing, unexpected = net.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith("policy.") for k in missing):
            raise RuntimeError(f"trained state does not fit the model: missing {missing}, "
                               f"unexpected {unexpected}")
        if not quiet:
            print(f"fitting the goal-conditioned policy ({cfg.model.policy_steps} steps) ...",
                  flush=True)
        fit = fit_policy(net, data, steps=cfg.model.policy_steps, horizon=cfg.data.chunks,
                         seed=cfg.train.seed)
        if not quiet:
            print(f"policy loss {fit['policy_loss']:.4f} (mean action: "
                  f"{fit['mean_action_loss']:.4f})", flush=True)
        export(net.state_dict(), result)

    return export_with_policy
