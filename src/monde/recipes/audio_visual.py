"""Sound with sight: the audio-visual JEPA on the sounding-balls world (``monde eval av``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from monde.errors import ConfigError
from monde.jepa.audio_visual import AudioVisualConfig
from monde.train.config import TrainConfig
from monde.worlds.sounding_balls import SoundingBalls, SoundingBallsConfig


@dataclass
class AudioVisualRunConfig:
    """A whole audio-visual run: world, model, training."""

    recipe: str = "av-balls-tiny"
    world: SoundingBallsConfig = field(default_factory=SoundingBallsConfig)
    """The sounding-balls world the clips come from (generated on the fly)."""
    model: AudioVisualConfig = field(default_factory=AudioVisualConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


class SoundingSource:
    """Training batches ``{"video", "audio"}``, a function of ``(seed, step, rank)``."""

    def __init__(self, world: SoundingBalls, seed: int = 0):
        self.world, self.seed = world, seed

    def batch(self, step: int, batch_size: int, rank: int = 0) -> dict[str, torch.Tensor]:
        c = self.world.batch(step, batch_size, self.seed, rank)
        return {"video": torch.from_numpy(c.video), "audio": torch.from_numpy(c.audio)}


def av_balls_tiny() -> AudioVisualRunConfig:
    """Two balls at 32×32, 16 frames at 25 fps with their impact sounds (8 kHz), CPU minutes."""
    return AudioVisualRunConfig(train=TrainConfig(
        steps=2000, batch_size=64, lr=1e-3, warmup_steps=100, weight_decay=0.05,
        weight_decay_end=0.05, betas=(0.9, 0.999), grad_clip=0.0, precision="bf16",
        checkpoint_every=250, log_every=25, diag_every=250))


def check_config(cfg: AudioVisualRunConfig) -> None:
    """The model must fit the world's clips; the usual training bounds."""
    w, m = cfg.world, cfg.model
    w.validate()
    m.validate()
    got = (w.balls.frames, w.balls.size, w.samples_per_frame, w.sample_rate)
    want = (m.frames, m.size, m.samples_per_frame, m.sample_rate)
    if got != want:
        raise ConfigError(f"the world makes clips of (frames, size, samples per frame, rate) = "
                          f"{got} but the model expects {want}; set world.balls.frames/size, "
                          "world.sample_rate and model.frames/size/samples_per_frame/sample_rate "
                          "to agree")
    if cfg.train.steps < 1 or cfg.train.batch_size < 2:
        raise ConfigError("train.steps must be ≥ 1 and train.batch_size ≥ 2")


def run(cfg: AudioVisualRunConfig, out: Path, *, quiet: bool = False,
        overwrite: bool = False) -> dict:
    """Train ``cfg`` into ``out`` (resuming if it holds the same run) and export the model."""
    from monde.jepa.audio_visual import AudioVisualJEPA
    from monde.recipes.runs import open_run, train_and_export

    check_config(cfg)
    run_dir = open_run(cfg, out, overwrite)
    model = AudioVisualJEPA(cfg.model, seed=cfg.train.seed)
    data = SoundingSource(SoundingBalls(cfg.world), seed=cfg.train.seed)
    meta = {"recipe": cfg.recipe, "modality": "audio-visual",
            "sample_rate": cfg.model.sample_rate}
    return train_and_export(run_dir, cfg, model, data, meta, quiet=quiet,
                            data={"world": "sounding-balls"},
                            params=sum(p.numel() for p in model.parameters()))
