"""``SensorWorldModel``: a trained plant model that scores surprise, raises alarms and explains them.

Surprise at step ``t`` comes from the window of ``L`` steps that *ends* at ``t`` (causal: it
uses nothing after ``t``). The predictor sees every group's earlier patches (and the control
inputs of the whole window) and predicts the latents of the last patch; two things are
measured against statistics of held-out normal data:

* **prediction** — the residual between predicted and encoded latents, standardised per
  (group, latent dimension): the plant did not evolve the way it normally does;
* **novelty** — the encoded latent itself, standardised the same way: the plant is in a
  state it never visited, even if it now evolves smoothly there (a controller that settled
  a fault at a new operating point leaves little prediction error, but a new state).

Each group's part is a Mahalanobis distance (divided by the latent width, so ≈ 1 on normal
data) under a Ledoit–Wolf shrunk covariance fitted per group on normal windows: whitening
matters, since latent dimensions are strongly correlated and a plain sum of squares lets a
few common directions drown the rest. The score is the largest group's (or the mean over
groups, ``SensorModelConfig.aggregate``), smoothed by a causal exponential moving average
(``smoothing``). Per-group contributions say which sensors to look at.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from monde.data.sensor_windows import gather_windows, window_starts
from monde.errors import ConfigError, DataError
from monde.jepa.sensor_model import SCORE_QUANTILES, SensorJEPA


@dataclass
class SurpriseResult:
    """Per-step surprise of a history of ``T`` rows (NaN where no full window ends yet)."""

    scores: np.ndarray
    """``[T]`` surprise after the causal moving average (≈ 1 on normal data)."""
    prediction: np.ndarray
    """``[T]`` prediction part."""
    novelty: np.ndarray
    """``[T]`` novelty part."""
    groups: np.ndarray
    """``[T, G]`` each channel group's contribution to the score."""
    group_names: list[str]
    """Name of every group: its sensor, or ``first…last`` for a group of several."""
    raw: np.ndarray | None = None
    """``[T]`` the score before the moving average."""

    def top_groups(self, t: int, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` groups contributing most at step ``t``, with their contributions."""
        order = np.argsort(-np.nan_to_num(self.groups[t], nan=-np.inf))[:k]
        return [(self.group_names[i], float(self.groups[t, i])) for i in order]


class SensorWorldModel:
    """A trained :class:`SensorJEPA` plus what a plant engineer needs around it."""

    def __init__(self, net: SensorJEPA, meta: dict | None = None):
        self.net = net.eval()
        self.meta = meta or {}
        cfg = net.cfg
        self.sensor_names: list[str] = list(self.meta.get("sensor_names")
                                            or [f"s{i}" for i in range(cfg.channels)])
        self.action_names: list[str] = list(self.meta.get("action_names")
                                            or [f"u{i}" for i in range(cfg.actions)])
        size = net.tokenizer.group_size
        self.group_names = [
            self.sensor_names[g * size] if size == 1 else
            f"{self.sensor_names[g * size]}…{self.sensor_names[min((g + 1) * size, cfg.channels) - 1]}"
            for g in range(net.groups)]

    @property
    def config(self):
        return self.net.cfg

    @property
    def window(self) -> int:
        return self.net.cfg.window

    @property
    def calibrated(self) -> bool:
        return bool(torch.isfinite(self.net.score_quantiles).all())

    def to(self, device) -> SensorWorldModel:
        self.net.to(device)
        return self

    # ------------------------------------------------------------------ checks

    def check_inputs(self, values: np.ndarray, actions: np.ndarray | None) -> np.ndarray | None:
        """Shapes against the model: ``values [T, C]``, ``actions [T, A]`` (or None)."""
        cfg = self.net.cfg
        if values.ndim != 2 or values.shape[1] != cfg.channels:
            raise DataError(f"this model reads {cfg.channels} sensors per row; got an array of "
                            f"shape {values.shape}")
        if cfg.actions:
            if actions is None:
                raise DataError(f"this model was trained with {cfg.actions} control inputs "
                                f"({', '.join(self.action_names[:5])}…); pass them too")
            if actions.shape != (len(values), cfg.actions):
                raise DataError(f"control inputs must be [T={len(values)}, A={cfg.actions}]; "
                                f"got {actions.shape}")
            return actions
        return None

    # ------------------------------------------------------------------ core

    def _batches(self, windows: np.ndarray, batch_size: int):
        """Raw windows ``[N, L, C]``, checked against the model, as ``[b, C, L]`` tensors."""
        windows = np.asarray(windows, dtype=np.float32)
        cfg = self.net.cfg
        if windows.ndim != 3 or windows.shape[1:] != (cfg.window, cfg.channels):
            raise DataError(f"this model encodes windows [N, {cfg.window}, {cfg.channels}]; got "
                            f"{windows.shape}")
        dev = self.net.mean.device
        for i in range(0, len(windows), batch_size):
            yield torch.from_numpy(windows[i:i + batch_size].transpose(0, 2, 1).copy()).to(dev)

    @torch.no_grad()
    def encode(self, windows: np.ndarray, batch_size: int = 512) -> torch.Tensor:
        """Latents of raw windows ``[N, L, C]`` (``L`` = the model's window) → ``[N, G, P, D]``."""
        z = torch.cat([self.net.encode_target(x).cpu() for x in self._batches(windows, batch_size)])
        return z.reshape(len(z), self.net.groups, self.net.cfg.patches, -1)

    @torch.no_grad()
    def far_latents(self, windows: np.ndarray, leads, batch_size: int = 512) -> torch.Tensor:
        """Where the plant is heading: for raw windows ``[N, L, C]``, the predicted latent of
        the window ``d`` rows later, per channel group and pooled over its patches, for every
        ``d`` in ``leads`` → ``[N, len(leads), G, D]``. Needs a model trained with far-future
        targets (``lead > 0``); control inputs are not used (the query is about the drift
        under the current way of running)."""
        if self.net.cfg.lead <= 0:
            raise ConfigError("far-future latents need a model trained with model.lead > 0")
        out = []
        for x in self._batches(windows, batch_size):
            z, pos = self.net.encode(x)
            b, n = z.shape[:2]
            ctx = torch.arange(n, device=z.device).repeat(b, 1)
            none = torch.zeros(b, 0, dtype=torch.long, device=z.device)
            ahead = [torch.full((b,), float(d), device=z.device) for d in leads]
            out.append(torch.stack([self.net.predictor(
                z, ctx, none, pos, far_pos=self.net.far_position(a)) for a in ahead], 1)
                .float().cpu())
        return torch.cat(out)

    @torch.no_grad()
    def last_patch(self, x: torch.Tensor, a: torch.Tensor | None):
        """Predicted and encoded latents of every group's last patch, ``[B, G, D]`` each."""
        g, p = self.net.groups, self.net.cfg.patches
        t = torch.arange(g * p) % p
        ctx = (t < p - 1).nonzero().squeeze(1).repeat(x.shape[0], 1)
        tgt = (t == p - 1).nonzero().squeeze(1).repeat(x.shape[0], 1)
        h = self.net.encode_target(x)[:, tgt[0]]
        return self.net.predict(x, ctx, tgt, a), h

    def _windows(self, values, actions, runs, stride, batch_size):
        """Yield ``(end_rows [B], pred [B,G,D], latent [B,G,D])`` over every window."""
        runs = runs or [slice(0, len(values))]
        starts = window_starts(runs, self.window, stride)
        if not len(starts):
            raise DataError(f"the data has no run of at least {self.window} rows (the model's "
                            f"window); longest run: {max(r.stop - r.start for r in runs)} rows")
        dev = self.net.mean.device
        for i in range(0, len(starts), batch_size):
            s = starts[i:i + batch_size]
            b = gather_windows(values, actions, s, self.window)
            a = b.get("actions")
            pred, h = self.last_patch(b["x"].to(dev), None if a is None else a.to(dev))
            yield s + self.window - 1, pred.cpu(), h.cpu()

    def calibrate(self, values: np.ndarray, actions: np.ndarray | None = None,
                  runs: list[slice] | None = None, stride: int = 1, batch_size: int = 256) -> dict:
        """Fit the normal statistics of residuals and latents, then the score's quantiles.

        ``values [T, C]`` must be *normal* operation the model did not train on (held-out).
        Returns a summary (windows used, score quantiles at 0.5/0.99/0.999).
        """
        actions = self.check_inputs(values, actions)
        batches = list(self._windows(values, actions, runs, stride, batch_size))
        res = torch.cat([pred - h for _, pred, h in batches]).double()
        lat = torch.cat([h for _, _, h in batches]).double()
        if len(res) < 8:
            raise DataError(f"calibration needs at least 8 windows of normal data, got {len(res)}")
        n = self.net
        for x, mean, prec in ((res, n.res_mean, n.res_prec), (lat, n.lat_mean, n.lat_prec)):
            mu = x.mean(0)                                          # [G, D]
            mean.copy_(mu)
            prec.copy_(torch.linalg.inv(ledoit_wolf(x - mu)))       # [G, D, D]
        # Score the same windows with the new statistics (no second pass through the model).
        scores = self._score(len(values), batches, runs).scores
        scores = scores[np.isfinite(scores)]
        levels = np.linspace(0.0, 1.0, SCORE_QUANTILES)
        n.score_quantiles.copy_(torch.from_numpy(np.quantile(scores, levels)).float())
        return {"windows": int(len(res)),
                "score_q50": float(np.quantile(scores, 0.5)),
                "score_q99": float(np.quantile(scores, 0.99)),
                "score_q999": float(np.quantile(scores, 0.999))}

    def _group_scores(self, pred: torch.Tensor, h: torch.Tensor):
        """``[B, G]`` per-group prediction and novelty distances (≈ 1 on normal data)."""
        n, d = self.net, h.shape[-1]

        def maha(x, mean, prec):
            x = x.double() - mean.double()
            return torch.einsum("bgi,gij,bgj->bg", x, prec.double(), x).float() / d

        return maha(pred - h, n.res_mean, n.res_prec), maha(h, n.lat_mean, n.lat_prec)

    def surprise(self, values: np.ndarray, actions: np.ndarray | None = None,
                 runs: list[slice] | None = None, stride: int = 1,
                 batch_size: int = 256) -> SurpriseResult:
        """Per-step surprise of ``values [T, C]`` (raw readings, NaN = missing).

        A step gets a score when a window ends there (every ``stride`` steps, each run on its
        own, the moving average restarting with each run); other steps are NaN. Memory stays
        bounded: windows go through in batches.
        """
        values = np.asarray(values, dtype=np.float32)
        actions = self.check_inputs(values, None if actions is None else
                                    np.asarray(actions, dtype=np.float32))
        return self._score(len(values), self._windows(values, actions, runs, stride, batch_size),
                           runs)

    def _score(self, t: int, batches, runs: list[slice] | None) -> SurpriseResult:
        """Scores of ``t`` rows from ``(end_rows, pred, latent)`` batches of windows."""
        cfg = self.net.cfg
        w_pred = {"prediction": 1.0, "novelty": 0.0, "both": 0.5}[cfg.surprise]
        parts = np.full((2, t), np.nan, dtype=np.float32)
        groups = np.full((t, self.net.groups), np.nan, dtype=np.float32)
        for ends, pred, h in batches:
            zr, zl = self._group_scores(pred, h)
            per_group = w_pred * zr + (1 - w_pred) * zl          # [B, G]
            groups[ends] = per_group.numpy()
            parts[:, ends] = torch.stack([_aggregate(zr, cfg.aggregate),
                                          _aggregate(zl, cfg.aggregate)]).numpy()
        raw = w_pred * parts[0] + (1 - w_pred) * parts[1]
        scores = np.full(t, np.nan, dtype=np.float32)
        for r in runs or [slice(0, t)]:
            scores[r] = ewma(raw[r], cfg.smoothing)[0]
        return SurpriseResult(scores, parts[0], parts[1], groups, self.group_names, raw)

    def forecast(self, values: np.ndarray, horizon: int,
                 actions: np.ndarray | None = None) -> np.ndarray:
        """Readings ``[horizon, C]`` after the history ``values [T, C]``; with control inputs,
        ``actions`` over history (+ future moves): see :func:`monde.jepa.sensor_forecast.forecast`."""
        from monde.jepa.sensor_forecast import forecast

        return forecast(self, values, horizon, actions)

    def threshold(self, false_alarm: float) -> float:
        """The score that normal data exceeds a ``false_alarm`` fraction of the time."""
        if not self.calibrated:
            raise DataError("this model has no calibration on normal data; run `monde sensors "
                            "fit` to the end, or calibrate with model.calibrate(normal_values)")
        if not 0 < false_alarm < 1:
            raise DataError(f"the false-alarm rate must be in (0, 1), got {false_alarm}")
        q = self.net.score_quantiles.numpy()
        return float(np.interp(1 - false_alarm, np.linspace(0, 1, len(q)), q))


def _aggregate(z: torch.Tensor, how: str) -> torch.Tensor:
    return z.amax(-1) if how == "max" else z.mean(-1)


def ewma(x: np.ndarray, alpha: float, state: float | None = None) -> tuple[np.ndarray, float | None]:
    """Causal exponential moving average ``s_t = α x_t + (1 − α) s_{t−1}`` over the finite
    entries of ``x [T]`` (NaN entries stay NaN and do not move the state).

    ``state`` continues a previous call (streaming); returns ``(smoothed [T], last state)``.
    """
    out = np.full(len(x), np.nan, dtype=np.float32)
    for i in np.flatnonzero(np.isfinite(x)):
        state = float(x[i]) if state is None else alpha * float(x[i]) + (1 - alpha) * state
        out[i] = state
    return out, state


def ledoit_wolf(x: torch.Tensor) -> torch.Tensor:
    """Ledoit–Wolf shrunk covariance of centred samples ``x [N, G, D]`` → ``[G, D, D]``.

    ``Σ = (1 − ρ) S + ρ μ I`` with the shrinkage ``ρ`` that minimises the expected Frobenius
    error (Ledoit & Wolf, 2004): with a few hundred windows and 64-wide latents the sample
    covariance ``S`` alone is ill-conditioned, and its inverse would amplify noise.
    """
    n, _, d = x.shape
    s = torch.einsum("ngi,ngj->gij", x, x) / n                       # [G, D, D]
    mu = torch.diagonal(s, dim1=-2, dim2=-1).mean(-1)                 # [G]
    eye = torch.eye(d, dtype=x.dtype)
    delta = ((s - mu[:, None, None] * eye) ** 2).sum((-2, -1))       # ||S − μI||²
    # Σ_k ||x_k x_kᵀ − S||² = Σ_k ||x_k||⁴ − n ||S||²  (expanding the square)
    sq = (x ** 2).sum(-1)                                             # [N, G]
    beta = ((sq ** 2).sum(0) - n * (s ** 2).sum((-2, -1))) / n ** 2
    rho = (torch.minimum(beta, delta) / delta.clamp_min(1e-12)).clamp(0, 1)
    return (1 - rho)[:, None, None] * s + (rho * mu)[:, None, None] * eye
