"""Intuitive physics: is the model more surprised by the impossible twin of a clip?

Frozen protocol over :mod:`monde.worlds.intphys` pairs (possible / impossible, identical
until the violation). A clip's surprise is the highest per-frame surprise
(:meth:`WorldModel.surprise`). Per principle the report gives

* ``pairwise``: fraction of pairs where the impossible clip is the more surprising one (a tie
  — e.g. both peaks on a frame before the violation, where the twins are identical — counts
  half: the model could not tell them apart);
* ``auroc``: impossible vs possible clips, ignoring the pairing;
* ``thresholded``: balanced accuracy of the alarm "surprise above the 90th percentile of
  surprise on all possible clips" (one threshold for every principle, as a deployed
  monitor would have).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from monde.errors import ConfigError
from monde.evals.protocol import protocol_record
from monde.worlds.intphys import PRINCIPLES, IntPhys, IntPhysConfig


@dataclass(frozen=True)
class PhysicsProtocol:
    """Matched pairs per principle, their seeds, and how a clip's surprise is computed."""

    name: str = "intphys-balls"
    version: int = 3
    """v2: a tied pair counts half in ``pairwise`` (v1 counted it as a miss). v3: context and
    stride default to each model's own (a windowed ViT model: half its window and one
    tubelet, v2's 4 and 2 for ``intphys-vit-tiny``; a frame-causal model forecasts every frame
    from its fixed context); ``tokens`` stays ``max`` for both."""
    pairs: int = 100
    """Pairs per principle."""
    seed: int = 20261129
    """Seed of the test pairs (training never sees clips from this stream)."""
    frames: int = 24
    """Frames per test clip."""
    context: int | None = None
    """Frames of context per surprise window (None: the model's own)."""
    stride: int | None = None
    """Frames between surprise windows (None: the model's own; a frame-causal model has none)."""
    aggregate: str = "max"
    """How the windows forecasting a frame combine."""
    tokens: str = "max"
    """How a forecast time step's spatial tokens combine (one small object: ``max``)."""
    threshold_quantile: float = 0.9
    """Alarm threshold: this quantile of surprise over all possible clips."""


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the ROC curve of scores ``pos`` (positives) vs ``neg``, ties counting half."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    if not len(pos) or not len(neg):
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    ranks[order] = np.arange(1, len(allv) + 1)
    for v in np.unique(allv):  # average ranks of ties
        tie = allv == v
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    u = ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def clip_surprise(model, videos: np.ndarray, protocol: PhysicsProtocol) -> np.ndarray:
    """Peak surprise of each clip, float ``[B]`` from uint8 ``videos [B, T, 3, H, W]``."""
    return np.array([
        np.nanmax(model.surprise(v, context=protocol.context, stride=protocol.stride,
                                 aggregate=protocol.aggregate, tokens=protocol.tokens).scores)
        for v in videos])


def protocol_pairs(protocol: PhysicsProtocol, size: int) -> dict:
    """The protocol's pairs for a model of resolution ``size``, principle → PhysicsPairs."""
    world = IntPhys(IntPhysConfig(frames=protocol.frames, size=size))
    return {p: world.pairs(p, protocol.pairs, protocol.seed + i) for i, p in enumerate(PRINCIPLES)}


def score_pairs(model, pairs: dict, protocol: PhysicsProtocol) -> dict[str, tuple]:
    """Principle → ``(possible [n], impossible [n])`` peak surprises."""
    return {p: (clip_surprise(model, pp.possible, protocol),
                clip_surprise(model, pp.impossible, protocol)) for p, pp in pairs.items()}


def report(scores: dict[str, tuple], protocol: PhysicsProtocol) -> dict:
    """Per-principle pairwise accuracy, AUROC and thresholded accuracy, and their means."""
    possible_all = np.concatenate([s[0] for s in scores.values()])
    thr = float(np.quantile(possible_all, protocol.threshold_quantile))
    out = {}
    for p, (pos_s, imp_s) in scores.items():
        out[p] = {
            "pairwise": round(float(np.mean((imp_s > pos_s) + 0.5 * (imp_s == pos_s))), 4),
            "ties": int(np.sum(imp_s == pos_s)),
            "auroc": round(auroc(imp_s, pos_s), 4),
            "thresholded": round(float((np.mean(imp_s > thr) + np.mean(pos_s <= thr)) / 2), 4),
            "pairs": len(pos_s),
        }
    keys = ("pairwise", "auroc", "thresholded")
    mean = {k: round(float(np.mean([v[k] for v in out.values()])), 4) for k in keys}
    worst = min(out, key=lambda p: out[p]["pairwise"])
    return {"principles": out, "mean": mean, "threshold": thr,
            "worst": {"principle": worst, "pairwise": out[worst]["pairwise"]}}


def _video_shape(model) -> tuple[int, int, int]:
    """``(channels, height, width)`` of a video model; ConfigError for anything else."""
    shape = getattr(model, "frame_shape", None) if getattr(model, "modality", None) == "video" \
        else None
    if shape is None or shape[0] != 3 or shape[1] != shape[2]:
        raise ConfigError("monde eval physics needs a video model of square RGB frames "
                          "(monde train intphys-tiny)")
    return shape


def _identity(model) -> dict:
    """What the report says about a model: recipe, target, and how it scores surprise."""
    out = {"recipe": model.meta.get("recipe"), "target": model.target}
    for key in ("surprise_blur", "surprise_horizon"):  # frame-causal models only
        value = getattr(model.config, key, None)
        if value is not None:
            out[key] = value
    return out


def physics_eval(model, protocol: PhysicsProtocol | None = None, baseline=None) -> dict:
    """Run the protocol on ``model`` (and on ``baseline``, e.g. the pixel-predicting twin)."""
    protocol = protocol or PhysicsProtocol()
    shape = _video_shape(model)
    t0 = time.perf_counter()
    pairs = protocol_pairs(protocol, shape[1])
    result = {"protocol": protocol_record(protocol),
              "model": {**_identity(model), **report(score_pairs(model, pairs, protocol), protocol)}}
    if baseline is not None:
        if _video_shape(baseline) != shape:
            raise ConfigError("the baseline must see the same frames as the model (size)")
        result["baseline"] = {**_identity(baseline),
                              **report(score_pairs(baseline, pairs, protocol), protocol)}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result
