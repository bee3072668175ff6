"""`monde sensors fit | score` on files a plant engineer would have, and `monde eval`."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from monde.cli import main

MICRO = ["train.steps=6", "train.batch_size=8", "train.warmup_steps=1", "train.log_every=2",
         "train.checkpoint_every=3", "train.diag_every=3", "model.window=16", "model.patch=4",
         "model.dim=16", "model.depth=1", "model.heads=2", "model.predictor_dim=16",
         "model.predictor_depth=1", "model.predictor_heads=2", "model.groups=4",
         "data.holdout=0.3"]


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def plant_files(tmp_path_factory):
    """A normal history and a faulty one from the synthetic plant, as CSV and Parquet."""
    from monde.worlds.plant import PlantConfig, PlantFault, SyntheticPlant

    root = tmp_path_factory.mktemp("plant")
    plant = SyntheticPlant(PlantConfig(sensors=10, actions=2, seed=0))
    normal = plant.simulate(600, seed=1)
    faulty = plant.simulate(300, seed=2, faults=[PlantFault("bias", start=150, magnitude=8.0)])
    plant.write_csv(normal, root / "normal.csv")
    plant.write_parquet(faulty, root / "faulty.parquet")
    schema = root / "schema.yaml"
    schema.write_text("time: time\nsensors: ['s*']\nactions: [u0, u1]\n")
    return root


@pytest.fixture(scope="module")
def fitted(plant_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("fit") / "model"
    assert main(["sensors", "fit", str(plant_files / "normal.csv"), "--schema",
                 str(plant_files / "schema.yaml"), "--out", str(out), "--quiet", "--json",
                 *MICRO]) == 0
    return out


def test_fit_saves_a_calibrated_model(fitted, capsys):
    import monde

    m = monde.load(fitted)
    assert m.config.channels == 10 and m.config.actions == 2
    assert m.sensor_names[0] == "s0000" and m.action_names == ["u0", "u1"]
    assert m.calibrated and m.meta["calibration"]["held_out"]
    assert m.threshold(0.01) > m.threshold(0.5)
    capsys.readouterr()
    assert main(["info", str(fitted)]) == 0
    out = capsys.readouterr().out
    assert "modality: sensors" in out and "sensors: 10: s0000, s0001" in out
    assert "actions: u0, u1" in out


def test_score_writes_csv_and_png_and_names_sensors(fitted, plant_files, tmp_path, capsys):
    capsys.readouterr()
    csv_out, png = tmp_path / "s.csv", tmp_path / "s.png"
    assert main(["sensors", "score", str(plant_files / "faulty.parquet"), "--model", str(fitted),
                 "--out", str(csv_out), "--plot", str(png), "--json"]) == 0
    r = last_json(capsys.readouterr().out)
    assert r["rows"] == 300 and r["scored"] == 300 - 15
    assert png.stat().st_size > 5000 and r["readings_per_second"] > 0
    lines = csv_out.read_text().splitlines()
    assert lines[0].startswith("row,time,unit,surprise") and len(lines) == 301
    assert r["peak_groups"] and r["peak_groups"][0][0].startswith("s")


def test_score_recalibrates_on_a_normal_file(fitted, plant_files, tmp_path, capsys):
    capsys.readouterr()
    assert main(["sensors", "score", str(plant_files / "normal.csv"), "--model", str(fitted),
                 "--calibrate", str(plant_files / "normal.csv"), "--out", str(tmp_path / "n.csv"),
                 "--plot", str(tmp_path / "n.png"), "--json"]) == 0
    out = capsys.readouterr().out
    r = last_json(out)
    assert "calibrated on 585 windows" in out
    # Calibrated on this very file at 1% false alarms: about 1% of its steps alarm.
    assert r["alarms"] <= 0.03 * r["scored"]


def test_forecast_writes_a_csv(fitted, plant_files, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "f.csv"
    assert main(["sensors", "forecast", str(plant_files / "normal.csv"), "--model", str(fitted),
                 "--horizon", "12", "--out", str(out), "--json"]) == 0
    r = last_json(capsys.readouterr().out)
    assert r["horizon"] == 12 and len(r["first"]) == 10
    lines = out.read_text().splitlines()
    assert lines[0].split(",")[:2] == ["step", "s0000"] and len(lines) == 13


def test_score_errors_are_clear(fitted, plant_files, tmp_path, capsys):
    import pandas as pd

    df = pd.read_csv(plant_files / "normal.csv").drop(columns=["s0003"])
    bad = tmp_path / "missing.csv"
    df.to_csv(bad, index=False)
    assert main(["sensors", "score", str(bad), "--model", str(fitted)]) == 2
    err = capsys.readouterr().err
    assert "s0003" in err and "Traceback" not in err
    short = tmp_path / "short.csv"
    pd.read_csv(plant_files / "normal.csv").head(5).to_csv(short, index=False)
    assert main(["sensors", "score", str(short), "--model", str(fitted)]) == 2
    assert "window" in capsys.readouterr().err


def test_follow_scores_a_growing_file_like_the_whole_file(fitted, plant_files, tmp_path):
    import pandas as pd

    full = pd.read_parquet(plant_files / "faulty.parquet")
    live, streamed, whole = tmp_path / "live.csv", tmp_path / "stream.csv", tmp_path / "whole.csv"
    full.head(100).to_csv(live, index=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "monde", "sensors", "score", str(live), "--model", str(fitted),
         "--follow", "--poll", "0.2", "--idle-exit", "3", "--out", str(streamed)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    full.to_csv(live, index=False)  # the plant wrote 200 more rows
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "stopped after 300 rows" in out
    assert main(["sensors", "score", str(live), "--model", str(fitted), "--out", str(whole),
                 "--plot", str(tmp_path / "w.png")]) == 0
    a, b = pd.read_csv(streamed), pd.read_csv(whole).dropna(subset=["surprise"])
    assert a["row"].tolist() == b["row"].tolist() == list(range(15, 300))
    # Scored in two pieces as the file grew, with the moving average carried over: the same
    # scores as scoring the finished file at once (so nothing after row t was used at t).
    np.testing.assert_allclose(a["surprise"], b["surprise"], rtol=1e-3)
    assert a["alarm"].tolist() == b["alarm"].tolist()


def test_train_recipe_on_the_built_in_plant(tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["train", "plant-tiny", "--out", str(out), "--quiet", "--json", *MICRO,
                 "data.plant_steps=500", "data.plant.sensors=8"]) == 0
    import monde

    m = monde.load(out)
    assert m.config.channels == 8 and m.calibrated
    v = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    with pytest.raises(Exception, match="control inputs"):
        m.surprise(v)


@pytest.mark.parametrize("extra", [[], ["model.lead=40"]], ids=["latents", "far-future"])
def test_rul_probe_on_a_run_to_failure_fleet(tmp_path, capsys, extra):
    """Units wear (a drift grows) until they fail at their last row; running units that are
    near the end must get a shorter remaining life than units early in their life — also when
    the model learns far-future targets and the probe reads its forecasts too."""
    import pandas as pd

    from monde.worlds.plant import PlantConfig, PlantFault, SyntheticPlant

    plant = SyntheticPlant(PlantConfig(sensors=6, actions=1, seed=3))
    frames, running = [], []
    for u in range(12):
        n = 200 + 20 * u
        wear = PlantFault("drift", start=0, channels=(0, 1, 2), magnitude=4.0, ramp=n)
        f = plant.to_frame(plant.simulate(n, seed=u, faults=[wear])).drop(columns=["fault"])
        f["unit"] = f"e{u}"
        frames.append(f)
        if u < 4:  # the same kind of unit, still running: cut 150 or 10 rows before failure
            cut = f.head(n - (150 if u % 2 == 0 else 10)).copy()
            cut["unit"] = f"r{u}"
            running.append(cut)
    pd.concat(frames).to_csv(tmp_path / "fleet.csv", index=False)
    pd.concat(running).to_csv(tmp_path / "running.csv", index=False)
    out = tmp_path / "m"
    assert main(["sensors", "fit", str(tmp_path / "fleet.csv"), "--time", "time", "--unit", "unit",
                 "--actions", "u0", "--out", str(out), "--quiet", *MICRO, *extra]) == 0
    capsys.readouterr()
    if extra:
        import monde

        assert monde.load(out).net.cfg.lead == 40  # saved and loaded with its far query
    assert main(["sensors", "rul", str(tmp_path / "fleet.csv"), "--predict",
                 str(tmp_path / "running.csv"), "--model", str(out), "--cap", "200",
                 "--json"]) == 0
    r = last_json(capsys.readouterr().out)
    rul = dict(zip(r["units"], r["rul"]))
    assert set(rul) == {"r0", "r1", "r2", "r3"}
    assert max(rul["r1"], rul["r3"]) < min(rul["r0"], rul["r2"])  # 10 left < 150 left
    assert (tmp_path / "running.rul.csv").read_text().startswith("unit,remaining_life")


def test_fit_and_score_with_roughness_tokens(plant_files, tmp_path, capsys):
    """`model.roughness=true` trains, saves, loads and scores a file with missing readings."""
    import pandas as pd

    import monde

    out = tmp_path / "rough"
    assert main(["sensors", "fit", str(plant_files / "normal.csv"), "--schema",
                 str(plant_files / "schema.yaml"), "--out", str(out), "--quiet", "--json",
                 *MICRO, "model.roughness=true"]) == 0
    m = monde.load(out)
    assert m.config.roughness and m.net.tokenizer.proj.in_features == 2 * 4 + 2
    faulty = pd.read_parquet(plant_files / "faulty.parquet")
    faulty.loc[40:60, "s0003"] = np.nan
    path = tmp_path / "holes.csv"
    faulty.to_csv(path, index=False)
    scores = tmp_path / "scores.csv"
    assert main(["sensors", "score", str(path), "--model", str(out), "--out", str(scores),
                 "--plot", str(tmp_path / "s.png")]) == 0
    s = pd.read_csv(scores)["surprise"].dropna()
    assert len(s) == 300 - 15 and np.isfinite(s).all()
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert "(values and roughness)" in capsys.readouterr().out


def test_eval_tep_control_refuses_a_model_of_another_plant(fitted, capsys):
    assert main(["eval", "tep-control", "--model", str(fitted)]) == 2
    err = capsys.readouterr().err
    assert "monde train tep-control" in err and "Traceback" not in err
