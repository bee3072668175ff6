"""A folder of video files as a dataset of clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from monde.data.video import (
    REENCODE_HINT,
    SKIP_HINT,
    VIDEO_EXTENSIONS,
    Size,
    _hw,
    _read,
    video_info,
)
from monde.errors import DataError


class VideoFolder(torch.utils.data.Dataset):
    """Clips from every video file under ``root`` (recursive, sorted by path).

    Item ``i`` is a uint8 ``[clip_len, 3, H, W]`` clip of every ``step``-th frame;
    ``clips_per_video`` clips per file are spread evenly over its length (the middle one when
    there is one). Pass ``size`` when the videos differ in resolution so that clips batch.
    Files are probed on construction: with ``skip_bad=False`` an unreadable or too-short file
    raises DataError naming it; with ``skip_bad=True`` it is left out and listed in
    ``skipped`` as ``(path, reason)`` (see ``summary``). A file that only fails while decoding
    is then replaced by a clip of the next readable file.
    """

    def __init__(self, root, *, clip_len: int = 16, step: int = 1, size: Size = None,
                 clips_per_video: int = 1, skip_bad: bool = False,
                 extensions: tuple[str, ...] = VIDEO_EXTENSIONS):
        self.root, self.clip_len, self.step = Path(root), clip_len, step
        self.size, self.skip_bad = _hw(size), skip_bad
        if clip_len < 1 or step < 1 or clips_per_video < 1:
            raise DataError(f"{self.root}: need clip_len, step and clips_per_video >= 1")
        if not self.root.is_dir():
            raise DataError(f"{self.root}: no such folder; check the path")
        exts = tuple(e.lower() for e in extensions)
        self.files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in exts and p.is_file())
        if not self.files:
            raise DataError(f"{self.root}: no video files ({', '.join(exts)}) in this folder "
                            "or below; check the path")
        self.skipped: list[tuple[Path, str]] = []
        self.items: list[tuple[Path, int]] = []  # (file, first frame of the clip)
        span = (clip_len - 1) * step + 1  # decoded frames covered by one clip
        for path in self.files:
            try:
                frames = video_info(path).frames
                if frames < span:
                    raise DataError(f"{path}: too short: {frames} frames, but a clip of "
                                    f"{clip_len} frames every {step} needs {span}; use a "
                                    f"shorter clip or step, or {SKIP_HINT}")
            except DataError as e:
                self._skip(path, e)
                continue
            room = frames - span  # last valid start
            self.items += [(path, (2 * c + 1) * room // (2 * clips_per_video))
                           for c in range(clips_per_video)]
        if not self.items:
            raise DataError(f"{self.root}: none of the {len(self.files)} video files is "
                            f"readable:\n{self.summary}")

    def _skip(self, path: Path, err: DataError) -> None:
        if not self.skip_bad:
            raise err
        reason = str(err).removeprefix(f"{path}: ").split(";")[0]
        self.skipped.append((path, reason))

    @property
    def summary(self) -> str:
        """One line per skipped file, after a count: what was used and what was left out."""
        used = len(self.files) - len(self.skipped)
        head = (f"VideoFolder {self.root}: {used} of {len(self.files)} videos used, "
                f"{len(self.items)} clips, {len(self.skipped)} skipped")
        return "\n".join([head] + [f"  skipped {p}: {why}" for p, why in self.skipped])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> torch.Tensor:
        bad = {p for p, _ in self.skipped}
        for k in range(len(self.items)):
            path, start = self.items[(index + k) % len(self.items)]
            if path in bad:
                continue
            try:
                return self._clip(path, start)
            except DataError as e:
                self._skip(path, e)  # raises unless skip_bad
                bad.add(path)
        raise DataError(f"{self.root}: no readable video left:\n{self.summary}")

    def _clip(self, path: Path, start: int) -> torch.Tensor:
        span = (self.clip_len - 1) * self.step + 1
        frames, n = _read(path, self.step, self.size, start, self.clip_len)
        if len(frames) < self.clip_len and n >= span:
            # The header over-estimated the length (webm/mkv): take the last clip that fits.
            frames, n = _read(path, self.step, self.size, n - span, self.clip_len)
        if len(frames) < self.clip_len:
            raise DataError(f"{path}: too short: decoded {n} frames, a clip needs {span}; "
                            f"{REENCODE_HINT}, or {SKIP_HINT}")
        return torch.from_numpy(np.stack(frames))
