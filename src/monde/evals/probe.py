"""Linear probes of frozen features on the bouncing-balls world.

Does the encoder know where the balls are and how they move? We encode clips with the frozen
encoder, keep one feature vector per temporal token slot (the spatial token grid average-pooled
to ``pool × pool`` cells and concatenated, so features cannot grow with resolution), and fit a
ridge regression to the balls' true positions and velocities averaged over the frames of that
slot. R² is measured on held-out clips; the ridge strength is chosen on a validation split of
the training clips. The same protocol is run on a randomly initialised copy of the encoder in
the same call, so the comparison needs no other run.

With ``attentive`` settings, an attentive probe (V-JEPA's evaluation head,
:mod:`monde.evals.attentive_probe`) also reads every token of a clip, with absolute positions
added, and regresses all slots' positions and velocities at once — a probe that is free to
find the balls wherever the encoder put them, rather than in fixed pooled cells.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from monde.evals.protocol import protocol_record
from monde.worlds.balls import BallsConfig, BouncingBalls


@dataclass(frozen=True)
class BallsProbeProtocol:
    """Frozen settings of the balls linear probe (change them → bump ``version``)."""

    name: str = "balls-linear-probe"
    version: int = 2  # v2: adds R² of hidden balls' positions
    train_clips: int = 1024
    test_clips: int = 512
    seed: int = 20261128
    pool: int = 2
    ridge_grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
    val_fraction: float = 0.2


@dataclass(frozen=True)
class MapReader:
    """How the probe reads one encoder family: clips → a latent map per temporal slot.

    ``maps(video [B, T, C, H, W]) → [B, T', D, h, w]`` float32; a slot covers ``tubelet``
    frames (2 for the masked ViT's tubelets, 1 for a frame-causal model's per-frame maps).
    """

    maps: Callable[[torch.Tensor], torch.Tensor]
    tubelet: int


def map_reader(encoder) -> MapReader:
    """A :class:`MapReader` for a masked-JEPA :class:`~monde.jepa.networks.Encoder` or a
    frame-causal :class:`~monde.jepa.causal_video.CausalVideoJEPA`."""
    from monde.jepa.causal_video import CausalVideoJEPA

    if isinstance(encoder, CausalVideoJEPA):
        return MapReader(lambda v: encoder.encode(v).float(), tubelet=1)
    c = encoder.cfg
    t_, h_, w_ = c.frames // c.tubelet, c.height // c.patch, c.width // c.patch

    def maps(video: torch.Tensor) -> torch.Tensor:
        z = encoder.encode(video).float()  # [B, N, D], tokens in (T', H', W') order
        return z.view(z.shape[0], t_, h_, w_, -1).permute(0, 1, 4, 2, 3)

    return MapReader(maps, c.tubelet)


@torch.no_grad()
def clip_maps(reader: MapReader, video: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """``video [B, T, C, H, W]`` → every slot's map ``[B, T', D, h, w]`` float32."""
    return torch.cat([reader.maps(video[i:i + batch]) for i in range(0, video.shape[0], batch)])


def slot_features(maps: torch.Tensor, pool: int) -> torch.Tensor:
    """Per-temporal-slot features: ``maps [B, T', D, h, w]`` average-pooled to ``pool × pool``
    cells and concatenated → ``[B, T', pool * pool * D]``."""
    b, t = maps.shape[:2]
    z = torch.nn.functional.adaptive_avg_pool2d(maps.flatten(0, 1), pool)
    return z.reshape(b, t, -1)


def map_tokens(maps: torch.Tensor) -> torch.Tensor:
    """Every cell of every slot as a token: ``[B, T', D, h, w]`` → ``[B, T'·h·w, D]``."""
    return maps.permute(0, 1, 3, 4, 2).flatten(1, 3)


def slot_targets(state: np.ndarray, tubelet: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities per temporal slot: ``state [B, T, K, 4]`` → two ``[B, T', 2K]``."""
    b, t, k, _ = state.shape
    s = state.reshape(b, t // tubelet, tubelet, k, 4).mean(axis=2)
    return s[..., :2].reshape(b, t // tubelet, 2 * k), s[..., 2:].reshape(b, t // tubelet, 2 * k)


def ridge_fit(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge regression on standardised features: returns (weights, x_mean, x_std)."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xs = (x - mu) / sd
    y_mu = y.mean(0)
    n, f = xs.shape
    # Solve in whichever space is smaller (primal f×f or dual n×n): same solution.
    if f <= n:
        w = np.linalg.solve(xs.T @ xs + lam * n * np.eye(f), xs.T @ (y - y_mu))
    else:
        w = xs.T @ np.linalg.solve(xs @ xs.T + lam * n * np.eye(n), y - y_mu)
    return np.vstack([w, y_mu[None]]), mu, sd


def ridge_predict(model, x: np.ndarray) -> np.ndarray:
    w, mu, sd = model
    return ((x - mu) / sd) @ w[:-1] + w[-1]


def r2_score(y: np.ndarray, y_hat: np.ndarray) -> float:
    """Coefficient of determination averaged over target columns."""
    ss_res = ((y - y_hat) ** 2).sum(0)
    ss_tot = ((y - y.mean(0)) ** 2).sum(0) + 1e-12
    return float(np.mean(1.0 - ss_res / ss_tot))


def _fit_predict(xtr, ytr, xte, protocol: BallsProbeProtocol) -> np.ndarray:
    """Choose the ridge strength on a validation split, refit on all training rows, predict."""
    n_val = int(len(xtr) * protocol.val_fraction)
    best = max(protocol.ridge_grid, key=lambda lam: r2_score(
        ytr[:n_val], ridge_predict(ridge_fit(xtr[n_val:], ytr[n_val:], lam), xtr[:n_val])))
    return ridge_predict(ridge_fit(xtr, ytr, best), xte)


def hidden_r2(y: np.ndarray, y_hat: np.ndarray, hidden: np.ndarray) -> float:
    """R² of positions restricted to balls hidden behind an occluder.

    Args:
        y, y_hat: ``[M, 2K]`` true and predicted (x, y) per ball.
        hidden: bool ``[M, K]``, ball k hidden during the whole slot.

    Returns:
        ``1 − SS_res / SS_tot`` pooled over the hidden (row, ball, axis) entries, or NaN when no
        ball is hidden. Pixels say nothing about where these balls are: only a model of motion
        (or of object permanence) can.
    """
    mask = np.repeat(hidden, 2, axis=1)
    if mask.sum() < 2:
        return float("nan")
    yt, yp = y[mask], y_hat[mask]
    cols = np.broadcast_to(np.arange(y.shape[1]), y.shape)[mask]
    means = np.array([y[:, c][mask[:, c]].mean() if mask[:, c].any() else 0.0
                      for c in range(y.shape[1])])
    return float(1.0 - ((yt - yp) ** 2).sum() / (((yt - means[cols]) ** 2).sum() + 1e-12))


def fit_heads(cfg, dim: int, axes: int):
    """``cfg`` with as many of its heads as tokens of width ``dim`` allow: a head needs at
    least one rotary channel pair per position axis (a frame-causal map has only 16 channels,
    where the ViT has 128)."""
    from dataclasses import replace

    heads = cfg.heads
    while heads > 1 and (dim % heads or dim // heads < 2 * axes):
        heads -= 1
    return cfg if heads == cfg.heads else replace(cfg, heads=heads)


def attentive_r2(xtr: torch.Tensor, ytr: np.ndarray, xte: torch.Tensor, yte: np.ndarray,
                 grid: tuple[int, int, int], cfg) -> float:
    """R² of an attentive regression probe on tokens ``[B, N, D]`` for targets ``[B, K]``
    (targets standardised on the training clips)."""
    from monde.evals.attentive_probe import fit_attentive_probe, predict_scores
    from monde.nn import grid_positions

    pos = grid_positions(grid)
    cfg = fit_heads(cfg, xtr.shape[-1], pos.shape[-1])
    mu, sd = ytr.mean(0), ytr.std(0) + 1e-6
    probe = fit_attentive_probe(xtr, (ytr - mu) / sd, pos, 0, cfg)
    return r2_score(yte, predict_scores(probe, xte, pos) * sd + mu)


def probe_encoder(encoder, balls: BallsConfig, protocol: BallsProbeProtocol,
                  attentive=None) -> dict:
    """R² of positions and velocities for one encoder (frozen, eval mode).

    ``encoder``: a masked-JEPA :class:`~monde.jepa.networks.Encoder` or a frame-causal
    :class:`~monde.jepa.causal_video.CausalVideoJEPA` (see :func:`map_reader`).
    ``attentive``: a :class:`~monde.evals.attentive_probe.ProbeConfig` to also fit attentive
    probes (keys ``attentive_r2_position`` / ``attentive_r2_velocity``); None skips them.
    """
    reader = map_reader(encoder)
    world = BouncingBalls(balls)
    data, tokens, whole = {}, {}, {}
    for split, n, seed in [("train", protocol.train_clips, protocol.seed),
                           ("test", protocol.test_clips, protocol.seed + 1)]:
        clips = world.sample(n, np.random.default_rng(seed))
        video = torch.from_numpy(clips.video).float().div_(255.0)
        maps = clip_maps(reader, video)
        grid = (maps.shape[1], *maps.shape[-2:])
        feats = slot_features(maps, protocol.pool).numpy()
        pos, vel = slot_targets(clips.state, reader.tubelet)
        if attentive is not None:  # one row per clip: every slot's targets at once
            tokens[split] = map_tokens(maps)
            whole[split] = (pos.reshape(n, -1), vel.reshape(n, -1))
        b, t = clips.visible.shape[:2]
        hidden = ~clips.visible.reshape(b, t // reader.tubelet, reader.tubelet, -1).any(2)
        data[split] = (feats.reshape(-1, feats.shape[-1]), pos.reshape(-1, pos.shape[-1]),
                       vel.reshape(-1, vel.shape[-1]), hidden.reshape(-1, hidden.shape[-1]))
    (xtr, ptr, vtr, _), (xte, pte, vte, hte) = data["train"], data["test"]
    pos_hat = _fit_predict(xtr, ptr, xte, protocol)
    out = {"r2_position": r2_score(pte, pos_hat),
           "r2_velocity": r2_score(vte, _fit_predict(xtr, vtr, xte, protocol)),
           "r2_position_hidden": hidden_r2(pte, pos_hat, hte),
           "hidden_fraction": float(hte.mean())}
    if attentive is not None:
        for i, what in enumerate(("position", "velocity")):
            out[f"attentive_r2_{what}"] = attentive_r2(
                tokens["train"], whole["train"][i], tokens["test"], whole["test"][i], grid,
                attentive)
    return out


def run_probe(model, protocol: BallsProbeProtocol | None = None, attentive=None) -> dict:
    """Probe a trained video model of the balls world and its random-init twin.

    ``model``: a :class:`~monde.jepa.world_model.WorldModel` (masked JEPA) or a
    :class:`~monde.jepa.causal_video_world_model.CausalVideoWorldModel`, as ``monde.load``
    returns them. The twin is the same architecture initialised with the protocol's seed.
    ``attentive``: a :class:`~monde.evals.attentive_probe.ProbeConfig` to add attentive
    probes to both (a few minutes more on a CPU).
    """
    from monde.config import from_dict
    from monde.errors import ConfigError
    from monde.jepa.causal_video import CausalVideoJEPA
    from monde.jepa.causal_video_world_model import CausalVideoWorldModel
    from monde.jepa.networks import Encoder

    protocol = protocol or BallsProbeProtocol()
    data = model.meta.get("data", {})
    if getattr(model, "modality", None) != "video" or data.get("source", "balls") != "balls":
        raise ConfigError("monde probe reads ball positions from the bouncing-balls world: it "
                          "needs a video model trained on it (e.g. monde train "
                          "video-physics-tiny), not one trained on "
                          f"{data.get('source') or getattr(model, 'modality', '?')!r} data")
    t0 = time.perf_counter()
    balls_cfg = from_dict(BallsConfig, data.get("balls", {}), where="balls")
    torch.manual_seed(protocol.seed)
    if isinstance(model, CausalVideoWorldModel):
        trained_enc = model.jepa.eval()
        random_enc = CausalVideoJEPA(model.config, seed=protocol.seed).eval()
    else:
        trained_enc = model.encoder.eval()
        random_enc = Encoder(model.config.encoder).eval()
    trained = probe_encoder(trained_enc, balls_cfg, protocol, attentive)
    baseline = probe_encoder(random_enc, balls_cfg, protocol, attentive)
    out = {"protocol": protocol_record(protocol), "trained": trained, "random_init": baseline,
           "seconds": round(time.perf_counter() - t0, 1)}
    if attentive is not None:
        from dataclasses import asdict

        out["attentive_probe"] = asdict(attentive)
    return out
