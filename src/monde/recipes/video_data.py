"""Video batch sources for training: the bouncing-balls world, the manipulation world, or a
folder of video files."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from monde.errors import ConfigError
from monde.worlds.balls import BallsConfig, BouncingBalls
from monde.worlds.manipulation import ManipulationConfig, ManipulationWorld


@dataclass
class VideoDataConfig:
    """Where training clips come from."""

    source: Literal["balls", "manipulation", "folder"] = "balls"
    """``balls``: clips generated on the fly by the built-in physics world; ``manipulation``:
    clips of an agent acting on objects (built-in, generated on the fly); ``folder``: clips
    read with PyAV from the video files under ``folder``."""
    balls: BallsConfig = field(default_factory=BallsConfig)
    """The physics world (``source=balls``)."""
    manipulation: ManipulationConfig = field(default_factory=ManipulationConfig)
    """The manipulation world (``source=manipulation``); clips are cut from its episodes."""
    clips_per_episode: int = 8
    """``source=manipulation``: clips cut from each generated episode (cheaper batches)."""
    folder: str = ""
    """Folder of mp4/webm/avi/mkv/mov files (``source=folder``)."""
    frame_step: int = 1
    """Keep every n-th frame of a video file."""
    skip_bad_videos: bool = False
    """Skip (and count) unreadable files instead of stopping with an error."""


class BallsSource:
    """Clips from :class:`BouncingBalls`, a deterministic function of (seed, step, rank)."""

    def __init__(self, cfg: BallsConfig, seed: int = 0):
        self.world, self.seed = BouncingBalls(cfg), seed

    def batch(self, step: int, batch_size: int, rank: int = 0) -> torch.Tensor:
        """``[B, T, 3, H, W]`` float32 in [0, 1]."""
        clips = self.world.batch(step, batch_size, seed=self.seed, rank=rank)
        return torch.from_numpy(clips.video).float().div_(255.0)


class ManipulationSource:
    """Random clips of ``frames`` frames cut from manipulation episodes, a function of (seed, step, rank)."""

    def __init__(self, cfg: VideoDataConfig, frames: int, seed: int = 0):
        if cfg.manipulation.frames < frames:
            raise ConfigError(f"data.manipulation.frames ({cfg.manipulation.frames}) must be at "
                              f"least the clip length ({frames})")
        self.world, self.frames, self.seed = ManipulationWorld(cfg.manipulation), frames, seed
        self.per_episode = max(1, cfg.clips_per_episode)

    def batch(self, step: int, batch_size: int, rank: int = 0) -> torch.Tensor:
        """``[B, T, 3, H, W]`` float32 in [0, 1]."""
        rng = np.random.default_rng([self.seed, step, rank])
        n_ep = -(-batch_size // self.per_episode)
        video = self.world.sample(n_ep, rng).video                   # [E, T_ep, 3, H, W]
        ep = np.arange(batch_size) % n_ep
        start = rng.integers(0, video.shape[1] - self.frames + 1, size=batch_size)
        idx = start[:, None] + np.arange(self.frames)
        clips = video[ep[:, None], idx]
        return torch.from_numpy(clips).float().div_(255.0)


class FolderSource:
    """Random clips from a folder of videos; which clip is drawn depends only on (seed, step, rank)."""

    def __init__(self, cfg: VideoDataConfig, frames: int, size: tuple[int, int], seed: int = 0):
        from monde.data.video_folder import VideoFolder

        if not cfg.folder:
            raise ConfigError("data.source=folder needs data.folder=PATH (a folder of videos)")
        self.dataset = VideoFolder(Path(cfg.folder).expanduser(), clip_len=frames, step=cfg.frame_step, size=size,
                                   skip_bad=cfg.skip_bad_videos)
        if self.dataset.skipped:
            print(self.dataset.summary, file=sys.stderr)
        self.seed = seed

    def batch(self, step: int, batch_size: int, rank: int = 0) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, step, rank])
        idx = rng.integers(0, len(self.dataset), size=batch_size)
        clips = [self.dataset[int(i)] for i in idx]
        return torch.stack(clips).float().div_(255.0)


def video_source(cfg: VideoDataConfig, frames: int, size: tuple[int, int], seed: int = 0):
    """The batch source ``cfg`` names, cutting clips of ``frames`` frames at ``size`` (H, W).

    Built-in worlds render at their own configured size; the recipe's checks make it agree.
    """
    if cfg.source == "balls":
        return BallsSource(cfg.balls, seed=seed)
    if cfg.source == "manipulation":
        return ManipulationSource(cfg, frames, seed=seed)
    return FolderSource(cfg, frames, size, seed=seed)
