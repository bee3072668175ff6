"""Video world model of the bouncing-balls world (or of the user's own videos)."""

from __future__ import annotations

from dataclasses import dataclass, field

from monde.jepa.config import (
    EncoderConfig,
    MaskConfig,
    ModelConfig,
    ObjectiveConfig,
    PredictorConfig,
)
from monde.recipes.video_data import VideoDataConfig
from monde.train.config import TrainConfig
from monde.worlds.balls import BallsConfig


@dataclass
class VideoRunConfig:
    """A whole video-pretraining run."""

    recipe: str = "video-physics-tiny"
    """Recipe the run started from (informational)."""
    data: VideoDataConfig = field(default_factory=VideoDataConfig)
    """Training clips."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Encoder, predictor, masks and objective."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Optimisation, precision, checkpoints, parallelism."""


def video_physics_tiny() -> VideoRunConfig:
    """CPU-sized: 8 frames of 64×64 (256 tokens), a 4-block encoder; ~5 minutes on 2 cores."""
    frames, size = 8, 64
    return VideoRunConfig(
        recipe="video-physics-tiny",
        # One occluder: a ball hidden behind it is not in the pixels, so knowing where it is
        # takes a model of motion — what the probe should reward over raw pixel features.
        data=VideoDataConfig(balls=BallsConfig(frames=frames, size=size, n_balls=3,
                                               occluders=1)),
        model=ModelConfig(
            encoder=EncoderConfig(frames=frames, height=size, width=size, patch=8, tubelet=2,
                                  dim=128, depth=4, heads=4),
            predictor=PredictorConfig(dim=64, depth=2, heads=4),
            mask=MaskConfig(kind="vjepa"),
        ),
        # fp32: at width 128 a step is bound by element-wise work, not matmuls, so bf16
        # autocast gains nothing here (it pays off from width ~384: docs/results.md).
        train=TrainConfig(steps=600, batch_size=32, lr=1e-3, warmup_steps=60, precision="fp32",
                          checkpoint_every=100, log_every=10, diag_every=50),
    )


def video_physics() -> VideoRunConfig:
    """GPU-sized: 16 frames of 64×64 (512 tokens), a ViT-S-like 12-block encoder."""
    frames, size = 16, 64
    return VideoRunConfig(
        recipe="video-physics",
        data=VideoDataConfig(balls=BallsConfig(frames=frames, size=size, n_balls=3,
                                               occluders=1)),
        model=ModelConfig(
            encoder=EncoderConfig(frames=frames, height=size, width=size, patch=8, tubelet=2,
                                  dim=384, depth=12, heads=6),
            predictor=PredictorConfig(dim=192, depth=6, heads=6),
            mask=MaskConfig(kind="vjepa"),
        ),
        train=TrainConfig(steps=20000, batch_size=128, lr=5e-4, warmup_steps=1000,
                          checkpoint_every=500, log_every=50, diag_every=250),
    )


def video_medium() -> VideoRunConfig:
    """Between the two: 16 frames (512 tokens), ViT-S width (384) at half depth, batch 16."""
    cfg = video_physics()
    cfg.recipe = "video-physics-medium"
    cfg.model.encoder.depth = 6
    cfg.model.predictor.depth = 4
    cfg.train.batch_size = 16
    return cfg


def intphys_tiny() -> VideoRunConfig:
    """Intuitive physics on a CPU: possible clips of the benchmark world, future-predicting masks.

    The model trains only on physically possible clips (``IntPhys.training_world``); its
    masks mix V-JEPA tubes with "see the first frames, predict the rest", the task its
    surprise is scored on (``monde eval physics``). 8 frames of 64×64 (256 tokens).
    """
    from monde.worlds.intphys import IntPhysConfig

    frames, size = 8, 64
    return VideoRunConfig(
        recipe="intphys-vit-tiny",
        data=VideoDataConfig(balls=IntPhysConfig(size=size).balls(frames)),
        model=ModelConfig(
            encoder=EncoderConfig(frames=frames, height=size, width=size, patch=8, tubelet=2,
                                  dim=128, depth=4, heads=4),
            predictor=PredictorConfig(dim=96, depth=3, heads=4),
            mask=MaskConfig(kind="vjepa+causal"),
        ),
        train=TrainConfig(steps=2400, batch_size=32, lr=1e-3, warmup_steps=100,
                          precision="fp32", checkpoint_every=200, log_every=20, diag_every=100),
    )


def intphys_pixels_tiny() -> VideoRunConfig:
    """The generative baseline of ``intphys-vit-tiny``: same data, networks and budget, pixel targets."""
    cfg = intphys_tiny()
    cfg.recipe = "intphys-vit-pixels-tiny"
    cfg.model.objective = ObjectiveConfig(target="pixels")
    return cfg


def intphys() -> VideoRunConfig:
    """GPU-sized intuitive physics: 16 frames, ViT-S width, 20k steps."""
    cfg = intphys_tiny()
    cfg.recipe = "intphys-vit"
    cfg.data.balls.frames = cfg.model.encoder.frames = 16
    cfg.model.encoder = EncoderConfig(frames=16, height=64, width=64, patch=8, tubelet=2,
                                      dim=384, depth=12, heads=6)
    cfg.model.predictor = PredictorConfig(dim=192, depth=6, heads=6)
    cfg.train = TrainConfig(steps=20000, batch_size=128, lr=5e-4, warmup_steps=1000,
                            checkpoint_every=500, log_every=50, diag_every=250)
    return cfg


def actions_tiny() -> VideoRunConfig:
    """Actions on a CPU: clips of an agent acting on objects, 8 frames of 64×64 (256 tokens).

    Unlabelled pretraining; ``monde eval actions`` then probes the frozen encoder for the
    current action and the predictor's forecast for the next one.
    """
    from monde.worlds.manipulation import ManipulationConfig

    cfg = intphys_tiny()
    cfg.recipe = "actions-tiny"
    cfg.data = VideoDataConfig(source="manipulation", manipulation=ManipulationConfig(size=64))
    cfg.train.steps = 1600
    return cfg
