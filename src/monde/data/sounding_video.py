"""Video files with their sound, cut to an audio-visual model's clock.

An audio-visual model (:mod:`monde.jepa.audio_visual`) sees ``T`` frames and, for each frame
interval, ``samples_per_frame`` samples of sound: its frame rate is ``rate /
samples_per_frame``. :func:`read_sounding_video` brings any file to that clock (frames picked
at the model's times and resized, the audio track mixed to mono and resampled);
:class:`SoundingVideoFolder` holds a folder of such files and cuts training clips from them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from monde.data.video import VIDEO_EXTENSIONS, read_soundtrack, read_video, video_info
from monde.errors import DataError


def read_sounding_video(path, *, size: int, rate: int,
                        samples_per_frame: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames and sound of ``path`` at ``rate / samples_per_frame`` frames per second.

    Returns ``(video uint8 [N, 3, size, size], audio float32 [N · samples_per_frame])``: frame
    ``k`` is the file's frame nearest time ``k · samples_per_frame / rate`` and audio chunk
    ``k`` the sound from that time to the next frame's. ``N`` stops where the picture or the
    sound ends. A file without sound, without a frame rate or that does not decode gets a
    :class:`DataError` naming it.
    """
    fps = rate / samples_per_frame
    info = video_info(path)
    if info.fps <= 0:
        raise DataError(f"{path}: the video has no frame rate in its header; re-encode it "
                        "with a fixed frame rate")
    frames = read_video(path, size=size)
    sound = read_soundtrack(path, rate)
    n = min(int(len(frames) * fps / info.fps), len(sound) // samples_per_frame)
    pick = np.minimum(np.round(np.arange(n) * info.fps / fps).astype(int), len(frames) - 1)
    return frames[torch.from_numpy(pick)], torch.from_numpy(sound[:n * samples_per_frame])


class SoundingVideoFolder:
    """Every video file with sound under ``root``, held in memory at the model's clock, and
    training clips cut from them.

    Batches are a function of ``(seed, step, rank)`` (exact resume, distinct DDP ranks): each
    clip is ``frames`` consecutive frames with their sound from a file drawn in proportion to
    its length. Files are decoded once, on construction, at the model's (small) frame size —
    about 3 kB per frame at 32×32. With ``skip_bad`` an unreadable, silent or too-short file is
    left out and reported (``summary``); otherwise it raises :class:`DataError` naming it.
    """

    def __init__(self, root, *, frames: int, size: int, rate: int, samples_per_frame: int,
                 seed: int = 0, skip_bad: bool = False):
        self.root, self.frames, self.spf, self.seed = Path(root), frames, samples_per_frame, seed
        if not self.root.is_dir():
            raise DataError(f"{self.root}: no such folder; check the path")
        files = sorted(p for p in self.root.rglob("*")
                       if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        if not files:
            raise DataError(f"{self.root}: no video files ({', '.join(VIDEO_EXTENSIONS)}) in "
                            "this folder or below; check the path")
        self.videos: list[torch.Tensor] = []
        self.sounds: list[torch.Tensor] = []
        self.used: list[Path] = []
        self.skipped: list[tuple[Path, str]] = []
        for path in files:
            try:
                v, a = read_sounding_video(path, size=size, rate=rate,
                                           samples_per_frame=samples_per_frame)
                if len(v) < frames:
                    raise DataError(f"{path}: {len(v)} frames with sound at the model's "
                                    f"{rate / samples_per_frame:g} fps, fewer than a clip of "
                                    f"{frames}")
            except DataError as e:
                if not skip_bad:
                    raise DataError(f"{e}; or pass data.skip_bad=true to leave such files "
                                    "out") from None
                self.skipped.append((path, str(e).removeprefix(f"{path}: ")))
                continue
            self.videos.append(v)
            self.sounds.append(a)
            self.used.append(path)
        if not self.videos:
            raise DataError(f"{self.root}: none of the {len(files)} video files has a clip of "
                            f"{frames} frames with sound:\n{self.summary}")
        if self.skipped:
            print(self.summary, file=sys.stderr)
        starts = np.array([len(v) - frames + 1 for v in self.videos], dtype=np.float64)
        self.weights = starts / starts.sum()

    @property
    def summary(self) -> str:
        """What was used and what was left out, one line per skipped file."""
        head = (f"{self.root}: {len(self.used)} video files with sound used, "
                f"{len(self.skipped)} skipped")
        return "\n".join([head] + [f"  skipped {p}: {why}" for p, why in self.skipped])

    def batch(self, step: int, batch_size: int, rank: int = 0) -> dict[str, torch.Tensor]:
        """``{"video": uint8 [B, T, 3, S, S], "audio": float32 [B, T · spf]}``."""
        rng = np.random.default_rng([self.seed, step, rank])
        which = rng.choice(len(self.videos), size=batch_size, p=self.weights)
        video, audio = [], []
        for i in which:
            s = int(rng.integers(0, len(self.videos[i]) - self.frames + 1))
            video.append(self.videos[i][s:s + self.frames])
            audio.append(self.sounds[i][s * self.spf:(s + self.frames) * self.spf])
        return {"video": torch.stack(video), "audio": torch.stack(audio)}
