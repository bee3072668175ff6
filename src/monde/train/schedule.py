"""Learning-rate and weight-decay schedules as pure functions of the step.

Because each value depends only on ``step`` (and the run's fixed settings), resuming a run
needs no scheduler state: the trainer just calls the function with the restored step.
Steps before 0 are treated as 0 and steps past ``total_steps`` as ``total_steps``.
"""

from __future__ import annotations

import math

__all__ = ["cosine", "linear", "warmup_cosine"]


def _progress(step: int, total_steps: int) -> float:
    """Fraction of the schedule done, clamped to [0, 1]; a zero-length schedule is done."""
    if total_steps < 0:
        raise ValueError(f"total_steps must be >= 0, got {total_steps}")
    if total_steps == 0:
        return 1.0
    return min(max(step / total_steps, 0.0), 1.0)


def linear(step: int, total_steps: int, start: float, end: float) -> float:
    """Straight line from ``start`` at step 0 to ``end`` at ``total_steps``."""
    return start + (end - start) * _progress(step, total_steps)


def cosine(step: int, total_steps: int, start: float, end: float) -> float:
    """Half cosine from ``start`` at step 0 to ``end`` at ``total_steps``.

    Flat at both ends, steepest in the middle; increasing or decreasing depending on whether
    ``end > start`` (e.g. I-JEPA's weight decay 0.04 → 0.4).
    """
    p = _progress(step, total_steps)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * p))


def warmup_cosine(
    step: int, total_steps: int, warmup_steps: int, base: float, final: float = 0.0
) -> float:
    """Linear warmup from 0 (step 0) to ``base`` (step ``warmup_steps``), then cosine to ``final``.

    The cosine phase covers ``warmup_steps .. total_steps``; beyond that the value stays at
    ``final``. A ``warmup_steps`` longer than the run (a short smoke test with a long recipe
    warmup) is cut to ``total_steps`` rather than raising, so the run still trains.
    """
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    warmup = min(warmup_steps, max(total_steps, 0))
    if step < warmup:
        return base * max(step, 0) / warmup
    return cosine(step - warmup, total_steps - warmup, base, final)
