"""Remaining useful life for run-to-failure fleets: a regression probe on frozen latents.

Training histories are *run to failure*: in every unit (engine, pump, batch) the last row is
the last one before failure, so the remaining life at row ``i`` is ``last − i`` rows, capped
at ``cap`` (early life looks healthy and its exact distance to failure is not predictable;
the cap is the usual piecewise-linear target). The probe reads the model's frozen latents of
the window ending at each row; it predicts the remaining life at the *last* row of each unit
of another file (units still running).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monde.data.sensor_windows import window_starts
from monde.errors import DataError
from monde.evals.cmapss import boosting_fit_predict, ridge_fit_predict
from monde.evals.plant import latent_features


def rul_targets(runs: list[slice], window: int, cap: float, stride: int = 1):
    """Window starts ``[N]`` and capped remaining life ``[N]`` of the windows ending at each row."""
    starts = window_starts(runs, window, stride)
    last = np.zeros(len(starts))
    for r in runs:
        inside = (starts >= r.start) & (starts < r.stop)
        last[inside] = r.stop - 1
    return starts, np.minimum(last - (starts + window - 1), cap)


@dataclass
class RULResult:
    """Predicted remaining life at the last row of every unit."""

    units: list[str]
    rul: np.ndarray
    """``[U]`` in rows (cycles) of the data."""
    train_windows: int
    train_rmse: float


def fit_predict_rul(model, train_values: np.ndarray, train_runs: list[tuple[str, slice]],
                    test_values: np.ndarray, test_runs: list[tuple[str, slice]], *,
                    cap: float = 125.0, regressor: str = "ridge",
                    max_windows: int = 20000) -> RULResult:
    """Fit the probe on run-to-failure ``train_*`` and predict each ``test_*`` unit's RUL."""
    w = model.window
    starts, y = rul_targets([r for _, r in train_runs], w, cap)
    if len(starts) < 10:
        raise DataError(f"the run-to-failure data give {len(starts)} windows of {w} rows; "
                        "need more units or longer runs")
    if len(starts) > max_windows:  # an even thinning keeps every unit's whole life covered
        keep = np.linspace(0, len(starts) - 1, max_windows).astype(int)
        starts, y = starts[keep], y[keep]
    fit = {"ridge": ridge_fit_predict(), "boosting": boosting_fit_predict()}.get(regressor)
    if fit is None:
        raise DataError(f"regressor must be ridge or boosting, got {regressor!r}")
    idx = starts[:, None] + np.arange(w)
    f_train = latent_features(model, train_values[idx])
    units, last = [], []
    for name, r in test_runs:
        if r.stop - r.start < w:
            raise DataError(f"unit {name} has {r.stop - r.start} rows, fewer than the model's "
                            f"window ({w})")
        units.append(name)
        last.append(test_values[r.stop - w:r.stop])
    f_test = latent_features(model, np.stack(last))
    both = np.clip(fit(f_train, y, np.concatenate([f_train, f_test])), 0, cap)
    fitted, pred = both[:len(f_train)], both[len(f_train):]
    return RULResult(units, pred, int(len(starts)), float(np.sqrt(np.mean((fitted - y) ** 2))))
