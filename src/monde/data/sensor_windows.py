"""Fixed-length windows cut from a plant's history, for training and scoring.

A history is ``values [T, C]`` (NaN where missing), ``actions [T, A]`` and ``runs``: the
contiguous row ranges of each unit (an engine, a batch, a test run). A window never crosses
from one run into the next.
"""

from __future__ import annotations

import numpy as np
import torch

from monde.errors import DataError


def window_starts(runs: list[slice], window: int, stride: int = 1) -> np.ndarray:
    """``int64 [N]``: start rows of every ``window``-long span inside one run, ``stride`` apart."""
    starts = [np.arange(r.start, r.stop - window + 1, stride) for r in runs
              if r.stop - r.start >= window]
    return np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)


def split_runs(runs: list[slice], holdout: float) -> tuple[list[slice], list[slice]]:
    """Cut the last ``holdout`` fraction of every run off as held-out data.

    The held-out tail is *later* in time than the training rows it follows, as it would be in
    a plant (calibrate on what comes after what the model learned from).
    """
    train, held = [], []
    for r in runs:
        n = r.stop - r.start
        k = int(round(n * holdout))
        train.append(slice(r.start, r.stop - k))
        if k:
            held.append(slice(r.stop - k, r.stop))
    return train, held


def gather_windows(values: np.ndarray, actions: np.ndarray | None, starts: np.ndarray,
                   window: int) -> dict[str, torch.Tensor]:
    """Windows starting at ``starts``: ``{"x": [B, C, L], "actions": [B, L, A]}`` float32."""
    idx = starts[:, None] + np.arange(window)[None, :]              # [B, L]
    x = torch.from_numpy(np.ascontiguousarray(values[idx].transpose(0, 2, 1), dtype=np.float32))
    out = {"x": x}
    if actions is not None and actions.shape[1]:
        out["actions"] = torch.from_numpy(np.ascontiguousarray(actions[idx], dtype=np.float32))
    return out


class SensorWindows:
    """Random training windows; which windows depends only on ``(seed, step, rank)``, so a
    resumed run sees the same batches as an uninterrupted one.

    With ``lead > 0`` a batch also holds, for every window, a later window of the same run
    (``"x_future" [B, C, L]``, starting ``"lead" [B]`` rows after it): ``d`` is drawn in
    ``[1, lead]`` and cut to the rows the run has left after the window (0 at a run's end).
    """

    def __init__(self, values: np.ndarray, actions: np.ndarray | None, runs: list[slice],
                 window: int, seed: int = 0, lead: int = 0):
        self.values, self.actions, self.window, self.seed = values, actions, window, seed
        self.lead = lead
        self.starts = window_starts(runs, window)
        # Rows each window's run has left after the window ends (how far "later" may reach).
        self.room = np.concatenate([r.stop - window - np.arange(r.start, r.stop - window + 1)
                                    for r in runs if r.stop - r.start >= window] or [[0]])
        if not len(self.starts):
            longest = max((r.stop - r.start for r in runs), default=0)
            raise DataError(f"no run is long enough for a window of {window} steps (the longest "
                            f"has {longest} rows); give more data or set model.window smaller")

    def __len__(self) -> int:
        return len(self.starts)

    def batch(self, step: int, batch_size: int, rank: int = 0) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step, rank])
        pick = rng.integers(0, len(self.starts), batch_size)
        out = gather_windows(self.values, self.actions, self.starts[pick], self.window)
        if self.lead > 0:
            d = np.minimum(rng.integers(1, self.lead + 1, batch_size), self.room[pick])
            out["x_future"] = gather_windows(self.values, None, self.starts[pick] + d,
                                             self.window)["x"]
            out["lead"] = torch.from_numpy(d.astype(np.float32))
        return out
