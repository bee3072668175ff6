"""Shared fixtures: a micro video config that trains in about a second."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Keep the on-disk cache (simulator runs) of the tests out of the user's home."""
    monkeypatch.setenv("MONDE_CACHE", str(tmp_path_factory.getbasetemp() / "monde-cache"))

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


MICRO_TWO_ROOMS = [
    "data.collect.episodes=16", "data.collect.steps=16", "data.chunks=2",
    "train.steps=4", "train.batch_size=4", "train.checkpoint_every=2", "train.warmup_steps=1",
    "train.log_every=2", "train.diag_every=2",
]


@pytest.fixture
def micro_two_rooms_overrides() -> list[str]:
    """Overrides that shrink ``two-rooms`` to a few-second run (those of ``micro_action_model``)."""
    return list(MICRO_TWO_ROOMS)


@pytest.fixture(scope="session")
def micro_action_model(tmp_path_factory):
    """Folder of a two-rooms model trained for 4 steps (shared: read it, do not write into it)."""
    from monde.config import apply_overrides
    from monde.recipes import get_recipe, run_recipe

    out = tmp_path_factory.mktemp("two_rooms") / "model"
    cfg = apply_overrides(get_recipe("two-rooms").build(), MICRO_TWO_ROOMS)
    summary = run_recipe(cfg, out, quiet=True)
    assert summary["steps"] == 4 and not summary["interrupted"]
    return out


@pytest.fixture(scope="session")
def micro_video_model(tmp_path_factory):
    """Folder of a video model (no actions) trained for 1 step with the micro overrides."""
    from monde.config import apply_overrides
    from monde.recipes import get_recipe, run_recipe

    out = tmp_path_factory.mktemp("video") / "model"
    cfg = apply_overrides(get_recipe("video-physics-tiny").build(), MICRO + ["train.steps=1"])
    run_recipe(cfg, out, quiet=True)
    return out
