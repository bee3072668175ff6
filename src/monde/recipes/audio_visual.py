"""Sound with sight: the audio-visual JEPA on the sounding-balls world (``monde eval av``) or
on a folder of your own video files with sound (``monde train av --data DIR``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from monde.errors import ConfigError
from monde.jepa.audio_visual import AudioVisualConfig
from monde.train.config import TrainConfig
from monde.worlds.sounding_balls import SoundingBalls, SoundingBallsConfig


@dataclass
class AudioVisualDataConfig:
    """Where the clips come from."""

    source: Literal["world", "folder"] = "world"
    """``world``: the built-in sounding balls (``world``); ``folder``: your video files with
    sound (``folder``), brought to the model's frame size, frame rate and sample rate."""
    folder: str = ""
    """Folder of video files with sound (searched recursively; ``source=folder``)."""
    skip_bad: bool = False
    """Leave out (and report) files without sound, too short or unreadable, instead of stopping."""


@dataclass
class AudioVisualRunConfig:
    """A whole audio-visual run: world, model, training."""

    recipe: str = "av-balls-tiny"
    data: AudioVisualDataConfig = field(default_factory=AudioVisualDataConfig)
    world: SoundingBallsConfig = field(default_factory=SoundingBallsConfig)
    """The sounding-balls world (``data.source=world``; clips generated on the fly)."""
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
        weight_decay_end=0.05, betas=(0.9, 0.999), grad_clip=0.0, precision="auto",
        checkpoint_every=250, log_every=25, diag_every=250))


def av_folder() -> AudioVisualRunConfig:
    """Your own video files with sound: ``monde train av --data DIR`` (32×32 frames at 25 fps,
    8 kHz sound, clips of 16 frames; change ``model.*`` for other clocks and sizes)."""
    cfg = av_balls_tiny()
    cfg.recipe, cfg.data = "av", AudioVisualDataConfig(source="folder")
    return cfg


def av_balls() -> AudioVisualRunConfig:
    """``av-balls-tiny`` sized for a GPU: 64×64 frames, wider encoders and predictor, 20k steps."""
    cfg = av_balls_tiny()
    cfg.recipe = "av-balls"
    cfg.world.balls.size, cfg.world.balls.n_balls = 64, 3
    m = cfg.model
    m.size, m.widths, m.latent_dim, m.audio_hidden = 64, (32, 64, 128, 128), 128, 256
    m.dim, m.depth, m.heads = 384, 6, 6
    cfg.train.steps, cfg.train.batch_size, cfg.train.warmup_steps = 20000, 128, 1000
    cfg.train.checkpoint_every = 1000
    return cfg


def check_config(cfg: AudioVisualRunConfig) -> None:
    """The model must fit the world's clips; the usual training bounds."""
    w, m = cfg.world, cfg.model
    w.validate()
    m.validate()
    if cfg.train.steps < 1 or cfg.train.batch_size < 2:
        raise ConfigError("train.steps must be ≥ 1 and train.batch_size ≥ 2")
    if cfg.data.source == "folder":
        if not cfg.data.folder:
            raise ConfigError("data.source=folder needs data.folder=PATH (or --data PATH): a "
                              "folder of video files with sound")
        return
    got = (w.balls.frames, w.balls.size, w.samples_per_frame, w.sample_rate)
    want = (m.frames, m.size, m.samples_per_frame, m.sample_rate)
    if got != want:
        raise ConfigError(f"the world makes clips of (frames, size, samples per frame, rate) = "
                          f"{got} but the model expects {want}; set world.balls.frames/size, "
                          "world.sample_rate and model.frames/size/samples_per_frame/sample_rate "
                          "to agree")


def run(cfg: AudioVisualRunConfig, out: Path, *, quiet: bool = False,
        overwrite: bool = False) -> dict:
    """Train ``cfg`` into ``out`` (resuming if it holds the same run) and export the model."""
    from monde.jepa.audio_visual import AudioVisualJEPA
    from monde.recipes.runs import open_run, train_and_export

    check_config(cfg)
    m = cfg.model
    # Data first: a folder that cannot train is refused before a run folder is claimed.
    if cfg.data.source == "folder":
        from monde.data.sounding_video import SoundingVideoFolder

        data = SoundingVideoFolder(Path(cfg.data.folder).expanduser(), frames=m.frames,
                                   size=m.size, rate=m.sample_rate,
                                   samples_per_frame=m.samples_per_frame,
                                   seed=cfg.train.seed, skip_bad=cfg.data.skip_bad)
        facts = {"source": "folder", "folder": cfg.data.folder, "files": len(data.used)}
    else:
        data = SoundingSource(SoundingBalls(cfg.world), seed=cfg.train.seed)
        facts = {"source": "world", "world": "sounding-balls"}
    run_dir = open_run(cfg, out, overwrite)
    model = AudioVisualJEPA(m, seed=cfg.train.seed)
    meta = {"recipe": cfg.recipe, "modality": "audio-visual", "sample_rate": m.sample_rate}
    return train_and_export(run_dir, cfg, model, data, meta, quiet=quiet, data=facts,
                            params=sum(p.numel() for p in model.parameters()))
