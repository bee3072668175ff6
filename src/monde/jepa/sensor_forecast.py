"""Forecasting with a sensor world model: predict future latents, read them out as readings.

The predictor was trained to fill in the last ``k`` time patches of a window from the earlier
ones (``FutureSteps`` masks). To forecast, the history's last ``L − k·patch`` rows become the
context, the ``k`` future patches are left missing (NaN: the tokenizer masks them, and they
are targets anyway), and the predicted latents of those patches are decoded to readings by a
**linear probe on frozen latents** (relative to each channel's last reading) — a ridge map per channel group, fitted once after
training on the model's own predictions for training windows. Horizons beyond ``k`` patches
roll forward: the decoded patches are appended to the history and the step repeats.

Control inputs of the future (``actions``) are what-if moves: the predictor reads them as
action tokens, so different moves give different forecasts. Without them the last known
control inputs are held.
"""

from __future__ import annotations

import numpy as np
import torch

from monde.data.sensor_windows import gather_windows, window_starts
from monde.errors import DataError


def _future_indices(groups: int, patches: int, k: int, batch: int):
    t = torch.arange(groups * patches) % patches
    ctx = (t < patches - k).nonzero().squeeze(1).repeat(batch, 1)
    tgt = (t >= patches - k).nonzero().squeeze(1).repeat(batch, 1)
    return ctx, tgt


@torch.no_grad()
def _predict_future(net, x: torch.Tensor, a: torch.Tensor | None, k: int) -> torch.Tensor:
    """Predicted latents of the last ``k`` patches, ``[B, G, k, D]``."""
    ctx, tgt = _future_indices(net.groups, net.cfg.patches, k, x.shape[0])
    pred = net.predict(x, ctx, tgt, a)                       # [B, G·k, D]
    return pred.reshape(x.shape[0], net.groups, k, -1)


def _group_values(net, z: torch.Tensor) -> torch.Tensor:
    """z-scored readings ``[B, C, k·p]`` → per group and patch ``[B, G, k, S·p]``."""
    b, c, length = z.shape
    s, p = net.tokenizer.group_size, net.cfg.patch
    pad = net.groups * s - c
    if pad:
        z = torch.nn.functional.pad(z, (0, 0, 0, pad))
    z = z.reshape(b, net.groups, s, length // p, p)
    return z.permute(0, 1, 3, 2, 4).reshape(b, net.groups, length // p, s * p)


def _last_value(net, x: torch.Tensor) -> torch.Tensor:
    """``[B, C, 1]`` z-scored last reading of every channel in the context (0 if missing).

    The read-out predicts the future *relative to it* (as NLinear does): a plant or a grid that
    settles at a level it never held in training is still forecast from where it is now.
    """
    return torch.nan_to_num(net.normalize(x[:, :, -1:]))


def fit_decoder(wm, values: np.ndarray, actions: np.ndarray | None, runs: list[slice],
                max_windows: int = 4096, ridge: float = 1.0, seed: int = 0) -> dict:
    """Fit the read-out from predicted future latents to readings on (training) windows.

    Returns ``{"windows", "mse"}``: the read-out's in-sample error on z-scored readings.
    """
    net, k = wm.net, wm.net.cfg.future_patches
    starts = window_starts(runs, net.cfg.window)
    if len(starts) > max_windows:
        starts = np.sort(np.random.default_rng(seed).choice(starts, max_windows, replace=False))
    feats, targets = [], []
    for i in range(0, len(starts), 256):
        b = gather_windows(values, actions, starts[i:i + 256], net.cfg.window)
        x, a = b["x"], b.get("actions")
        feats.append(_predict_future(net, x, a, k).float())
        ctx_len = net.cfg.window - k * net.cfg.patch
        last = _last_value(net, x[:, :, :ctx_len])
        z = torch.nan_to_num(net.normalize(x[:, :, ctx_len:]) - last)
        targets.append(_group_values(net, z))
    f, y = torch.cat(feats).double(), torch.cat(targets).double()   # [N,G,k,D], [N,G,k,S·p]
    g, d = net.groups, f.shape[-1]
    f = torch.cat([f, torch.ones_like(f[..., :1])], -1).permute(1, 0, 2, 3).reshape(g, -1, d + 1)
    y = y.permute(1, 0, 2, 3).reshape(g, -1, y.shape[-1])
    eye = torch.eye(d + 1, dtype=f.dtype)
    eye[-1, -1] = 0  # the bias is not shrunk
    w = torch.linalg.solve(f.transpose(1, 2) @ f + ridge * eye, f.transpose(1, 2) @ y)
    net.decoder.copy_(w.float())
    net.decoder_ready.fill_(1.0)
    return {"windows": int(len(starts)), "mse": float(((f @ w - y) ** 2).mean())}


@torch.no_grad()
def forecast(wm, values: np.ndarray, horizon: int, actions: np.ndarray | None = None) -> np.ndarray:
    """Forecast ``horizon`` rows after the history ``values [T, C]`` (raw readings).

    Args:
        values: ``[T, C]`` with ``T >= window − future_patches·patch`` (the context).
        actions: control inputs, for models that have them: ``[T + horizon, A]`` over history
            and future (what-if moves), or ``[T, A]`` to hold the last known ones.

    Returns:
        ``[horizon, C]`` forecast readings.
    """
    net = wm.net
    cfg = net.cfg
    if not bool(net.decoder_ready):
        raise DataError("this model has no forecast read-out; refit it with `monde sensors fit`")
    ctx_len = cfg.window - cfg.future_patches * cfg.patch
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2 or values.shape[1] != cfg.channels:
        raise DataError(f"this model reads {cfg.channels} sensors per row; got {values.shape}")
    if len(values) < ctx_len:
        raise DataError(f"forecasting needs at least {ctx_len} rows of history, got {len(values)}")
    if cfg.actions:
        if actions is None:
            raise DataError(f"this model was trained with {cfg.actions} control inputs: pass "
                            "the history's (held over the future) or history's and future's")
        actions = np.asarray(actions, dtype=np.float32)
        if actions.ndim == 2 and len(actions) == len(values):
            actions = np.concatenate([actions, np.repeat(actions[-1:], horizon, 0)])
        if actions.shape != (len(values) + horizon, cfg.actions):
            raise DataError(f"actions must be [T={len(values)}, {cfg.actions}] (held over the "
                            f"future) or [T + horizon={len(values) + horizon}, {cfg.actions}]; "
                            f"got {actions.shape}")
    acts = None if actions is None else actions[len(values) - ctx_len:][None]
    return forecast_batch(wm, values[-ctx_len:][None], horizon, acts)[0]


@torch.no_grad()
def forecast_batch(wm, histories: np.ndarray, horizon: int,
                   actions: np.ndarray | None = None) -> np.ndarray:
    """Many forecasts at once: ``histories [B, L − k·patch, C]`` (exactly the context length)
    and ``actions [B, L − k·patch + horizon, A]`` → ``[B, horizon, C]``."""
    net = wm.net
    cfg = net.cfg
    k, p = cfg.future_patches, cfg.patch
    step, ctx_len = k * p, cfg.window - k * p
    b, c = histories.shape[0], cfg.channels
    hist = np.asarray(histories, dtype=np.float32)
    dev = net.mean.device
    out, done = [], 0
    while done < horizon:
        x = np.concatenate([hist[:, -ctx_len:], np.full((b, step, c), np.nan, np.float32)], 1)
        a = None
        if actions is not None:
            a = actions[:, done:done + cfg.window]
            if a.shape[1] < cfg.window:  # past the given future: hold the last move
                a = np.concatenate([a, np.repeat(a[:, -1:], cfg.window - a.shape[1], 1)], 1)
            a = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(dev)
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1))).to(dev)
        lat = _predict_future(net, xt, a, k).double()                      # [B, G, k, D]
        lat = torch.cat([lat, torch.ones_like(lat[..., :1])], -1)
        z = torch.einsum("bgkd,gdo->bgko", lat, net.decoder.double())      # [B, G, k, S·p]
        s = net.tokenizer.group_size
        z = z.reshape(b, net.groups, k, s, p).permute(0, 1, 3, 2, 4).reshape(b, -1, k * p)
        z = z[:, :c].float() + _last_value(net, xt[:, :, :ctx_len])
        z = z * net.std[:, None] + net.mean[:, None]                       # [B, C, k·p]
        pred = z.transpose(1, 2).cpu().numpy()
        out.append(pred)
        hist = np.concatenate([hist, pred], 1)
        done += step
    return np.concatenate(out, 1)[:, :horizon]
