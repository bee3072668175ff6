"""The intuitive-physics protocol, its metrics, and the video commands on a tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monde.cli import main
from monde.errors import ConfigError
from monde.evals.physics import PhysicsProtocol, auroc, physics_eval, report

TINY = ["train.steps=2", "train.batch_size=2", "model.widths=[8,8,8]", "model.map_channels=4",
        "model.predictor_hidden=8", "model.predictor_layers=2", "train.checkpoint_every=2"]
TINY_VIT = ["train.steps=2", "train.batch_size=2", "model.encoder.dim=24",
            "model.encoder.depth=1", "model.encoder.heads=2", "model.predictor.dim=12",
            "model.predictor.depth=1", "model.predictor.heads=2", "train.checkpoint_every=2"]


def test_auroc_matches_pair_counting():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1, 1, 40), rng.normal(0, 1, 30)
    pairs = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert auroc(pos, neg) == pytest.approx(pairs)
    assert auroc([1, 1], [1, 1]) == 0.5 and auroc([2, 3], [0, 1]) == 1.0


def test_report_on_known_scores():
    protocol = PhysicsProtocol()
    possible = np.linspace(0, 1, 100)
    scores = {"gravity": (possible, possible + 10),     # every impossible clip far above
              "solidity": (possible, possible - 0.5)}   # every impossible clip below its twin
    r = report(scores, protocol)
    g, s = r["principles"]["gravity"], r["principles"]["solidity"]
    assert g["pairwise"] == 1.0 and g["auroc"] == 1.0
    assert g["thresholded"] == pytest.approx((1 + 0.9) / 2, abs=0.01)
    assert s["pairwise"] == 0.0 and r["worst"]["principle"] == "solidity"
    assert r["mean"]["pairwise"] == 0.5
    tied = report({"gravity": (possible, possible.copy())}, protocol)["principles"]["gravity"]
    assert tied["pairwise"] == 0.5 and tied["ties"] == 100


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("physics")
    for recipe in ("intphys-tiny", "intphys-pixels-tiny"):
        assert main(["train", recipe, "--out", str(root / recipe), "--quiet", *TINY]) == 0
    return root / "intphys-tiny", root / "intphys-pixels-tiny"


def test_physics_eval_runs_model_and_baseline(tiny_models):
    import monde

    model, base = (monde.load(p) for p in tiny_models)
    assert base.jepa.pixels and not model.jepa.pixels
    r = physics_eval(model, PhysicsProtocol(pairs=3), base)
    for who in ("model", "baseline"):
        assert set(r[who]["principles"]) == {"permanence", "continuity", "solidity", "gravity",
                                             "constancy"}
        for v in r[who]["principles"].values():
            assert 0 <= v["pairwise"] <= 1 and v["pairs"] == 3
    assert r["baseline"]["target"] == "pixels" and r["protocol"]["settings"]["pairs"] == 3
    # Each recipe's spatial tolerance travels with its model and is reported.
    assert (r["model"]["surprise_blur"], r["baseline"]["surprise_blur"]) == (4, 0)


def test_cli_eval_physics_and_surprise(tiny_models, tmp_path, capsys):
    pytest.importorskip("av")
    from monde.data.video import write_video
    from monde.worlds.intphys import IntPhys

    model, base = tiny_models
    assert main(["eval", "physics", "--model", str(model), "--baseline", str(base),
                 "--pairs", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["model"]["target"] == "latent" and out["baseline"]["target"] == "pixels"
    assert (model / "physics.json").is_file()

    clip = IntPhys().pairs("gravity", 1, 0).impossible[0]
    path = tmp_path / "clip.mp4"
    write_video(path, clip, fps=15)
    png, csv = tmp_path / "s.png", tmp_path / "s.csv"
    assert main(["surprise", str(path), "--model", str(model), "--plot", str(png),
                 "--csv", str(csv), "--json"]) == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["frames"] == len(clip) and 4 <= s["peak_frame"] < len(clip)
    assert png.stat().st_size > 1000 and len(csv.read_text().splitlines()) == len(clip) + 1
    # --blur overrides the model's spatial tolerance (2 cells in the recipe) for this call.
    sharp = tmp_path / "sharp.csv"
    assert main(["surprise", str(path), "--model", str(model), "--plot", str(png),
                 "--csv", str(sharp), "--blur", "0"]) == 0
    assert sharp.read_text() != csv.read_text()
    assert main(["surprise", str(path), "--model", str(model), "--blur", "-1"]) == 2
    assert "blur" in capsys.readouterr().err

    short = tmp_path / "short.mp4"
    write_video(short, clip[:4], fps=15)
    assert main(["surprise", str(short), "--model", str(model)]) == 2
    assert "at least 9" in capsys.readouterr().err
    assert main(["surprise", str(tmp_path / "missing.mp4"), "--model", str(model)]) == 2
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00\x01 not a video" * 50)
    assert main(["surprise", str(bad), "--model", str(model)]) == 2
    assert "corrupt.mp4" in capsys.readouterr().err

    big = tmp_path / "big.mp4"   # another resolution: resized, and the output says so
    write_video(big, np.repeat(np.repeat(clip, 2, axis=2), 2, axis=3), fps=15)
    assert main(["surprise", str(big), "--model", str(model), "--plot", str(png), "--json"]) == 0
    assert "resized from 128x128" in capsys.readouterr().out


def test_physics_eval_scores_the_windowed_vit_models_too(tmp_path):
    """Protocol v3 leaves context and stride to each model: the ViT recipe still scores."""
    import monde

    dirs = []
    for recipe in ("intphys-vit-tiny", "intphys-vit-pixels-tiny"):
        dirs.append(tmp_path / recipe)
        assert main(["train", recipe, "--out", str(dirs[-1]), "--quiet", *TINY_VIT]) == 0
    model, base = (monde.load(p) for p in dirs)
    r = physics_eval(model, PhysicsProtocol(pairs=2), base)
    assert r["model"]["target"] == "latent" and r["baseline"]["target"] == "pixels"
    assert "surprise_blur" not in r["model"]
    assert r["protocol"]["version"] == 3 and r["protocol"]["settings"]["context"] is None
    with pytest.raises(ConfigError, match="same frames"):
        physics_eval(model, PhysicsProtocol(pairs=1), _other_size_model(tmp_path))


def _other_size_model(tmp_path):
    import monde

    out = tmp_path / "small"
    assert main(["train", "intphys-tiny", "--out", str(out), "--quiet", *TINY,
                 "model.size=32", "data.balls.size=32"]) == 0
    return monde.load(out)


def test_surprise_refuses_a_sensor_model(tmp_path, capsys):
    from monde.worlds.plant import PlantConfig, SyntheticPlant

    plant = SyntheticPlant(PlantConfig(sensors=6, actions=1, seed=0))
    data = plant.write_csv(plant.simulate(400, seed=0), tmp_path / "plant.csv")
    out = tmp_path / "m"
    assert main(["sensors", "fit", str(data), "--out", str(out), "--quiet", "train.steps=2",
                 "model.dim=16", "model.depth=1", "model.heads=2", "model.predictor_dim=16",
                 "model.predictor_depth=1"]) == 0
    assert main(["surprise", str(data), "--model", str(out)]) == 2
    assert "sensors score" in capsys.readouterr().err
