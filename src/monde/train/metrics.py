"""Metrics log (``metrics.jsonl``) and a progress display for long commands."""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from collections import deque
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

__all__ = ["MetricsLogger", "Progress", "read_metrics"]

# Module-level so tests can drive Progress with a fake clock.
_clock = time.monotonic


def _scalar(key: str, value: Any) -> Any:
    """A JSON-ready scalar from a float/int/bool/str/None, NumPy scalar or one-element tensor."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"metric {key!r} is a tensor of shape {tuple(value.shape)}, not a scalar"
            )
        return value.item()  # also syncs a CUDA value, which logging needs anyway
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"metric {key!r} is a {type(value).__name__}; log numbers or strings")


def _parse_lines(text: str) -> tuple[list[tuple[str, dict]], int]:
    """``([(line, record), ...], number of unreadable lines)`` of a JSONL text."""
    rows, bad = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            bad += 1  # typically the half-written last line of a killed run
            continue
        if isinstance(record, dict):
            rows.append((line, record))
        else:
            bad += 1
    return rows, bad


def read_metrics(path: Path | str) -> list[dict]:
    """All records of a ``metrics.jsonl`` file, in order (unreadable lines skipped, with a warning)."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    rows, bad = _parse_lines(path.read_text(encoding="utf-8"))
    if bad:
        warnings.warn(f"skipped {bad} unreadable line(s) in {path}", stacklevel=2)
    return [r for _, r in rows]


class MetricsLogger:
    """Append one JSON object per line (``{"step": ..., **values}``) to a metrics file.

    Each line is flushed as it is written, so ``tail -f`` and a killed run both see every
    logged step. The file is always opened for appending; with ``resume_step`` set, lines with
    a step beyond it (logged after the checkpoint the run resumes from) are dropped first, so
    the file reads as if the run had never been interrupted. A fresh run should use a fresh
    run folder. Non-finite floats are written as ``NaN``/``Infinity``, which Python's json
    reads back (a diverging loss must stay visible).
    """

    def __init__(self, path: Path | str, resume_step: int | None = None):
        path = Path(path)
        self.path = path / "metrics.jsonl" if path.is_dir() else path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            self._truncate(resume_step)
        # A run killed mid-write leaves a last line without "\n"; don't glue onto it.
        torn = False
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                torn = f.read(1) != b"\n"
        self._file: TextIO | None = open(self.path, "a", encoding="utf-8")
        if torn:
            self._file.write("\n")

    def _truncate(self, resume_step: int) -> None:
        rows, _ = _parse_lines(self.path.read_text(encoding="utf-8"))
        kept = [
            line
            for line, r in rows
            if not isinstance(r.get("step"), int) or r["step"] <= resume_step
        ]
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.replace(tmp, self.path)  # atomic: a kill now keeps the old file, never half of it

    def log(self, step: int, **values: Any) -> None:
        """Write ``{"step": step, **values}``; values are numbers, strings or 0-d tensors."""
        if self._file is None:
            raise ValueError(f"MetricsLogger for {self.path} is closed")
        record = {"step": int(step), **{k: _scalar(k, v) for k, v in values.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    days, s = divmod(s, 86400)
    text = f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{days}d {text}" if days else text


def _fmt_scalar(value: Any) -> str:
    value = _scalar("", value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class Progress:
    """Step/total, smoothed steps/s, ETA and chosen scalars for a long-running loop.

    On a terminal (stderr is a TTY) this is a tqdm bar; otherwise (CI logs, pipes, files) it
    prints one plain line at the first update, then at most every ``every`` seconds, and a
    final line on close, e.g. ``train 1200/10000 (12.0%) 3.41 steps/s ETA 0:43:01 loss=0.123``.
    ``quiet=True`` shows nothing but still measures ``steps_per_second``.
    """

    _WINDOW = 50
    """Number of recent updates the steps/s estimate spans (smooths jitter, forgets warmup)."""

    def __init__(
        self,
        total: int,
        initial: int = 0,
        desc: str = "train",
        quiet: bool = False,
        every: float = 10.0,
        file: TextIO | None = None,
        unit: str = "step",
    ):
        self.total, self.desc, self.every, self.unit = total, desc, every, unit
        self.step = initial
        """Last step reported."""
        self._file = file if file is not None else sys.stderr
        self._points: deque[tuple[float, int]] = deque([(_clock(), initial)], maxlen=self._WINDOW)
        self._scalars: dict[str, str] = {}
        self._last_print: float | None = None
        self._closed = False
        self._bar = None
        isatty = getattr(self._file, "isatty", None)
        self._plain = not quiet and not (callable(isatty) and isatty())
        if not quiet and not self._plain:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                initial=initial,
                desc=desc,
                unit=unit,
                file=self._file,
                dynamic_ncols=True,
            )

    @property
    def steps_per_second(self) -> float:
        """Steps per second over the last updates (0.0 until two updates are apart in time)."""
        (t0, s0), (t1, s1) = self._points[0], self._points[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0

    @property
    def eta_seconds(self) -> float:
        """Estimated seconds to ``total`` at the current rate (inf while unknown)."""
        rate = self.steps_per_second
        return max(self.total - self.step, 0) / rate if rate > 0 else math.inf

    def line(self) -> str:
        """The plain status line (also what non-TTY mode prints)."""
        pct = f" ({100 * self.step / self.total:.1f}%)" if self.total > 0 else ""
        parts = [
            f"{self.desc} {self.step}/{self.total}{pct}",
            f"{self.steps_per_second:.2f} {self.unit}s/s",
            f"ETA {_fmt_duration(self.eta_seconds)}",
        ]
        parts += [f"{k}={v}" for k, v in self._scalars.items()]
        return " ".join(parts)

    def update(self, step: int, **scalars: Any) -> None:
        """Report that ``step`` steps are done, with scalars to show (e.g. ``loss=0.123``)."""
        now = _clock()
        if step < self.step:  # restarted or rewound: old timings no longer describe the rate
            self._points.clear()
        self._points.append((now, step))
        if self._bar is not None:
            self._bar.update(step - self.step)
        self.step = step
        if scalars:
            self._scalars = {k: _fmt_scalar(v) for k, v in scalars.items()}
            if self._bar is not None:
                self._bar.set_postfix_str(
                    " ".join(f"{k}={v}" for k, v in self._scalars.items()), refresh=False
                )
        if self._plain and (self._last_print is None or now - self._last_print >= self.every):
            self._print(now)

    def _print(self, now: float) -> None:
        self._last_print = now
        print(self.line(), file=self._file, flush=True)

    def close(self) -> None:
        """Finish the display (a last plain line if anything changed since the previous one)."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif (
            self._plain and self._last_print is not None and self._points[-1][0] > self._last_print
        ):
            self._print(_clock())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
