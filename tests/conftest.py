"""Shared fixtures: a micro video config that trains in about a second."""

from __future__ import annotations

import pytest

MICRO = [
    "data.balls.frames=4", "data.balls.size=32",
    "model.encoder.frames=4", "model.encoder.height=32", "model.encoder.width=32",
    "model.encoder.dim=32", "model.encoder.depth=1", "model.encoder.heads=2",
    "model.predictor.dim=16", "model.predictor.depth=1", "model.predictor.heads=2",
    "train.batch_size=4", "train.warmup_steps=2", "train.log_every=2", "train.diag_every=4",
    "train.checkpoint_every=4",
]


@pytest.fixture
def micro_overrides() -> list[str]:
    """Overrides that shrink ``video-physics-tiny`` to a ~1 s run."""
    return list(MICRO)
