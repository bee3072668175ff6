"""Sensor world models on the real-data protocols: TEP fault detection and C-MAPSS remaining
useful life. Each runs the protocol's simple baselines in the same call, on the same data."""

from __future__ import annotations

import time

import numpy as np
import torch

from monde.errors import ConfigError
from monde.evals.cmapss import (
    CMAPSSData,
    CMAPSSProtocol,
    boosting_fit_predict,
    cmapss_report,
    paired_rmse_difference,
    ridge_fit_predict,
    varying_sensors,
    window_stats,
)
from monde.evals.tep import TEPData, TEPProtocol, dpca_spe_scores, pca_spe_scores, tep_report
from monde.train.precision import autocast


def tep_eval(model, data: TEPData, protocol: TEPProtocol | None = None) -> dict:
    """Surprise of ``model`` (a ``SensorWorldModel`` trained on ``d00.dat``) on every test run,
    scored by ``protocol``, beside PCA-SPE and dynamic-PCA-SPE.

    The baselines are reported as published (raw SPE) and with the same causal moving
    average as the model's score, so the comparison does not hinge on the smoothing.
    """
    from monde.jepa.sensor_world_model import ewma

    protocol = protocol or TEPProtocol()
    t0 = time.perf_counter()
    runs = {0: data.test_normal, **data.test_faults}
    with autocast("auto"):  # bf16 only where the CPU computes it natively
        scores = {k: model.surprise(v.astype(np.float32)).scores for k, v in runs.items()}
    seconds = time.perf_counter() - t0
    mine = tep_report(scores.pop(0), scores, protocol)
    alpha = model.config.smoothing
    base = {}
    for name, fn in (("pca_spe", pca_spe_scores), ("dpca_spe", dpca_spe_scores)):
        raw = fn(data.train_normal, runs)
        smooth = {k: ewma(v, alpha)[0] for k, v in raw.items()}
        base[name] = _summary(tep_report(raw.pop(0), raw, protocol))
        base[f"{name}_smoothed"] = _summary(tep_report(smooth.pop(0), smooth, protocol))
    dpca = base["dpca_spe"]["per_fault"]
    per = {str(k): v["detection_rate"] for k, v in mine["faults"].items()}
    counted = [k for k in per if int(k) not in protocol.excluded]
    return {
        "protocol": mine["protocol"], "monde": _summary(mine), "baselines": base,
        "beats_dpca": sorted(int(k) for k in counted if per[k] > dpca[k] + 0.01),
        "loses_to_dpca": sorted(int(k) for k in counted if per[k] < dpca[k] - 0.01),
        "score_seconds": round(seconds, 2),
        "readings_per_second": round(sum(map(len, runs.values())) * 52 / seconds)}


def _summary(report: dict) -> dict:
    return {"mean_detection_excl": report["mean_detection_excl"],
            "mean_detection": report["mean_detection"],
            "false_alarm_rate": report["false_alarm_rate"],
            "per_fault": {str(k): round(v["detection_rate"], 4)
                          for k, v in report["faults"].items()},
            "delay_minutes": {str(k): v["delay_minutes"] for k, v in report["faults"].items()}}


def far_leads(lead: int) -> tuple[int, ...]:
    """The leads a model trained with far-future targets up to ``lead`` rows is asked about."""
    return tuple(sorted({max(1, lead // 4), max(1, lead // 2), lead}))


def latent_features(model, windows: np.ndarray) -> np.ndarray:
    """Frozen-latent features of raw windows ``[N, L, C]``.

    The last patch averaged over groups (the current state, ``D``), with either every
    group's latent averaged over time (``G·D``) or — for a model trained with far-future
    targets (``lead > 0``) — its forecasts of the latent ``lead/4``, ``lead/2`` and ``lead``
    rows ahead, averaged over groups (where the plant is heading, ``3·D``). On C-MAPSS
    validation engines the forecasts read better without the per-group averages beside
    them (ridge RMSE 11.4 against 13.0; docs/results.md).
    """
    with autocast("auto"):  # bf16 only where the CPU computes it natively
        z = model.encode(windows).float()          # [N, G, P, D]
        now = z[:, :, -1].mean(1)
        if model.net.cfg.lead > 0:
            far = model.far_latents(windows, far_leads(model.net.cfg.lead))  # [N, K, G, D]
            return torch.cat([now, far.float().mean(2).flatten(1)], 1).numpy()
    return torch.cat([z.mean(2).flatten(1), now], 1).numpy()


def cmapss_eval(model, data: CMAPSSData, protocol: CMAPSSProtocol | None = None) -> dict:
    """RUL from a regression probe on ``model``'s frozen latents (ridge and gradient boosting),
    beside the same regressors on window statistics, at every label fraction."""
    protocol = protocol or CMAPSSProtocol()
    if model.config.window != protocol.window:
        raise ConfigError(f"the model's window ({model.config.window}) must be the protocol's "
                         f"({protocol.window})")
    chans = varying_sensors(data)
    out = {"protocol": None, "monde": {}, "baselines": {}}
    for reg_name, reg in (("ridge", ridge_fit_predict()), ("boosting", boosting_fit_predict())):
        r = cmapss_report(lambda w: latent_features(model, w), reg, data, protocol)
        out["protocol"] = r.pop("protocol")
        out["monde"][reg_name] = r
        b = cmapss_report(lambda w: window_stats(w, chans), reg, data, protocol)
        b.pop("protocol")
        out["baselines"][f"window_stats_{reg_name}"] = b
    out["comparison"] = _compare_full_labels(out)
    return out


def _compare_full_labels(out: dict) -> dict:
    """Each monde read-out against the baseline with the lowest RMSE at 100% labels: the paired
    difference of RMSE (negative: monde better) with its 90% bootstrap interval over engines.
    Empty when the protocol has no all-labels fraction."""
    if 1.0 not in out["protocol"]["settings"]["label_fractions"]:
        return {}

    def full(v):
        return np.array(v["fractions"]["1.0"]["per_seed"][0]["predictions"])

    base_name = min(out["baselines"], key=lambda k: out["baselines"][k]["fractions"]["1.0"]["rmse"])
    truth = np.array(out["baselines"][base_name]["truth"])
    return {f"monde_{k}": {"baseline": base_name,
                           **paired_rmse_difference(full(v), full(out["baselines"][base_name]), truth)}
            for k, v in out["monde"].items()}


def random_twin(model, values, actions, runs: list[slice]):
    """``(twin, read-out fit)``: the same architecture at initialisation (seed 0) with the
    model's normalisation, its forecast read-out fitted as the recipe fits it — on the rows it
    trained on, all of ``runs`` but each one's last ``data.holdout`` (0.1 by default; a saved
    model does not record it), in fp32. What a read-out gets from features nobody trained."""
    from monde.data.sensor_windows import split_runs
    from monde.jepa.sensor_forecast import fit_decoder
    from monde.jepa.sensor_model import SensorJEPA
    from monde.jepa.sensor_world_model import SensorWorldModel

    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = SensorJEPA(model.net.cfg)
    src = model.net
    net.set_normalization(src.mean, src.std, src.action_mean, src.action_std)
    twin = SensorWorldModel(net, model.meta)
    return twin, fit_decoder(twin, values, actions, split_runs(runs, 0.1)[0])


def etth_eval(model, data, protocol=None, *, control: bool = True) -> dict:
    """Forecasts decoded from ``model``'s predicted latents (the linear read-out fitted after
    training), beside the channel-independent ridge baseline, on the ETTh protocol.

    With ``control``, the same architecture at initialisation (same normalisation, read-out
    fitted the same way on the same 90% of the training split) is scored too, under
    ``baselines.random_init``: what the read-out gets from features nobody trained, so a
    gain from pretraining can be told from one of the architecture or the read-out.
    """
    from monde.evals.etth import ChannelRidge, ETTProtocol, etth_report
    from monde.jepa.sensor_forecast import forecast_batch

    protocol = protocol or ETTProtocol()
    ctx = model.config.window - model.config.future_patches * model.config.patch
    if ctx != protocol.lookback:
        raise ConfigError(f"the model's context ({ctx} rows) must be the protocol's look-back "
                         f"({protocol.lookback})")

    def scorer(wm):
        def forecast(x, h):
            with autocast("auto"):  # bf16 only where the CPU computes it natively
                return forecast_batch(wm, x, h)
        return forecast

    mine = etth_report(scorer(model), data, protocol)
    ridge = ChannelRidge().fit(data.train, protocol.lookback, protocol.horizons)
    base = {"channel_ridge": etth_report(ridge, data, protocol)}
    if control:
        twin, fit = random_twin(model, data.train.astype(np.float32), None,
                                [slice(0, len(data.train))])
        base["random_init"] = {**etth_report(scorer(twin), data, protocol), "readout": fit}
    for b in base.values():
        b.pop("protocol")
    return {"protocol": mine.pop("protocol"), "monde": mine, "baselines": base}
