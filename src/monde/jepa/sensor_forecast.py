"""Forecasting with a sensor world model: predict future latents, read them out as readings.

The predictor was trained to fill in the last ``k`` time patches of a window from the earlier
ones (``FutureSteps`` masks). To forecast, the history's last ``L − k·patch`` rows become the
context and the ``k`` future patches are left missing (NaN: the tokenizer masks them). A
**linear probe on frozen latents** — per channel group, ridge regression from the group's
encoded context latents and predicted future latents — reads out the next ``H`` readings
(``SensorModelConfig.forecast_horizon``, any length: the probe is fitted on the data's own
future rows, not limited to the window), relative to each channel's level over the last
patch (or, with ``instance_norm``, in units of the context's own mean and spread). It is
fitted once after training, its ridge strength chosen on the latest tenth of the fitting
windows. Horizons beyond ``H`` roll forward: the forecast is appended to the
history and the step repeats.

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


def _reference(net, ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(offset, scale)``, each ``[B, C, 1]``, in z-score units: the read-out predicts
    ``(future − offset) / scale`` for context readings ``ctx [B, C, context]``.

    With ``instance_norm`` they are the context's own mean and standard deviation (what the
    encoder divided out). Otherwise the offset is every channel's mean over the context's last
    patch (0 if missing) and the scale 1, as NLinear does with the last reading: a plant or a
    grid that settles at a level it never held in training is still forecast from where it is
    now. A patch mean rather than the last reading, whose noise would go into every step.
    """
    if net.cfg.instance_norm:
        return net.context_stats(net.normalize(ctx))
    z = net.normalize(ctx[:, :, -net.cfg.patch:])
    obs = torch.isfinite(z)
    total = torch.where(obs, z, torch.zeros((), dtype=z.dtype)).sum(-1, keepdim=True)
    return total / obs.sum(-1, keepdim=True).clamp_min(1), torch.ones_like(total)


def horizon_of(cfg) -> int:
    """Rows the read-out forecasts in one step."""
    return cfg.forecast_horizon or cfg.future_patches * cfg.patch


def context_of(cfg) -> int:
    """Rows of history a forecast reads."""
    return cfg.window - cfg.future_patches * cfg.patch


@torch.no_grad()
def _features(net, ctx: torch.Tensor, a: torch.Tensor | None):
    """Read-out features ``[B, G, P·D + S + 1]`` of context readings ``ctx [B, C, ctx_len]``:
    every group's encoded context latents, its predicted future latents, its channels' last
    readings relative to the reference (so the probe can weigh the newest reading), a bias.
    Returned with the reference ``(offset, scale)`` (see ``_reference``) the read-out's
    targets and forecasts are expressed against."""
    cfg, k = net.cfg, net.cfg.future_patches
    b, c, _ = ctx.shape
    x = torch.cat([ctx, ctx.new_full((b, c, k * cfg.patch), float("nan"))], -1)
    fut = _predict_future(net, x, a, k)                                     # [B, G, k, D]
    h = net.encode_target(x).reshape(b, net.groups, cfg.patches, -1)[:, :, :-k]
    off, scale = _reference(net, ctx)
    last = torch.nan_to_num((net.normalize(ctx[:, :, -1:]) - off) / scale)
    f = torch.cat([h.flatten(2), fut.flatten(2), _grouped(net, last)], -1).double()
    return torch.cat([f, torch.ones_like(f[..., :1])], -1), off, scale


def _grouped(net, z: torch.Tensor) -> torch.Tensor:
    """``[B, C, H]`` → ``[B, G, S·H]`` (channels of a group side by side, padded with zeros)."""
    b, c, length = z.shape
    pad = net.groups * net.tokenizer.group_size - c
    if pad:
        z = torch.nn.functional.pad(z, (0, 0, 0, pad))
    return z.reshape(b, net.groups, -1)


def _ungrouped(net, y: torch.Tensor, horizon: int) -> torch.Tensor:
    """``[B, G, S·H]`` → ``[B, C, H]``."""
    return y.reshape(y.shape[0], -1, horizon)[:, :net.cfg.channels]


def fit_decoder(wm, values: np.ndarray, actions: np.ndarray | None, runs: list[slice],
                max_windows: int = 16384, seed: int = 0) -> dict:
    """Fit the forecast read-out on a (training) history; returns what it chose and its error.

    Windows are drawn from every run where the context and the next ``H`` rows exist; the
    latest tenth of them (by start row) chooses the ridge strength.
    """
    net = wm.net
    cfg = net.cfg
    ctx_len, hz = context_of(cfg), horizon_of(cfg)
    span = max(cfg.window, ctx_len + hz)
    starts = window_starts(runs, span)
    if len(starts) < 20:
        raise DataError(f"fitting the forecast read-out needs runs of at least {span} rows "
                        f"(context {ctx_len} + horizon {hz}); the data has {len(starts)} such windows")
    if len(starts) > max_windows:
        starts = np.sort(np.random.default_rng(seed).choice(starts, max_windows, replace=False))
    cut = int(len(starts) * 0.9)
    xtx = xty = None
    held = []
    for i in range(0, len(starts), 256):
        s = starts[i:i + 256]
        w = gather_windows(values, actions, s, span)
        x, a = w["x"], w.get("actions")
        ctx = x[:, :, :ctx_len]
        f, off, scale = _features(net, ctx, None if a is None else a[:, :cfg.window])  # [B, G, F]
        y = (net.normalize(x[:, :, ctx_len:ctx_len + hz]) - off) / scale
        y = _grouped(net, torch.nan_to_num(y)).double()                          # [B, G, S·H]
        for j, (fj, yj) in enumerate(zip(f, y)):
            if i + j >= cut:
                held.append((fj, yj))
        tr = slice(0, max(0, min(len(s), cut - i)))
        ft, yt = f[tr].transpose(0, 1), y[tr].transpose(0, 1)                   # [G, b, F]
        xtx_b, xty_b = ft.transpose(1, 2) @ ft, ft.transpose(1, 2) @ yt
        xtx = xtx_b if xtx is None else xtx + xtx_b
        xty = xty_b if xty is None else xty + xty_b
    fh = torch.stack([f for f, _ in held], 1)                                  # [G, n, F]
    yh = torch.stack([y for _, y in held], 1)
    scale = torch.diagonal(xtx, dim1=-2, dim2=-1).mean(-1)[:, None, None]
    eye = torch.eye(xtx.shape[-1], dtype=xtx.dtype)
    eye[-1, -1] = 0  # the bias is not shrunk
    best = None
    for lam in (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0):
        # Cholesky: the system is symmetric positive definite, and batched LU solves with
        # hundreds of right-hand sides stall in some MKL builds (torch 2.13 CPU, 7×1730²).
        w = torch.cholesky_solve(xty, torch.linalg.cholesky(xtx + lam * scale * eye))
        err = float(((fh @ w - yh) ** 2).mean())  # [G, n, F] @ [G, F, O]: per group
        if best is None or err < best[0]:
            best = (err, lam, w)
    net.decoder.copy_(best[2].float())
    net.decoder_ready.fill_(1.0)
    return {"windows": int(len(starts)), "ridge": best[1], "held_out_mse": best[0],
            "horizon": hz}


@torch.no_grad()
def forecast(wm, values: np.ndarray, horizon: int, actions: np.ndarray | None = None) -> np.ndarray:
    """Forecast ``horizon`` rows after the history ``values [T, C]`` (raw readings).

    Args:
        values: ``[T, C]`` with ``T >=`` the model's context (``window − future_patches·patch``).
        actions: control inputs, for models that have them: ``[T + horizon, A]`` over history
            and future (what-if moves), or ``[T, A]`` to hold the last known ones.

    Returns:
        ``[horizon, C]`` forecast readings.
    """
    cfg = wm.net.cfg
    if not bool(wm.net.decoder_ready):
        raise DataError("this model has no forecast read-out; refit it with `monde sensors fit`")
    ctx_len = context_of(cfg)
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
    """Many forecasts at once: ``histories [B, ≥ context, C]`` (the last context rows are
    read) and ``actions [B, context + horizon, A]`` → ``[B, horizon, C]``."""
    net = wm.net
    cfg = net.cfg
    ctx_len, hz = context_of(cfg), horizon_of(cfg)
    hist = np.asarray(histories, dtype=np.float32)
    dev = net.mean.device
    out, done = [], 0
    while done < horizon:
        ctx = torch.from_numpy(np.ascontiguousarray(hist[:, -ctx_len:].transpose(0, 2, 1))).to(dev)
        a = None
        if actions is not None:
            a = actions[:, done:done + cfg.window]
            if a.shape[1] < cfg.window:  # past the given future: hold the last move
                a = np.concatenate([a, np.repeat(a[:, -1:], cfg.window - a.shape[1], 1)], 1)
            a = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(dev)
        f, off, scale = _features(net, ctx, a)
        y = torch.einsum("bgf,gfo->bgo", f, net.decoder.double())
        z = _ungrouped(net, y.float(), hz) * scale + off                         # [B, C, H]
        pred = (z * net.std[:, None] + net.mean[:, None]).transpose(1, 2).cpu().numpy()
        out.append(pred)
        hist = np.concatenate([hist, pred], 1)
        done += hz
    return np.concatenate(out, 1)[:, :horizon]
