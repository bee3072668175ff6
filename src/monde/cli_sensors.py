"""``monde sensors fit | score`` — what a plant engineer runs (see ``monde.cli`` for the rest)."""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

from monde.errors import ConfigError, DataError


def add_parser(sub) -> None:
    """Register ``monde sensors ...`` on the top-level subparsers."""
    s = sub.add_parser("sensors", help="plant world models: fit on history, score surprise")
    ssub = s.add_subparsers(dest="sensors_command", required=True, metavar="ACTION")

    f = ssub.add_parser("fit", help="train a sensor world model on normal operation")
    f.add_argument("data", type=Path, help="history file (.csv, .tsv, .txt, .dat, .parquet)")
    f.add_argument("overrides", nargs="*", help="recipe overrides, e.g. train.steps=500 model.window=64")
    f.add_argument("--out", required=True, type=Path, help="model folder (rerun to resume)")
    _schema_args(f)
    f.add_argument("--overwrite", action="store_true", help="delete what --out holds first")
    f.add_argument("--json", action="store_true")
    f.add_argument("--quiet", action="store_true")

    c = ssub.add_parser("score", help="per-step surprise, alarms and the sensors behind them")
    c.add_argument("data", type=Path, help="file with the model's sensor columns")
    c.add_argument("--model", required=True, type=Path, help="a folder from monde sensors fit")
    c.add_argument("--false-alarm", type=float, default=0.01,
                   help="alarm threshold: this fraction of normal steps would alarm (default 0.01)")
    c.add_argument("--calibrate", type=Path, default=None,
                   help="a file of normal operation to calibrate the threshold on (default: the "
                   "held-out data of the fit)")
    c.add_argument("--out", type=Path, default=None, help="CSV of per-step scores (default DATA.surprise.csv)")
    c.add_argument("--plot", type=Path, default=None, help="PNG of surprise over time (default DATA.surprise.png)")
    c.add_argument("--stride", type=int, default=1, help="score every n-th step (default 1)")
    c.add_argument("--follow", action="store_true",
                   help="keep scoring the file as it grows (causal; Ctrl-C to stop)")
    c.add_argument("--poll", type=float, default=1.0, help="seconds between reads with --follow")
    c.add_argument("--idle-exit", type=float, default=0.0,
                   help="with --follow, stop after this many seconds without new rows (0 = never)")
    c.add_argument("--json", action="store_true")

    fc = ssub.add_parser("forecast", help="forecast the readings after the end of a file")
    fc.add_argument("data", type=Path, help="file with the model's columns (its last run is used)")
    fc.add_argument("--model", required=True, type=Path, help="a folder from monde sensors fit")
    fc.add_argument("--horizon", required=True, type=int, help="rows to forecast")
    fc.add_argument("--out", type=Path, default=None, help="CSV of the forecast (default DATA.forecast.csv)")
    fc.add_argument("--json", action="store_true")
    _add_rul(ssub)


def _add_rul(ssub) -> None:
    r = ssub.add_parser("rul", help="remaining useful life: a probe on frozen latents, fitted "
                        "on run-to-failure units, predicted for running ones")
    r.add_argument("train", type=Path, help="run-to-failure history (the model's columns and unit)")
    r.add_argument("--predict", required=True, type=Path, help="units still running")
    r.add_argument("--model", required=True, type=Path, help="a folder from monde sensors fit")
    r.add_argument("--cap", type=float, default=125.0, help="remaining life cap, in rows (default 125)")
    r.add_argument("--regressor", default="ridge", choices=["ridge", "boosting"])
    r.add_argument("--out", type=Path, default=None, help="CSV (default PREDICT.rul.csv)")
    r.add_argument("--json", action="store_true")


def _rul(args, emit) -> int:
    from monde.evals.rul import fit_predict_rul

    model = _load(args)
    train, test = _read(model, args.train), _read(model, args.predict)
    r = fit_predict_rul(model, train.values, train.runs(), test.values, test.runs(),
                        cap=args.cap, regressor=args.regressor)
    out = args.out or args.predict.with_suffix(".rul.csv")
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["unit", "remaining_life"])
        w.writerows([u, f"{v:.2f}"] for u, v in zip(r.units, r.rul))
    emit(args, f"remaining life of {len(r.units)} units (probe: {args.regressor} on frozen "
               f"latents of {r.train_windows} run-to-failure windows, fit RMSE {r.train_rmse:.1f}, "
               f"cap {args.cap:g}) written to {out}",
         {"units": r.units, "rul": [round(float(v), 2) for v in r.rul], "csv": str(out),
          "train_windows": r.train_windows, "train_rmse": r.train_rmse})
    return 0


def add_eval_parser(sub) -> None:
    """Register ``monde eval``: train the protocol's recipe (or reuse it), evaluate."""
    e = sub.add_parser("eval", help="frozen protocols: monde eval physics | actions | fsdd | machine "
                       "| tep | cmapss | etth | tep-control | av (trains unless --model is given, "
                       "then scores model and baselines)")
    e.add_argument("protocol", choices=["physics", "actions", "fsdd", "machine", "tep", "cmapss",
                                        "etth", "tep-control", "av"])
    e.add_argument("--model", type=Path, default=None,
                   help="evaluate this model folder instead of training the protocol's recipe")
    e.add_argument("--baseline", type=Path, default=None,
                   help="physics: also score this model (e.g. the pixel-predicting twin)")
    e.add_argument("--pairs", type=int, default=None,
                   help="physics: pairs per principle (default: the protocol's 100; another "
                        "number changes the protocol's hash)")
    e.add_argument("overrides", nargs="*", help="recipe overrides, e.g. train.steps=400")
    e.add_argument("--data", type=Path, default=None,
                   help="data folder (default: $MONDE_DATA/NAME or ../shared/data/NAME)")
    e.add_argument("--out", type=Path, default=None, help="model folder (default runs/eval-NAME; "
                   "reused when it holds the same finished run)")
    e.add_argument("--overwrite", action="store_true", help="retrain from scratch")
    e.add_argument("--json", action="store_true")
    e.add_argument("--quiet", action="store_true")


def run_eval(args, emit) -> int:
    import json

    import monde
    from monde.config import apply_overrides
    from monde.evals.datasets import find_data
    from monde.jepa.sensor_world_model import SensorWorldModel
    from monde.recipes import get_recipe, run_recipe

    # tep-control simulates its plant (tep-studio); the others read ../shared/data.
    root = None if args.protocol == "tep-control" else find_data(args.protocol, args.data)
    if args.model is not None:
        # Score a model trained elsewhere (e.g. `monde train etth ... model.x=y`); nothing trains.
        if args.overrides or args.out or args.overwrite:
            raise ConfigError("--model scores an existing model: drop the recipe overrides, "
                              "--out and --overwrite (they configure the training it skips)")
        out, s = args.model, {"steps": None, "seconds": None}
    else:
        cfg = apply_overrides(get_recipe(args.protocol).build(), args.overrides)
        cfg.data.path = "" if root is None else str(root)
        out = args.out or Path("runs") / f"eval-{args.protocol}"
        s = run_recipe(cfg, out, quiet=args.quiet, overwrite=args.overwrite)
        if s["interrupted"]:
            print(f"interrupted; rerun the same command to resume from {out}", file=sys.stderr)
            return 130
    model = monde.load(out)
    if not isinstance(model, SensorWorldModel):
        raise ConfigError(f"{out} holds a {type(model).__name__}, not a sensor world model; "
                          f"`monde eval {args.protocol}` needs one from a sensor recipe")
    t0 = time.perf_counter()
    if args.protocol == "tep":
        from monde.evals.plant import tep_eval
        from monde.evals.tep import load_tep

        r = tep_eval(model, load_tep(root))
        b = r["baselines"]
        human = (f"TEP fault detection at 1% false alarms ({r['protocol']['name']} "
                 f"v{r['protocol']['version']}), mean detection rate without faults 3/9/15:\n"
                 f"  monde {r['monde']['mean_detection_excl']:.3f}   PCA-SPE "
                 f"{b['pca_spe']['mean_detection_excl']:.3f}   DPCA-SPE "
                 f"{b['dpca_spe']['mean_detection_excl']:.3f}   (same smoothing as monde: PCA "
                 f"{b['pca_spe_smoothed']['mean_detection_excl']:.3f}, DPCA "
                 f"{b['dpca_spe_smoothed']['mean_detection_excl']:.3f})\n"
                 f"  beats DPCA on faults {r['beats_dpca']}; loses on {r['loses_to_dpca']}")
    elif args.protocol == "tep-control":
        from monde.evals.tep_control import evaluate_run, summary

        r = evaluate_run(model, out)
        human = summary(r)
    elif args.protocol == "etth":
        from monde.evals.etth import load_ett
        from monde.evals.plant import etth_eval

        r = etth_eval(model, load_ett(root))
        b = r["baselines"]["channel_ridge"]
        human = (f"ETTh1 forecasting ({r['protocol']['name']} v{r['protocol']['version']}, "
                 "z-scored), MSE / MAE per horizon:\n"
                 + "\n".join(f"  {h:>4}: monde {v['mse']:.3f} / {v['mae']:.3f}   ridge "
                             f"{b['horizons'][h]['mse']:.3f} / {b['horizons'][h]['mae']:.3f}"
                             for h, v in r["monde"]["horizons"].items())
                 + f"\n  average: monde {r['monde']['mse']:.3f} / {r['monde']['mae']:.3f}   "
                 f"ridge {b['mse']:.3f} / {b['mae']:.3f}")
        if "random_init" in r["baselines"]:
            c = r["baselines"]["random_init"]
            human += (f"\n  control, same model at initialisation + same read-out: "
                      f"{c['mse']:.3f} / {c['mae']:.3f}")
    else:
        from monde.evals.cmapss import load_cmapss
        from monde.evals.plant import cmapss_eval

        r = cmapss_eval(model, load_cmapss(root))
        rows = [("monde latents + " + k, v) for k, v in r["monde"].items()]
        rows += list(r["baselines"].items())
        human = ("C-MAPSS FD001 RUL (cap 125, last test cycle, predictions clipped to 0-125): "
                 "RMSE with 100% / 10% of engines labelled\n")
        human += "\n".join(f"  {name:<28} {v['fractions']['1.0']['rmse']:6.2f} "
                           "(90% CI {:.1f}-{:.1f})   ".format(*v['fractions']['1.0']['rmse_ci90'])
                           + f"{v['fractions']['0.1']['rmse']:6.2f} ± {v['fractions']['0.1']['rmse_std']:.2f}"
                           for name, v in rows)
        human += "".join(f"\n  {k} minus {c['baseline']}: {c['difference']:+.2f} (paired 90% CI "
                         f"{c['ci'][0]:+.2f} to {c['ci'][1]:+.2f})" for k, c in r["comparison"].items())
    r["seconds"] = round(time.perf_counter() - t0, 1)
    r["train"] = {"steps": s["steps"], "seconds": s["seconds"], "model": str(out)}
    (out / "eval.json").write_text(json.dumps(r, indent=2, default=str))
    how = f"trained {s['steps']} steps" if s["steps"] is not None else "given with --model"
    emit(args, human + f"\n  model {out} ({how}); full results in {out}/eval.json", r)
    return 0


def _schema_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schema", type=Path, default=None, help="YAML schema (time, sensors, actions, unit, sep, names)")
    p.add_argument("--time", default=None, help="time column")
    p.add_argument("--sensors", default=None, help="sensor columns or patterns, comma-separated (default: all others)")
    p.add_argument("--actions", default=None, help="control-input columns, comma-separated")
    p.add_argument("--unit", default=None, help="run/unit column (fleets, batches)")


def run(args, emit) -> int:
    return {"fit": _fit, "score": _score, "forecast": _forecast,
            "rul": _rul}[args.sensors_command](args, emit)


def _forecast(args, emit) -> int:
    model = _load(args)
    if args.horizon < 1:
        raise DataError(f"--horizon must be at least 1, got {args.horizon}")
    table = _read(model, args.data)
    name, last = table.runs()[-1]
    acts = table.actions[last] if model.config.actions else None
    pred = model.forecast(table.values[last], args.horizon, acts)
    out = args.out or args.data.with_suffix(".forecast.csv")
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", *model.sensor_names])
        for i, row in enumerate(pred, 1):
            w.writerow([i, *(f"{v:.6g}" for v in row)])
    emit(args, f"forecast {args.horizon} rows after row {last.stop - 1} of {args.data}"
               + (f" (unit {name})" if table.units is not None else "")
               + f"; written to {out}", {"file": str(args.data), "horizon": args.horizon,
                                         "unit": name, "csv": str(out),
                                         "first": dict(zip(model.sensor_names, map(float, pred[0])))})
    return 0


def _fit(args, emit) -> int:
    from monde.config import apply_overrides, to_dict
    from monde.data.sensors import schema_from_args
    from monde.recipes import get_recipe, run_recipe

    cfg = apply_overrides(get_recipe("sensors").build(), args.overrides)
    cfg.data.source, cfg.data.path = "file", str(args.data)
    cfg.data.schema = schema_from_args(args.time, args.sensors, args.actions, args.unit,
                                       args.schema)
    s = run_recipe(cfg, args.out, quiet=args.quiet, overwrite=args.overwrite)
    if s["interrupted"]:
        print(f"interrupted at step {s['steps']}; rerun the same command to resume from the "
              f"last checkpoint in {args.out}", file=sys.stderr)
        return 130
    import monde

    model = monde.load(args.out)
    cal = model.meta.get("calibration", {})
    s["calibration"] = cal
    s["schema"] = to_dict(cfg.data.schema)
    emit(args, f"trained a sensor world model of {model.config.channels} sensors and "
               f"{model.config.actions} control inputs for {s['steps']} steps in {s['seconds']:.0f} s; "
               f"calibrated on {cal.get('windows')} {'held-out ' if cal.get('held_out') else ''}"
               f"normal windows\nmodel saved in {args.out}; score a file with "
               f"`monde sensors score FILE --model {args.out}`", s)
    return 0


def _load(args):
    import monde
    from monde.jepa.sensor_world_model import SensorWorldModel

    model = monde.load(args.model)
    if not isinstance(model, SensorWorldModel):
        raise DataError(f"{args.model} is a {model.meta.get('modality')} model, not a sensor "
                        "model; train one with `monde sensors fit`")
    return model


def _read(model, path: Path):
    from monde.data.sensors import SensorSchema, read_table

    schema = SensorSchema.from_dict(model.meta.get("schema") or {})
    return read_table(path, schema, expect_sensors=model.sensor_names,
                      expect_actions=model.action_names or None)


def _score(args, emit) -> int:
    model = _load(args)
    if args.calibrate:
        normal = _read(model, args.calibrate)
        cal = model.calibrate(normal.values, normal.actions if model.config.actions else None,
                              [r for _, r in normal.runs()])
        print(f"calibrated on {cal['windows']} windows of {args.calibrate}", flush=True)
    threshold = model.threshold(args.false_alarm)
    if args.follow:
        return _follow(args, model, threshold)
    table = _read(model, args.data)
    runs = [r for _, r in table.runs()]
    t0 = time.perf_counter()
    res = model.surprise(table.values, table.actions if model.config.actions else None, runs,
                         stride=args.stride)
    seconds = time.perf_counter() - t0
    alarm = np.nan_to_num(res.scores, nan=-np.inf) > threshold
    out = args.out or args.data.with_suffix(".surprise.csv")
    _write_csv(out, table, res, alarm)
    plot = args.plot or args.data.with_suffix(".surprise.png")
    from monde.viz import plot_surprise

    plot_surprise(res.scores, threshold, plot, time=table.time,
                  title=f"{args.data.name}: surprise ({args.false_alarm:.1%} false alarms on normal)")
    scored = int(np.isfinite(res.scores).sum())
    peak = int(np.nanargmax(res.scores)) if scored else None
    first = int(np.argmax(alarm)) if alarm.any() else None
    payload = {
        "file": str(args.data), "rows": len(table), "scored": scored,
        "threshold": threshold, "false_alarm": args.false_alarm, "alarms": int(alarm.sum()),
        "first_alarm_row": first, "peak_row": peak,
        "peak_score": None if peak is None else float(res.scores[peak]),
        "peak_groups": None if peak is None else res.top_groups(peak),
        "readings_per_second": round(scored * args.stride * model.config.channels / seconds),
        "csv": str(out), "plot": str(plot)}
    human = (f"scored {scored} of {len(table)} rows in {seconds:.1f} s; threshold {threshold:.3f} "
             f"({args.false_alarm:.1%} false alarms on normal data)\n"
             f"  alarms: {int(alarm.sum())}" + (f", first at row {first}" if first is not None else "")
             + ("" if peak is None else f"\n  peak {res.scores[peak]:.2f} at row {peak}; sensors: "
                + ", ".join(f"{n} ({v:.2f})" for n, v in res.top_groups(peak)))
             + f"\n  per-step scores: {out}\n  plot: {plot}")
    emit(args, human, payload)
    return 0


def _write_csv(path: Path, table, res, alarm: np.ndarray) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["row", "time", "unit", "surprise", "prediction", "novelty", "alarm",
                    "top_sensors"])
        for i in range(len(res.scores)):
            top = ";".join(n for n, _ in res.top_groups(i)) if alarm[i] else ""
            w.writerow([i, "" if table.time is None else table.time[i],
                        "" if table.units is None else table.units[i],
                        f"{res.scores[i]:.5g}", f"{res.prediction[i]:.5g}",
                        f"{res.novelty[i]:.5g}", int(alarm[i]), top])


def _follow(args, model, threshold: float) -> int:
    """Score a growing file: every poll, re-read it and score only the rows that are new.

    Causal and identical to scoring the whole file at once: the score of row ``t`` uses the
    window that ends at ``t``, and the moving average carries over between polls. The file is
    one stream (a unit column is not split). Rows go to the CSV as they are scored.
    """
    from monde.jepa.sensor_world_model import ewma

    w = model.window
    scored, last_new, state = 0, time.monotonic(), None
    out = args.out or args.data.with_suffix(".surprise.csv")
    print(f"following {args.data} (threshold {threshold:.3f}; scores to {out}); Ctrl-C to stop",
          flush=True)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "time", "surprise", "alarm", "top_sensors"])
        try:
            while True:
                try:
                    table = _read(model, args.data)
                    n = len(table)
                except DataError:
                    n = 0  # the file may not exist yet or be mid-write; try again next poll
                if n > scored and n >= w:
                    first = max(scored, w - 1)
                    lo = first - (w - 1)
                    acts = table.actions[lo:n] if model.config.actions else None
                    res = model.surprise(table.values[lo:n], acts)
                    smooth, state = ewma(res.raw[first - lo:], model.config.smoothing, state)
                    for i, s in zip(range(first, n), smooth):
                        alarm = bool(s > threshold)
                        groups = ", ".join(g for g, _ in res.top_groups(i - lo)) if alarm else ""
                        writer.writerow([i, "" if table.time is None else table.time[i],
                                         f"{s:.5g}", int(alarm), groups])
                        if alarm:
                            print(f"ALARM row {i}: surprise {s:.2f} > {threshold:.2f} ({groups})",
                                  flush=True)
                    f.flush()
                    scored, last_new = n, time.monotonic()
                elif args.idle_exit and time.monotonic() - last_new > args.idle_exit:
                    break
                time.sleep(args.poll)
        except KeyboardInterrupt:
            pass
    print(f"stopped after {scored} rows", flush=True)
    return 0
