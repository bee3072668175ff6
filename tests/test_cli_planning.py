"""The planning commands: `monde data collect`, `monde plan`, `monde demo`."""

from __future__ import annotations

import json

import pytest

from monde.cli import main

# Keeps MPC with the untrained micro model fast (the saved default plans with 256 x 6 samples).
CHEAP = ["horizon=3", "samples=16", "iterations=1"]


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def error_of(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("monde: error: ") and "Traceback" not in err
    return err


def test_data_collect(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["data", "collect", "two-rooms", "--out", str(out), "--episodes", "6",
                 "--steps", "16", "--json"]) == 0
    stdout = capsys.readouterr().out
    m = last_json(stdout)
    assert m["episodes"] == 6 and m["steps"] == 16 and m["policy"] == "random"
    assert m["out"] == str(out) and "chunks" not in m and m["monde_format"] == "episodes"
    assert "wrote 6 random two-rooms episodes of 16 steps" in stdout
    assert (out / "manifest.json").is_file()
    # The folder now holds a dataset: a second collection there is refused.
    err = error_of(capsys, ["data", "collect", "two-rooms", "--out", str(out), "--episodes", "2"])
    assert "already holds an episode dataset" in err


def test_data_collect_options(tmp_path, capsys):
    out = tmp_path / "nd"
    assert main(["data", "collect", "two-rooms", "--out", str(out), "--episodes", "4",
                 "--steps", "24", "--policy", "noisy-expert", "--seed", "5",
                 "--no-door-crossings", "--json"]) == 0
    m = last_json(capsys.readouterr().out)
    assert m["policy"] == "noisy-expert" and m["seed"] == 5
    assert m["door_crossings_kept"] is False and m["episodes_with_door_crossing"] == 0


@pytest.mark.parametrize("argv, message", [
    (["data", "collect", "mars", "--episodes", "2"], "unknown world 'mars'"),
    (["data", "collect", "two-rooms", "--policy", "oracle"], "unknown policy 'oracle'"),
    (["data", "collect", "two-rooms", "--episodes", "0"], "must be positive"),
])
def test_data_collect_mistakes(tmp_path, capsys, argv, message):
    assert message in error_of(capsys, [*argv, "--out", str(tmp_path / "x")])


def test_plan_protocol(micro_action_model, tmp_path, capsys):
    plot = tmp_path / "plans.png"
    assert main(["plan", "--model", str(micro_action_model), "--episodes", "2", "--json",
                 "--plot", str(plot), *CHEAP]) == 0
    stdout = capsys.readouterr().out
    r = last_json(stdout)
    for key in ("protocol", "success_rate", "success_ci95", "seconds_per_plan"):
        assert key in r
    assert r["episodes"] == 2 and r["protocol"]["name"] == "two-rooms-plan"
    assert r["planner"]["samples"] == 16 and r["planner"]["name"] == "mppi"  # saved default + overrides
    assert "two-rooms-plan v1" in stdout and "over 2 episodes with mppi" in stdout
    assert plot.is_file() and plot.stat().st_size > 1000


def test_plan_one_start_and_goal(micro_action_model, tmp_path, capsys):
    plot = tmp_path / "one.png"
    assert main(["plan", "--model", str(micro_action_model), "--start", "10,10",
                 "--goal", "50,50", "--json", "--plot", str(plot), *CHEAP, "name=cem"]) == 0
    stdout = capsys.readouterr().out
    r = last_json(stdout)
    assert set(r) == {"success", "steps", "path", "seconds_per_plan"}
    assert r["path"][0] == [10.0, 10.0] and len(r["path"]) == r["steps"] + 1
    assert r["success"] or r["steps"] == 200
    assert "the goal in" in stdout and plot.is_file()


@pytest.mark.parametrize("extra, message", [
    (["--world", "mars"], "unknown world 'mars'"),
    (["--start", "10,10"], "--start and --goal go together"),
    (["--start", "10", "--goal", "50,50"], "--start takes X,Y"),
    (["--start", "32,10", "--goal", "50,50"], "inside a wall or outside the arena"),
    (["--start", "10,10", "--goal", "70,50"], "inside a wall or outside the arena"),
    (["name=foo"], "must be one of 'cem', 'mppi', 'gradient'"),
    (["sample=3"], "unknown config key"),
])
def test_plan_mistakes(micro_action_model, capsys, extra, message):
    assert message in error_of(capsys, ["plan", "--model", str(micro_action_model), *extra])


def test_plan_needs_an_action_model(micro_video_model, tmp_path, capsys):
    err = error_of(capsys, ["plan", "--model", str(micro_video_model), "--episodes", "1"])
    assert "action-conditioned" in err
    assert "no model folder" in error_of(capsys, ["plan", "--model", str(tmp_path / "missing")])


def test_info_on_an_action_model(micro_action_model, capsys):
    assert main(["info", str(micro_action_model), "--json"]) == 0
    info = last_json(capsys.readouterr().out)
    assert info["modality"] == "image+action" and info["world"] == "two-rooms"
    assert "64x64" in info["input"] and info["steps"] == 4


def test_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "data.collect.episodes=16", "data.collect.steps=16",
                 "data.chunks=2", "train.steps=4", "train.batch_size=4",
                 "planner.horizon=3", "planner.samples=16", "planner.iterations=1",
                 "--episodes", "2", "--quiet", "--json"]) == 0
    stdout = capsys.readouterr().out
    s = last_json(stdout)
    for f in ("plans.png", "episode.gif", "plan_results.json"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0
    saved = json.loads((out / "plan_results.json").read_text())
    assert saved["episodes"] == s["episodes"] == 2 and saved["success_rate"] == s["success_rate"]
    assert s["train"]["steps"] == 4 and s["config"]["samples"] == 16
    assert s["plot"] == str(out / "plans.png") and s["gif"] == str(out / "episode.gif")
    assert "Two-Rooms planning:" in stdout and "goals reached" in stdout
    # Rerunning reuses the data and the trained model, and keeps its export as it was.
    exported = (out / "config.json").read_text()
    assert main(["demo", "--out", str(out), "data.collect.episodes=16", "data.collect.steps=16",
                 "data.chunks=2", "train.steps=4", "train.batch_size=4",
                 "planner.horizon=3", "planner.samples=16", "planner.iterations=1",
                 "--episodes", "2", "--quiet"]) == 0
    assert "reused the model" in capsys.readouterr().out
    assert (out / "config.json").read_text() == exported
