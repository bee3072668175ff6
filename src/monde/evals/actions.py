"""Recognise the current action and anticipate the next one, from frozen video features.

Frozen protocol over :mod:`monde.worlds.manipulation` (an agent performing actions from a
grammar). With the encoder frozen, an attentive probe

* **recognises** the action of a clip of ``W`` frames (the model's window) from the
  encoder's tokens;
* **anticipates** the next action from a clip of ``context`` frames that ends just before it
  starts: the predictor forecasts the latents of the following frames (no pixels of the
  future are seen), and the probe reads the observed plus forecast tokens.

Both are compared with the same probe on a randomly initialised model of the same shape.
Metrics: top-1 accuracy and mean-class recall@5 (Epic-Kitchens' anticipation metric).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from monde.errors import ConfigError
from monde.evals.attentive_probe import (
    ProbeConfig,
    class_metrics,
    fit_attentive_probe,
    predict_scores,
    standardise_tokens,
)
from monde.evals.protocol import protocol_record
from monde.jepa.masks import CausalFuture
from monde.nn import grid_positions


@dataclass(frozen=True)
class ActionsProtocol:
    """Episodes, seeds and probe settings of the action evaluation."""

    name: str = "manipulation-actions"
    version: int = 1
    train_episodes: int = 256
    """Episodes whose clips train the probes."""
    test_episodes: int = 128
    """Held-out episodes (another seed) whose clips are scored."""
    seed: int = 20261130
    context: int = 4
    """Frames observed before the action to anticipate."""
    pool: int = 2
    """Spatial average pooling of tokens before the probe (cost; 1 keeps all)."""
    k: int = 5
    probe: ProbeConfig = field(default_factory=ProbeConfig)


def _pool(z: torch.Tensor, grid: tuple[int, int, int], pool: int) -> torch.Tensor:
    """``[B, T'·H'·W', D]`` → ``[B, T'·(H'/p)·(W'/p), D]`` by spatial average pooling."""
    b, _, d = z.shape
    t, h, w = grid
    x = z.reshape(b * t, h, w, d).permute(0, 3, 1, 2)
    x = F.avg_pool2d(x, pool)
    return x.permute(0, 2, 3, 1).reshape(b, -1, d)



@torch.no_grad()
def clip_features(jepa, clips: np.ndarray, pool: int, batch_size: int = 64) -> torch.Tensor:
    """Frozen encoder tokens of uint8 clips ``[N, W, 3, H, W]``, pooled: ``[N, n, D]``."""
    enc = jepa.inference_encoder()
    out = []
    for i in range(0, len(clips), batch_size):
        x = torch.from_numpy(clips[i:i + batch_size]).float().div_(255.0)
        tok = enc.tokenize(x)
        out.append(_pool(enc(tok), tok.grid, pool))
    return torch.cat(out)


@torch.no_grad()
def forecast_features(jepa, observed: np.ndarray, pool: int, batch_size: int = 64) -> torch.Tensor:
    """Observed + forecast tokens of clips ``[N, C, 3, H, W]`` (C context frames), pooled.

    The clip is padded with blank frames to the model's window; only the context tokens
    (the observed frames) enter the encoder, and the predictor forecasts the rest.
    """
    cfg = jepa.cfg.encoder
    c = observed.shape[1]
    if c % cfg.tubelet or not cfg.tubelet <= c < cfg.frames:
        raise ConfigError(f"context of {c} frames must be a multiple of the tubelet "
                          f"({cfg.tubelet}) below the window ({cfg.frames})")
    out = []
    for i in range(0, len(observed), batch_size):
        x = torch.zeros((len(observed[i:i + batch_size]), cfg.frames) + observed.shape[2:])
        x[:, :c] = torch.from_numpy(observed[i:i + batch_size]).float().div_(255.0)
        tok = jepa.encoder.tokenize(x)
        mp = CausalFuture(grid=tok.grid, context_steps=c // cfg.tubelet)(len(x))
        z = jepa.encoder(tok, keep_idx=mp.context_idx)
        pred = jepa.predictor(z, mp.context_idx, mp.target_idx, tok.positions)
        # Context then target indices cover the grid in order, so this is the full grid.
        out.append(_pool(torch.cat([z, pred], 1), tok.grid, pool))
    return torch.cat(out)


@torch.no_grad()
def causal_clip_features(net, clips: np.ndarray, pool: int, batch_size: int = 64) -> torch.Tensor:
    """Frame-causal model: latent maps of every frame of ``[N, W, 3, H, W]`` as tokens
    ``[N, W·(h/p)·(w/p), C_map·p²]`` (p×p cells per token; frame-major, then rows)."""
    out = []
    for i in range(0, len(clips), batch_size):
        z = net.encode(torch.from_numpy(clips[i:i + batch_size]).float().div_(255.0))
        out.append(_maps_to_tokens(z, pool))
    return torch.cat(out)


@torch.no_grad()
def causal_forecast_features(net, observed: np.ndarray, pool: int,
                             batch_size: int = 64) -> torch.Tensor:
    """Frame-causal model: the maps of the ``context`` observed frames ``[N, K, 3, H, W]``
    followed by the ``rollout`` maps the predictor forecasts after them, as tokens."""
    K, R = net.cfg.context, net.cfg.rollout
    if observed.shape[1] != K:
        raise ConfigError(f"this model forecasts from {K} frames; the protocol observes "
                          f"{observed.shape[1]} (train it with model.context={observed.shape[1]})")
    out = []
    for i in range(0, len(observed), batch_size):
        z = net.encode(torch.from_numpy(observed[i:i + batch_size]).float().div_(255.0))
        out.append(_maps_to_tokens(torch.cat([z, net.rollout(z, R)], 1), pool))
    return torch.cat(out)


def _maps_to_tokens(z: torch.Tensor, pool: int) -> torch.Tensor:
    """``[B, T, C, h, w]`` → ``[B, T·(h/p)·(w/p), C·p²]``: each p×p block of cells becomes one
    token holding all their channels (a map has few channels, 16 in the recipes, too few for
    the probe's rotary attention heads; stacking keeps every value, where averaging would not)."""
    b, t = z.shape[:2]
    x = F.pixel_unshuffle(z.flatten(0, 1).float(), pool)
    return x.reshape(b, t, *x.shape[1:]).permute(0, 1, 3, 4, 2).reshape(b, -1, x.shape[1])


def _adapter(model, protocol: ActionsProtocol, random_model):
    """``(window, size, grid, (recognition, anticipation) feature functions, nets)`` for the
    windowed ViT model or the frame-causal one, with a random-init twin of the same shape."""
    cfg = model.config
    if getattr(cfg, "kind", None) == "video-causal":
        from monde.jepa.causal_video import CausalVideoJEPA

        if cfg.pixels:
            raise ConfigError("monde eval actions needs a latent video model, not a pixel twin")
        if random_model is None:
            random_model = CausalVideoJEPA(cfg, seed=protocol.seed).eval()
        side = cfg.map_side // protocol.pool
        grid = (cfg.clip_frames, side, side)
        return (cfg.clip_frames, cfg.size, grid, (causal_clip_features, causal_forecast_features),
                (model.jepa, random_model))
    from monde.jepa.model import JEPA

    enc = cfg.encoder
    if enc.modality != "video" or model.jepa.pixels:
        raise ConfigError("monde eval actions needs a latent video model (monde train actions-tiny)")
    if random_model is None:
        torch.manual_seed(protocol.seed)
        random_model = JEPA(cfg).eval()
    grid = (enc.frames // enc.tubelet, enc.height // enc.patch // protocol.pool,
            enc.width // enc.patch // protocol.pool)
    return enc.frames, enc.height, grid, (clip_features, forecast_features), (model.jepa,
                                                                             random_model)


def _episodes(world, n: int, seed: int):
    return world.sample(n, np.random.default_rng(seed))


def actions_eval(model, protocol: ActionsProtocol | None = None, random_model=None) -> dict:
    """Run the protocol on a video model (``monde.load``: a windowed ViT model or a
    frame-causal one) and a random-init twin of it."""
    from monde.worlds.manipulation import (
        ACTIONS,
        ManipulationConfig,
        ManipulationWorld,
        anticipation_clips,
        recognition_clips,
    )

    protocol = protocol or ActionsProtocol()
    window, size, grid, (rec_feats, ant_feats), nets = _adapter(model, protocol, random_model)
    standardise = rec_feats is causal_clip_features
    t0 = time.perf_counter()
    world = ManipulationWorld(ManipulationConfig(size=size))
    train = _episodes(world, protocol.train_episodes, protocol.seed)
    test = _episodes(world, protocol.test_episodes, protocol.seed + 1)
    rng = np.random.default_rng(protocol.seed)
    rec = [recognition_clips(e, window, rng) for e in (train, test)]
    ant = [anticipation_clips(e, protocol.context) for e in (train, test)]
    pos = grid_positions(grid)
    k = len(ACTIONS)
    result = {"protocol": protocol_record(protocol), "classes": list(ACTIONS),
              "clips": {"recognition": [len(rec[0][1]), len(rec[1][1])],
                        "anticipation": [len(ant[0][1]), len(ant[1][1])]}}
    for name, jepa in zip(("model", "random"), nets):
        r = {}
        for task, feats, data in (("recognition", rec_feats, rec),
                                  ("anticipation", ant_feats, ant)):
            xtr, xte = (feats(jepa, d[0], protocol.pool) for d in data)
            if standardise:
                xtr, xte = standardise_tokens(xtr, xte)
            probe = fit_attentive_probe(xtr, data[0][1], pos, k, protocol.probe)
            r[task] = class_metrics(predict_scores(probe, xte, pos), data[1][1], k, protocol.k)
        result[name] = r
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result
