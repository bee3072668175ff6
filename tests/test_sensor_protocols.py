"""Frozen sensor protocols (TEP, C-MAPSS, ETTh1): metrics on hand-made arrays, loaders and the
baseline figures of shared/data/README.md on the real files (skipped when they are absent)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from monde.errors import ConfigError, DataError
from monde.evals import cmapss, etth, tep
from monde.evals.datasets import find_data
from monde.evals.protocol import protocol_record


def _data(name: str):
    try:
        return find_data(name)
    except DataError as err:
        pytest.skip(f"real data set {name!r} not found (expected at ../shared/data/{name} or "
                    f"$MONDE_DATA/{name}): {str(err).splitlines()[0]}")


@pytest.fixture(scope="module")
def tep_data():
    return tep.load_tep(_data("tep"))


@pytest.fixture(scope="module")
def cmapss_data():
    return cmapss.load_cmapss(_data("cmapss"))


@pytest.fixture(scope="module")
def ett_data():
    return etth.load_ett(_data("etth"))


# ---- finding data ---------------------------------------------------------------------------

def test_find_data_explicit_env_and_errors(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="does not exist"):
        find_data("tep", tmp_path / "nowhere")
    assert find_data("tep", tmp_path) == tmp_path
    (tmp_path / "etth").mkdir()
    monkeypatch.setenv("MONDE_DATA", str(tmp_path))
    assert find_data("etth") == tmp_path / "etth"
    with pytest.raises(DataError, match="unknown data set"):
        find_data("mnist")


# ---- protocols ------------------------------------------------------------------------------

def test_protocol_hashes_are_frozen():
    # A changed hash means a changed protocol: bump its version and update these.
    assert protocol_record(tep.TEPProtocol())["hash"] == protocol_record(tep.TEPProtocol())["hash"]
    hashes = {p.name: protocol_record(p)["hash"]
              for p in (tep.TEPProtocol(), cmapss.CMAPSSProtocol(), etth.ETTProtocol())}
    assert hashes == {"tep-detection": "e747410e40", "cmapss-rul": "c4ec341359",
                      "etth-forecast": "c0be9b0459"}
    assert protocol_record(tep.TEPProtocol(false_alarm=0.05))["hash"] != hashes["tep-detection"]


CMAPSS_V1 = cmapss.CMAPSSProtocol(version=1, clip=False)


# ---- TEP metrics on tiny runs ---------------------------------------------------------------

TINY = tep.TEPProtocol(fault_start=4, run_length=10, threshold_range=(0, 10), faults=(1, 2),
                       excluded=(2,), false_alarm=0.1)


def test_tep_report_rates_delay_and_nan():
    normal = np.array([np.nan, 0.0, 1, 2, 3, 4, 5, 6, 7, 8])
    # 9 scored samples, linear 0.9 quantile of 0..8 = 7.2: only the 8 is a false alarm
    assert tep.threshold_from_normal(normal, TINY) == pytest.approx(7.2)
    f1 = np.array([9.0, 9, 9, 9, 0, 0, 8, np.nan, 9, 0])  # alarms at 6 and 8 → delay 2
    f2 = np.full(10, np.nan)  # never scored: never an alarm
    r = tep.tep_report(normal, {1: f1, 2: f2}, TINY)
    assert r["faults"][1] == {"detection_rate": 2 / 6, "delay_samples": 2, "delay_minutes": 6}
    assert r["faults"][2] == {"detection_rate": 0.0, "delay_samples": None,
                              "delay_minutes": None}
    assert r["mean_detection"] == pytest.approx(1 / 6)
    assert r["mean_detection_excl"] == pytest.approx(2 / 6)
    assert r["false_alarm_rate"] == pytest.approx(0.1)
    assert r["false_alarm_rate_eval"] == pytest.approx(1 / 6)
    assert r["protocol"]["hash"] == protocol_record(TINY)["hash"]


def test_tep_report_rejects_missing_faults_and_bad_lengths():
    normal = np.arange(10.0)
    with pytest.raises(DataError, match="faults"):
        tep.tep_report(normal, {1: normal}, TINY)
    with pytest.raises(DataError, match="shape"):
        tep.tep_report(normal[:5], {1: normal, 2: normal}, TINY)


def test_dpca_pads_first_lag_samples_with_nan():
    rng = np.random.default_rng(0)
    train, run = rng.normal(size=(200, 6)), rng.normal(size=(30, 6))
    scores = tep.dpca_spe_scores(train, [run], n_components=3, lag=2)[0]
    assert scores.shape == (30,) and np.isnan(scores[:2]).all() and np.isfinite(scores[2:]).all()
    assert tep.lagged(np.arange(10.0).reshape(5, 2), 1)[0].tolist() == [2, 3, 0, 1]


def test_tep_short_file_is_a_data_error(tmp_path):
    np.savetxt(tmp_path / "d00.dat", np.zeros((10, 52)))
    with pytest.raises(DataError, match="expected"):
        tep._read_run(tmp_path / "d00.dat", 500)
    with pytest.raises(DataError, match="missing TEP file"):
        tep.load_tep(tmp_path)


# ---- C-MAPSS metrics and windows ------------------------------------------------------------

def test_rmse_and_phm08_asymmetry():
    assert cmapss.rmse([1.0, 3.0], [1.0, 1.0]) == pytest.approx(math.sqrt(2))
    late, early = cmapss.phm08_score([15.0], [10.0]), cmapss.phm08_score([5.0], [10.0])
    assert late == pytest.approx(math.exp(0.5) - 1)
    assert early == pytest.approx(math.exp(5 / 13) - 1)
    assert late > early > 0 and cmapss.phm08_score([3.0], [3.0]) == 0.0


def _tiny_cmapss() -> cmapss.CMAPSSData:
    eng = [np.arange(n * 24, dtype=float).reshape(n, 24) for n in (6, 2, 4)]
    return cmapss.CMAPSSData(train=eng, test=eng, rul_test=np.array([3.0, 200.0, 0.0]))


def test_cmapss_windows_alignment_and_padding():
    assert cmapss.train_rul(5, cap=3).tolist() == [3, 3, 2, 1, 0]
    data = _tiny_cmapss()
    x, y, engine = cmapss.train_windows(data, 3, cap=125)
    assert x.shape == (4 + 0 + 2, 3, 24)  # the 2-cycle engine is too short to give a window
    assert engine.tolist() == [0, 0, 0, 0, 2, 2] and y.tolist() == [3, 2, 1, 0, 1, 0]
    np.testing.assert_array_equal(x[3], data.train[0][3:6])  # last window ends at failure
    xt, yt = cmapss.test_windows(data, 3, cap=125)
    assert xt.shape == (3, 3, 24) and yt.tolist() == [3, 125, 0]
    np.testing.assert_array_equal(xt[1], data.test[1][[0, 0, 1]])  # left-padded with row 0
    picked = cmapss.labelled_engines(100, 0.1, seed=3)
    assert len(picked) == 10 and picked.tolist() == cmapss.labelled_engines(100, 0.1, 3).tolist()
    assert cmapss.labelled_engines(7, 1.0, 0).tolist() == list(range(7))


def test_cmapss_history_averaging_and_clipping():
    data = _tiny_cmapss()
    x, real, y = cmapss.test_histories(data, 3, 3, cap=125)
    assert x.shape == (9, 3, 24) and real.tolist() == [3, 1, 2] and y.tolist() == [3, 125, 0]
    np.testing.assert_array_equal(x[0], data.test[0][3:6])  # newest first
    np.testing.assert_array_equal(x[2], data.test[0][1:4])
    np.testing.assert_array_equal(x[3], data.test[1][[0, 0, 1]])  # padded, then repeated
    np.testing.assert_array_equal(x[8], data.test[2][0:3])  # 2 windows: the oldest repeats
    with pytest.raises(ConfigError, match="history"):
        cmapss.test_histories(data, 3, 0, cap=125)
    _, _, eng = cmapss.train_windows(data, 3, cap=125)
    f = np.arange(6.0)[:, None]  # engine 0 has windows 0-3, engine 2 windows 4-5
    assert cmapss.history_mean(f, eng, 3)[:, 0].tolist() == [0, 0.5, 1, 2, 4, 4.5]

    seen = {}

    def fit_predict(f_tr, y_tr, f_te):
        seen["train"], seen["test"] = f_tr[:, 0].tolist(), f_te[:, 0].tolist()
        return np.array([-5.0, 300.0, 7.0])

    protocol = cmapss.CMAPSSProtocol(window=3, history=3, label_fractions=(1.0,))
    r = cmapss.cmapss_report(lambda w: w[:, -1, :1], fit_predict, data, protocol)
    # column 0 of row i is 24 i: each window's last row, averaged over real windows only
    assert seen["train"] == [48, 60, 72, 96, 48, 60] and seen["test"] == [96, 24, 60]
    # predictions clipped to [0, 125] before scoring against [3, 125, 0]
    assert r["fractions"]["1.0"]["rmse"] == pytest.approx(np.sqrt((9 + 0 + 49) / 3))
    assert r["fractions"]["1.0"]["per_seed"][0]["predictions"] == [0, 125, 7]
    assert r["truth"] == [3, 125, 0]
    lo, hi = r["fractions"]["1.0"]["rmse_ci90"]
    assert 0 <= lo <= r["fractions"]["1.0"]["rmse"] <= hi <= 7
    unclipped = cmapss.cmapss_report(lambda w: w[:, -1, :1], fit_predict, data,
                                     replace(protocol, clip=False))
    assert unclipped["fractions"]["1.0"]["rmse"] > r["fractions"]["1.0"]["rmse"]


def test_cmapss_bootstrap_intervals():
    true = np.linspace(0, 125, 100)
    exact = cmapss.bootstrap_rmse(true, true)
    assert exact == [0.0, 0.0]
    rng = np.random.default_rng(1)
    pred = true + rng.normal(0, 10, 100)
    lo, hi = cmapss.bootstrap_rmse(pred, true)
    assert lo < cmapss.rmse(pred, true) < hi and hi - lo > 1.0  # 100 engines: wide
    # One wild engine moves the RMSE, and the interval widens to show it.
    wild = pred.copy()
    wild[0] += 80
    lo2, hi2 = cmapss.bootstrap_rmse(wild, true)
    assert hi2 - lo2 > 2 * (hi - lo)
    # Paired: a shift shared by both cancels; a uniformly better prediction is resolved.
    same = cmapss.paired_rmse_difference(pred, pred, true)
    assert same == {"difference": 0.0, "ci": [0.0, 0.0]}
    better = cmapss.paired_rmse_difference(true + 0.5 * (pred - true), pred, true)
    assert better["difference"] == pytest.approx(-0.5 * cmapss.rmse(pred, true))
    assert better["ci"][1] < 0
    noisy = cmapss.paired_rmse_difference(pred, true + rng.normal(0, 10, 100), true)
    assert noisy["ci"][0] < 0 < noisy["ci"][1]  # two equally good read-outs: not told apart


# ---- ETT metrics and windows ----------------------------------------------------------------

def test_mse_mae_and_forecast_windows():
    assert etth.mse_mae(np.array([1.0, -1.0]), np.zeros(2)) == (1.0, 1.0)
    assert etth.mse_mae(np.array([2.0, 0.0]), np.zeros(2)) == (2.0, 1.0)
    series = np.stack([np.arange(20.0), -np.arange(20.0)], axis=1)  # [20, 2]
    x, y = etth.forecast_windows(series, 5, 3, stride=2)
    assert x.shape == (7, 5, 2) and y.shape == (7, 3, 2)
    assert x[1, :, 0].tolist() == [2, 3, 4, 5, 6] and y[1, :, 1].tolist() == [-7, -8, -9]
    last = etth.forecast_windows(series, 5, 3)[1][-1]
    np.testing.assert_array_equal(last, series[-3:])


# ---- real data: loaders and baseline figures (data/README.md) -------------------------------

def test_tep_loader_and_baselines(tep_data):
    assert tep_data.train_normal.shape == (500, 52)  # d00.dat is stored transposed (52×500)
    assert tep_data.train_normal[:2, 0].tolist() == [0.24987, 0.25118]
    assert tep_data.test_normal.shape == (960, 52) and len(tep_data.names) == 52
    assert sorted(tep_data.test_faults) == list(range(1, 22))
    protocol = tep.TEPProtocol()
    runs = {0: tep_data.test_normal, **tep_data.test_faults}
    for scores_fn, expected in ((tep.pca_spe_scores, 0.7334), (tep.dpca_spe_scores, 0.7682)):
        scores = scores_fn(tep_data.train_normal, runs)
        report = tep.tep_report(scores.pop(0), scores, protocol)
        assert report["mean_detection_excl"] == pytest.approx(expected, abs=0.002)
        assert report["false_alarm_rate"] == pytest.approx(0.0104, abs=0.001)
        assert report["protocol"]["hash"] == protocol_record(protocol)["hash"]


def test_cmapss_loader_and_baselines(cmapss_data):
    assert len(cmapss_data.train) == 100 and len(cmapss_data.test) == 100
    assert cmapss_data.train[0].shape[1] == 24 and cmapss_data.rul_test.shape == (100,)
    assert sum(len(e) for e in cmapss_data.train) == 20631
    channels = cmapss.varying_sensors(cmapss_data)
    assert [cmapss_data.names[j] for j in channels] == [
        "s2", "s3", "s4", "s7", "s8", "s9", "s11", "s12", "s13", "s14", "s15", "s17", "s20", "s21"]

    def featurize(x):
        return cmapss.window_stats(x, channels)

    ridge = cmapss.cmapss_report(featurize, cmapss.ridge_fit_predict(), cmapss_data, CMAPSS_V1)
    assert ridge["fractions"]["1.0"]["rmse"] == pytest.approx(16.89, abs=0.05)
    few = ridge["fractions"]["0.1"]
    assert few["engines"] == 10 and len(few["per_seed"]) == 5 and few["rmse_std"] > 0
    full_only = replace(CMAPSS_V1, label_fractions=(1.0,))
    boost = cmapss.cmapss_report(featurize, cmapss.boosting_fit_predict(), cmapss_data, full_only)
    assert boost["fractions"]["1.0"]["rmse"] == pytest.approx(12.25, abs=0.5)
    # v2 clips predictions to [0, 125]: ridge's go outside it, boosting's hardly
    v2 = cmapss.cmapss_report(featurize, cmapss.ridge_fit_predict(), cmapss_data,
                              replace(cmapss.CMAPSSProtocol(), label_fractions=(1.0,)))
    assert v2["fractions"]["1.0"]["rmse"] == pytest.approx(15.06, abs=0.05)


def test_etth_loader_and_ridge_baseline(ett_data):
    protocol = etth.ETTProtocol()
    assert ett_data.series.shape == (14400, 7)
    assert ett_data.train.shape == (8640, 7) and ett_data.test.shape == (2880 + 336, 7)
    np.testing.assert_allclose(ett_data.train.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(ett_data.train.std(0), 1, atol=1e-9)
    model = etth.ChannelRidge().fit(ett_data.train, protocol.lookback, protocol.horizons)
    report = etth.etth_report(model, ett_data, protocol)
    assert report["horizons"]["720"]["windows"] == 2880 - 720 + 1
    assert report["mse"] == pytest.approx(0.409, abs=0.005)
    assert report["protocol"]["hash"] == protocol_record(protocol)["hash"]


def test_cmapss_comparison_is_against_the_best_baseline():
    from monde.evals.plant import _compare_full_labels

    truth = [10.0, 50.0, 100.0, 120.0]

    def fit(pred):
        return {"fractions": {"1.0": {"rmse": cmapss.rmse(pred, truth),
                                      "per_seed": [{"predictions": pred}]}}, "truth": truth}

    out = {"protocol": {"settings": {"label_fractions": [1.0, 0.1]}},
           "monde": {"ridge": fit([12.0, 50.0, 100.0, 120.0])},
           "baselines": {"a": fit([20.0, 60.0, 90.0, 110.0]), "b": fit([10.0, 55.0, 100.0, 120.0])}}
    c = _compare_full_labels(out)["monde_ridge"]
    assert c["baseline"] == "b" and c["difference"] == pytest.approx(1.0 - np.sqrt(25 / 4))
    out["protocol"]["settings"]["label_fractions"] = [0.1]
    assert _compare_full_labels(out) == {}  # no all-labels fit: nothing to pair
