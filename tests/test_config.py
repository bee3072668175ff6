"""Typed configs and dotted overrides."""

import pytest

from monde.config import apply_overrides, from_dict, to_dict
from monde.errors import ConfigError
from monde.recipes import get_recipe
from monde.recipes.video_physics import VideoRunConfig


def tiny():
    return get_recipe("video-physics-tiny").build()


def test_overrides_change_typed_values_and_leave_input_alone():
    cfg = tiny()
    new = apply_overrides(cfg, ["train.steps=7", "train.lr=3e-4", "model.encoder.depth=2",
                                "train.precision=fp32", "train.betas=[0.8, 0.95]"])
    assert new.train.steps == 7 and isinstance(new.train.lr, float) and new.train.lr == 3e-4
    assert new.model.encoder.depth == 2 and new.train.precision == "fp32"
    assert new.train.betas == (0.8, 0.95)
    assert cfg.train.steps != 7  # the input is not modified


def test_int_is_accepted_for_float():
    assert apply_overrides(tiny(), ["train.lr=1"]).train.lr == 1.0


@pytest.mark.parametrize("override, words", [
    ("train.stepz=3", ["unknown config key 'train.stepz'", "train.steps"]),
    ("nope=3", ["unknown config key 'nope'"]),
    ("train.steps=many", ["'train.steps' must be an integer"]),
    ("train.steps=1.5", ["must be an integer"]),
    ("train.precision=fp16", ["must be one of"]),
    ("train.compile=maybe", ["true or false"]),
    ("train.steps", ["key=value"]),
    ("train=3", ["train"]),
])
def test_bad_overrides_give_clear_errors(override, words):
    with pytest.raises(ConfigError) as e:
        apply_overrides(tiny(), [override])
    for w in words:
        assert w in str(e.value)


def test_round_trip_through_dict():
    cfg = tiny()
    assert from_dict(VideoRunConfig, to_dict(cfg)) == cfg


def test_unknown_recipe_suggests():
    with pytest.raises(ConfigError, match="video-physics-tiny"):
        get_recipe("video-physics-tny")
