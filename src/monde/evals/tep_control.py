"""What-if forecasts of a simulated plant: do latent rollouts under given control moves track
the Tennessee Eastman simulator? (protocol ``tep-control``)

A sensor world model trained on closed-loop runs of the simulator
(:mod:`monde.worlds.tep_sim`, recipe ``tep-control``) is given, on *new* runs (other seeds),
the context rows before a time *t* and the plant's 12 valve / agitator moves, and forecasts
the next ``H`` rows (its read-out horizon). Three questions, each answered against the
simulator's own readings:

* **readings**: mean squared error of the forecast in training z-score units (all 41
  channels, all ``H`` rows), with the *recorded* future moves, and with the moves *held* at
  their last value — if the model has learned what the controls do, the recorded moves must
  forecast better, most of all in the windows where the controls move most (the top quarter
  by future control movement, ``moving``);
* **latents**: the predictor's latents of the future patches against the target encoder's
  latents of what then happened (normalised squared error, 1 − R²), same two cases;
* **baselines, same windows**: persistence (every channel stays at its last patch's mean) and
  an ARX ridge — from the context readings and the past *and future* moves (the same
  information as the model) to the future readings, fitted on the model's training runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from monde.data.sensor_windows import gather_windows, window_starts
from monde.errors import ConfigError
from monde.evals.protocol import protocol_record


@dataclass(frozen=True)
class TepControlProtocol:
    """Frozen settings (change them → bump ``version``)."""

    name: str = "tep-control"
    version: int = 2
    """v2 (2026-12-07): the ARX ridge grid reaches down to 1e-4 (v1 stopped at 1e-2, the
    strength it chose)."""
    test_runs: int = 4
    """New closed-loop runs to forecast (seeds ``seed`` … ``seed + test_runs − 1``)."""
    hours: float = 24.0
    """Hours per test run (the simulator settings are otherwise the model's own)."""
    seed: int = 20261207
    stride: int = 4
    """Rows between forecast origins."""
    moving_quantile: float = 0.75
    """Windows whose future control movement is above this quantile are the ``moving`` set."""
    ridge_grid: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


def _origins(runs: list[slice], ctx: int, horizon: int, stride: int) -> np.ndarray:
    """Start rows of context + horizon spans (the forecast origin is ``start + ctx``)."""
    return window_starts(runs, ctx + horizon, stride)


def _arx_features(net, x: torch.Tensor, a: torch.Tensor, ctx: int) -> tuple[torch.Tensor, ...]:
    """ARX inputs ``[B, ctx·C + L·A + 1]`` and the reference ``[B, C, 1]`` (last patch mean,
    z-units) that targets are taken relative to; ``x [B, C, L]`` raw, ``a [B, L, A]`` raw."""
    z = net.normalize(x[:, :, :ctx])
    ref = z[:, :, -net.cfg.patch:].mean(-1, keepdim=True)
    u = (a - net.action_mean) / net.action_std
    f = torch.cat([(z - ref).flatten(1), u.flatten(1), torch.ones_like(z[:, :1, 0])], 1)
    return torch.nan_to_num(f).double(), ref


def fit_arx(net, values, actions, runs, ctx: int, horizon: int, grid) -> tuple[torch.Tensor, float]:
    """Ridge weights ``[F, C·H]`` (strength chosen on the latest tenth of the windows)."""
    starts = _origins(runs, ctx, horizon, 1)
    w = gather_windows(values, actions, starts, ctx + horizon)
    f, ref = _arx_features(net, w["x"], w["actions"], ctx)
    y = torch.nan_to_num(net.normalize(w["x"][:, :, ctx:]) - ref).flatten(1).double()
    cut = np.zeros(len(starts), bool)  # each run's latest tenth of windows picks the strength
    for r in runs:
        inside = np.nonzero((starts >= r.start) & (starts < r.stop))[0]
        cut[inside[int(len(inside) * 0.9):]] = True
    tr, va = torch.from_numpy(~cut), torch.from_numpy(cut)
    xtx, xty = f[tr].T @ f[tr], f[tr].T @ y[tr]
    scale = torch.diagonal(xtx).mean()
    eye = torch.eye(len(xtx), dtype=xtx.dtype)
    eye[-1, -1] = 0
    best = None
    for lam in grid:
        wts = torch.linalg.solve(xtx + lam * scale * eye, xty)
        err = float(((f[va] @ wts - y[va]) ** 2).mean())
        if best is None or err < best[0]:
            best = (err, lam, wts)
    gram = f.T @ f  # refit on every window with the chosen strength
    wts = torch.linalg.solve(gram + best[1] * torch.diagonal(gram).mean() * eye, f.T @ y)
    return wts, best[1]


@torch.no_grad()
def _forecast_errors(wm, x: torch.Tensor, moves: dict[str, torch.Tensor], ctx: int) -> dict:
    """Per-window forecast MSE (z-units) and latent 1 − R² of ``wm`` under each set of
    ``moves [B, L, A]``, for windows ``x [B, C, L]`` (context, then the truth)."""
    from monde.jepa.sensor_forecast import _predict_future, forecast_batch

    net, cfg = wm.net, wm.net.cfg
    hz, k = x.shape[-1] - ctx, cfg.future_patches
    truth = net.normalize(x[:, :, ctx:])
    hist = x[:, :, :ctx].transpose(1, 2).numpy()
    xin = torch.cat([x[:, :, :ctx], torch.full_like(x[:, :, ctx:], float("nan"))], -1)
    target = net.encode_target(x).view(len(x), net.groups, cfg.patches, -1)[:, :, -k:]
    spread = ((target - target.mean(0)) ** 2).sum()
    out = {}
    for name, a in moves.items():
        pred = net.normalize(torch.from_numpy(forecast_batch(wm, hist, hz, a.numpy())).transpose(1, 2))
        out[name] = torch.nan_to_num((pred - truth) ** 2).mean((1, 2)).numpy()
        lat = ((_predict_future(net, xin, a, k) - target) ** 2).sum() / spread
        out[f"latent_{name}"] = round(float(lat), 4)
    return out


@torch.no_grad()
def tep_control_eval(model, train, test, protocol: TepControlProtocol | None = None, *,
                     control: bool = True) -> dict:
    """Score ``model`` (a sensor world model with the plant's 12 control inputs) on ``test``
    runs; ``train`` (its training history: ``values``, ``actions``, ``runs``) fits the ARX
    baseline and, with ``control``, the read-out of the random-init twin
    (``baselines.random_init``). Both are :class:`~monde.worlds.tep_sim.TepHistory`-like."""
    from monde.jepa.sensor_forecast import context_of, horizon_of

    protocol = protocol or TepControlProtocol()
    net, cfg = model.net, model.net.cfg
    if cfg.actions != test.actions.shape[1] or cfg.channels != test.values.shape[1]:
        raise ConfigError(f"tep-control needs a model of the simulated plant ({test.values.shape[1]}"
                          f" sensors, {test.actions.shape[1]} control inputs); this one has "
                          f"{cfg.channels} and {cfg.actions}: train it with `monde train tep-control`")
    if cfg.forecast_horizon not in (0, cfg.future_patches * cfg.patch):
        raise ConfigError("tep-control compares forecasts of the predicted patches: the model's "
                          "forecast_horizon must be 0 (= future_patches × patch)")
    t0 = time.perf_counter()
    ctx, hz = context_of(cfg), horizon_of(cfg)
    starts = _origins(test.runs, ctx, hz, protocol.stride)
    w = gather_windows(test.values, test.actions, starts, ctx + hz)
    x, a = w["x"], w["actions"]
    moves = {"moves": a,  # the recorded moves, and the same held at their last value
             "held": torch.cat([a[:, :ctx], a[:, ctx - 1:ctx].expand(-1, hz, -1)], 1)}
    truth = net.normalize(x[:, :, ctx:])                                       # [B, C, H]
    mine = _forecast_errors(model, x, moves, ctx)
    last = net.normalize(x[:, :, ctx - cfg.patch:ctx]).nanmean(-1, keepdim=True)
    errs = {"persistence": torch.nan_to_num((last - truth) ** 2).mean((1, 2)).numpy()}
    wts, lam = fit_arx(net, train.values, train.actions, train.runs, ctx, hz, protocol.ridge_grid)
    f, ref = _arx_features(net, x, a, ctx)
    arx = (f @ wts).float().view(len(x), cfg.channels, hz) + ref
    errs["arx"] = torch.nan_to_num((arx - truth) ** 2).mean((1, 2)).numpy()

    u = (a - net.action_mean) / net.action_std
    movement = (u[:, ctx:] - u[:, ctx - 1:ctx]).abs().mean((1, 2)).numpy()
    moving = movement >= np.quantile(movement, protocol.moving_quantile)

    def row(e: np.ndarray) -> dict:
        return {"mse": round(float(e.mean()), 4), "mse_moving": round(float(e[moving].mean()), 4)}

    def report(r: dict) -> dict:
        return {"moves": row(r["moves"]), "held": row(r["held"]),
                "latent_nmse": {"moves": r["latent_moves"], "held": r["latent_held"]},
                "moves_better_than_held": round(float(np.mean(r["moves"] < r["held"])), 4)}

    baselines = {"persistence": row(errs["persistence"]),
                 "arx_ridge": {**row(errs["arx"]), "ridge": lam}}
    if control:
        from monde.evals.plant import random_twin

        twin, _ = random_twin(model, train.values, train.actions, train.runs)
        baselines["random_init"] = report(_forecast_errors(twin, x, moves, ctx))
    return {
        "protocol": protocol_record(protocol),
        "windows": int(len(x)), "moving_windows": int(moving.sum()),
        "context_rows": ctx, "horizon_rows": hz,
        "test_shutdowns": int(getattr(test, "shutdowns", 0)),
        "monde": report(mine), "baselines": baselines,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def evaluate_run(model, out, protocol: TepControlProtocol | None = None) -> dict:
    """:func:`tep_control_eval` of the model in run folder ``out``: its training runs are
    read from the simulator cache, or simulated again from the run's saved config
    (deterministic for the seeds), for the ARX baseline and the random-init control; the test
    runs are the protocol's."""
    import json
    from dataclasses import replace
    from pathlib import Path

    from monde.config import from_dict
    from monde.recipes.sensors import SensorDataConfig, load_history
    from monde.worlds.tep_sim import simulate

    run_file = Path(out) / "run.json"
    if not run_file.is_file():
        raise ConfigError(f"{out} has no run.json (the training run's config): tep-control "
                          "simulates the model's training runs again for its baselines")
    data = from_dict(SensorDataConfig, json.loads(run_file.read_text())["data"], where="data")
    if data.source != "tep-sim":
        raise ConfigError(f"{out} was not trained on the simulated plant (data.source="
                          f"{data.source!r}); train one with `monde train tep-control`")
    protocol = protocol or TepControlProtocol()
    test = simulate(replace(data.tep_sim, hours=protocol.hours), protocol.test_runs,
                    protocol.seed)
    return tep_control_eval(model, load_history(data), test, protocol)


def summary(r: dict) -> str:
    """The human lines of a :func:`tep_control_eval` result."""
    m, b = r["monde"], r["baselines"]
    rows = [("monde, recorded moves", m["moves"]), ("monde, moves held", m["held"])]
    if "random_init" in b:
        rows += [("random-init twin, recorded", b["random_init"]["moves"]),
                 ("random-init twin, held", b["random_init"]["held"])]
    rows += [("ARX ridge (same inputs)", b["arx_ridge"]), ("persistence", b["persistence"])]
    p = r["protocol"]
    return (f"Tennessee Eastman what-if forecasts ({p['name']} v{p['version']}; {r['windows']} "
            f"windows of {p['settings']['test_runs']} new runs, next {r['horizon_rows']} rows "
            f"from {r['context_rows']}), MSE in z-units, all windows / the quarter where the "
            "controls move most:\n"
            + "\n".join(f"  {n:<28} {v['mse']:.4f} / {v['mse_moving']:.4f}" for n, v in rows)
            + "\n  latents of the future patches, 1 - R²: recorded moves "
            f"{m['latent_nmse']['moves']:.3f}, held {m['latent_nmse']['held']:.3f}")
