"""`monde eval tep | etth` end to end with micro models (skipped without the real data)."""

from __future__ import annotations

import json

import pytest

from monde.cli import main
from monde.errors import DataError

TINY = ["train.steps=3", "train.batch_size=8", "train.warmup_steps=1", "train.log_every=1",
        "train.checkpoint_every=3", "train.diag_every=3", "model.dim=16", "model.depth=1",
        "model.heads=2", "model.predictor_dim=16", "model.predictor_depth=1",
        "model.predictor_heads=2"]


def _need(name: str):
    from monde.evals.datasets import find_data

    try:
        return find_data(name)
    except DataError as e:
        pytest.skip(f"real data set {name!r} not found: {e}")


def test_eval_tep_reports_model_and_baselines(tmp_path, capsys):
    root = _need("tep")
    assert main(["eval", "tep", "--data", str(root), "--out", str(tmp_path / "m"), "--quiet",
                 "--json", *TINY]) == 0
    out = capsys.readouterr().out
    r = json.loads(out.strip().splitlines()[-1])
    assert r["protocol"]["name"] == "tep-detection" and r["protocol"]["hash"]
    assert set(r["monde"]["per_fault"]) == {str(k) for k in range(1, 22)}
    assert 0 <= r["monde"]["mean_detection_excl"] <= 1
    # The baselines run in the same call and reproduce the data README's figures.
    assert r["baselines"]["pca_spe"]["mean_detection_excl"] == pytest.approx(0.733, abs=0.002)
    assert "DPCA-SPE" in out and (tmp_path / "m" / "eval.json").is_file()
    # --model scores that model without training: the same figures, and nothing retrained.
    before = (tmp_path / "m" / "model.safetensors").stat().st_mtime_ns
    assert main(["eval", "tep", "--data", str(root), "--model", str(tmp_path / "m"), "--json"]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["monde"]["per_fault"] == r["monde"]["per_fault"]
    assert (tmp_path / "m" / "model.safetensors").stat().st_mtime_ns == before
    assert "given with --model" in _human(capsys, ["eval", "tep", "--data", str(root), "--model",
                                                   str(tmp_path / "m")])
    # Overrides would configure a training that --model skips: refused, not ignored.
    assert main(["eval", "tep", "--data", str(root), "--model", str(tmp_path / "m"),
                 "train.steps=5"]) == 2
    assert "drop the recipe overrides" in capsys.readouterr().err


def _human(capsys, argv) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


def test_eval_etth_forecasts_every_horizon(tmp_path, capsys):
    root = _need("etth")
    assert main(["eval", "etth", "--data", str(root), "--out", str(tmp_path / "m"), "--quiet",
                 "--json", *TINY]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(r["monde"]["horizons"]) == {"96", "192", "336", "720"}
    assert r["baselines"]["channel_ridge"]["mse"] == pytest.approx(0.409, abs=0.005)
    assert all(v["mse"] > 0 for v in r["monde"]["horizons"].values())
    # The control (the same model at initialisation, the same read-out) runs in the same call.
    control = r["baselines"]["random_init"]
    assert set(control["horizons"]) == {"96", "192", "336", "720"} and control["mse"] > 0
    assert control["mse"] != r["monde"]["mse"] and control["readout"]["windows"] > 1000


def test_eval_cmapss_probes_latents_beside_window_statistics(tmp_path, capsys):
    root = _need("cmapss")
    assert main(["eval", "cmapss", "--data", str(root), "--out", str(tmp_path / "m"), "--quiet",
                 "--json", *TINY]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(r["monde"]) == {"ridge", "boosting"}
    for v in r["monde"].values():
        assert set(v["fractions"]) == {"1.0", "0.1"} and v["fractions"]["1.0"]["rmse"] > 0
    assert r["protocol"]["version"] == 2  # v1 without clipping gave 16.89
    assert r["baselines"]["window_stats_ridge"]["fractions"]["1.0"]["rmse"] == pytest.approx(
        15.06, abs=0.05)
    # Each monde read-out against the best baseline (boosting, 12.06), paired over engines.
    for name in ("monde_ridge", "monde_boosting"):
        c = r["comparison"][name]
        assert c["baseline"] == "window_stats_boosting" and c["ci"][0] < c["difference"] < c["ci"][1]
    lo, hi = r["baselines"]["window_stats_boosting"]["fractions"]["1.0"]["rmse_ci90"]
    assert lo < 12.06 < hi
    assert "predictions" not in r["monde"]["ridge"]["fractions"]["0.1"]["per_seed"][0]


def test_a_model_that_does_not_fit_the_protocol_is_refused():
    """Before any data is read: a clear ConfigError (the CLI prints it), not a traceback."""
    from monde.errors import ConfigError
    from monde.evals.plant import cmapss_eval, etth_eval
    from monde.jepa.sensor_model import SensorJEPA, SensorModelConfig
    from monde.jepa.sensor_world_model import SensorWorldModel

    model = SensorWorldModel(SensorJEPA(SensorModelConfig(channels=7, window=32, patch=4,
                                                          dim=16, depth=1, heads=2)))
    with pytest.raises(ConfigError, match=r"window \(32\) must be the protocol's \(30\)"):
        cmapss_eval(model, data=None)
    with pytest.raises(ConfigError, match=r"context \(24 rows\) must be the protocol's look-back"):
        etth_eval(model, data=None)
