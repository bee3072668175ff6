"""The command line: every user mistake is one clear message, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from monde.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "monde", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ})


def test_recipes_lists_the_shipped_recipes(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name in ("video-physics-tiny", "video-physics", "video"):
        assert name in out


def test_train_json_info_and_load(tmp_path, micro_overrides):
    out = tmp_path / "run"
    r = run("train", "video-physics-tiny", "--out", str(out), *micro_overrides,
            "train.steps=4", "--json", "--quiet")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("recipe", "steps", "seconds", "final_loss", "effective_rank", "out"):
        assert key in summary
    assert summary["steps"] == 4 and summary["out"] == str(out)
    assert "trained video-physics-tiny for 4 steps" in r.stdout

    info = run("info", str(out), "--json")
    assert info.returncode == 0, info.stderr
    meta = json.loads(info.stdout.strip().splitlines()[-1])
    assert meta["modality"] == "video" and meta["steps"] == 4
    assert meta["recipe"] == "video-physics-tiny" and "4 frames" in meta["input"]

    import torch

    import monde

    model = monde.load(out)
    clip = torch.rand(2, 4, 3, 32, 32)
    assert model.encode(clip).shape == (2, 2 * 4 * 4, 32)
    assert model.encode(clip[0], pool=True).shape == (1, 32)
    from monde.errors import DataError

    with pytest.raises(DataError, match="trained on clips of 4 frames"):
        model.encode(torch.rand(1, 8, 3, 32, 32))


@pytest.mark.parametrize("args, message", [
    (["train", "no-such-recipe", "--out", "{tmp}/x"], "unknown recipe 'no-such-recipe'"),
    (["train", "video-physics-tiny", "--out", "{tmp}/x", "train.stepz=3"], "unknown config key 'train.stepz'"),
    (["train", "video-physics-tiny", "--out", "{tmp}/x", "train.steps=ten"], "must be an integer"),
    (["info", "{tmp}/missing"], "nothing at"),
    (["info", "{tmp}/garbage"], "garbage"),
    (["probe", "--model", "{tmp}/missing"], "no model folder"),
])
def test_user_mistakes_are_one_clear_line(tmp_path, args, message):
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "config.json").write_text("{not json")
    r = run(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_corrupt_model_weights_are_reported(tmp_path, micro_overrides):
    out = tmp_path / "run"
    assert run("train", "video-physics-tiny", "--out", str(out), *micro_overrides,
               "train.steps=2", "--quiet").returncode == 0
    (out / "model.safetensors").write_bytes(b"\x00" * 64)
    r = run("info", str(out))
    assert r.returncode == 2 and "model.safetensors" in r.stderr and "Traceback" not in r.stderr


def _write_videos(folder, n=2):
    import numpy as np

    from monde.data import write_video

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        write_video(folder / f"v{i}.mp4", rng.integers(0, 255, (10, 3, 48, 48), dtype=np.uint8))


def test_train_on_a_folder_of_videos_and_bad_files(tmp_path, micro_overrides):
    pytest.importorskip("av")
    videos = tmp_path / "videos"
    _write_videos(videos)
    folder_args = [o for o in micro_overrides if not o.startswith("data.balls")]
    r = run("train", "video", "--out", str(tmp_path / "run"), f"data.folder={videos}",
            *folder_args, "train.steps=2", "--quiet")
    assert r.returncode == 0, r.stderr

    (videos / "broken.mp4").write_bytes(b"this is not a video" * 50)
    r = run("train", "video", "--out", str(tmp_path / "run2"), f"data.folder={videos}",
            *folder_args, "train.steps=2", "--quiet")
    assert r.returncode == 2 and "broken.mp4" in r.stderr and "Traceback" not in r.stderr
    r = run("train", "video", "--out", str(tmp_path / "run3"), f"data.folder={videos}",
            *folder_args, "train.steps=2", "data.skip_bad_videos=true", "--quiet")
    assert r.returncode == 0, r.stderr
