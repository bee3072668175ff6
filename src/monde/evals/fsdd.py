"""Free Spoken Digit Dataset: digits and speakers from frozen audio features.

Official split: recordings 0–4 of every (digit, speaker) are the test set (300 clips), the rest
(2,700) train. With the encoder frozen, two probes read its tokens — a linear one (logistic
regression on mean-pooled latents) and an attentive one — trained with 100% and 10% of the
training labels (10%: a stratified draw per class, several draws for the linear probe). The
same probes on a randomly initialised encoder of the same shape, and log-mel statistics +
logistic regression, run in the same call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from monde.errors import DataError
from monde.evals.attentive_probe import (
    ProbeConfig,
    fit_attentive_probe,
    predict_scores,
    standardise_tokens,
)
from monde.evals.protocol import protocol_record
from monde.jepa.audio_surprise import is_causal
from monde.nn import grid_positions


@dataclass
class FSDDData:
    """Mono sounds at the model's rate, with digit and speaker labels."""

    train_sounds: list[torch.Tensor]
    test_sounds: list[torch.Tensor]
    train_digit: np.ndarray
    test_digit: np.ndarray
    train_speaker: np.ndarray
    test_speaker: np.ndarray
    speakers: list[str]


def load_fsdd(root: Path, rate: int) -> FSDDData:
    """Read ``root/recordings/{digit}_{speaker}_{index}.wav`` (or ``root`` itself) at ``rate``."""
    from monde.data.audio import read_audio

    folder = root / "recordings" if (root / "recordings").is_dir() else root
    files = sorted(folder.glob("*.wav"))
    if not files:
        raise DataError(f"{folder}: no FSDD recordings ({{digit}}_{{speaker}}_{{index}}.wav)")
    rows = []
    for f in files:
        parts = f.stem.split("_")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit():
            raise DataError(f"{f}: not an FSDD file name ({{digit}}_{{speaker}}_{{index}}.wav)")
        rows.append((f, int(parts[0]), parts[1], int(parts[2])))
    speakers = sorted({r[2] for r in rows})
    split: dict[bool, list] = {True: [], False: []}
    for f, digit, spk, idx in rows:
        split[idx < 5].append((read_audio(f, rate=rate)[0][0], digit, speakers.index(spk)))

    def cols(items):
        return ([s for s, _, _ in items], np.array([d for _, d, _ in items]),
                np.array([k for _, _, k in items]))

    (trs, trd, trk), (tes, ted, tek) = cols(split[False]), cols(split[True])
    return FSDDData(trs, tes, trd, ted, trk, tek, speakers)


@dataclass(frozen=True)
class FSDDProtocol:
    """Probes, label fractions and seeds of the FSDD evaluation."""

    name: str = "fsdd-probe"
    version: int = 1
    fractions: tuple[float, ...] = (1.0, 0.1)
    """Fractions of the training labels the probes see."""
    draws: int = 3
    """Stratified draws of the small fractions for the linear probe (mean ± std reported);
    the attentive probe uses the first draw."""
    seed: int = 20261129
    l2: float = 1e-3
    """Logistic-regression L2 penalty (on standardised features)."""
    probe: ProbeConfig = field(default_factory=lambda: ProbeConfig(epochs=20))


def fit_window(sounds: list[torch.Tensor], n: int) -> torch.Tensor:
    """Each sound centred in (or cut to the middle of) a window of ``n`` samples: ``[B, n]``."""
    out = torch.zeros(len(sounds), n)
    for i, s in enumerate(sounds):
        if len(s) >= n:
            o = (len(s) - n) // 2
            out[i] = s[o:o + n]
        else:
            o = (n - len(s)) // 2
            out[i, o:o + len(s)] = s
    return out


@torch.no_grad()
def token_features(net, sounds: list[torch.Tensor], batch_size: int = 64) -> torch.Tensor:
    """Frozen tokens ``[B, N, D]`` of each sound placed in one model window.

    ``net``: a masked audio JEPA (its inference encoder's tokens) or a frame-causal one (its
    step latents, :meth:`~monde.jepa.causal_audio.CausalAudioJEPA.tokens`).
    """
    from monde.jepa.audio_surprise import window_samples

    if is_causal(net.cfg):
        encode, n = net.tokens, net.cfg.window_samples
    else:
        encode, n = net.inference_encoder().encode, window_samples(net.cfg.encoder)
    x = fit_window(sounds, n)
    return torch.cat([encode(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)])


def audio_twin(model, seed: int):
    """``(trained net, random-init net of the same shape, token grid, front end)`` of an audio
    world model of either family."""
    from monde.jepa.audio_surprise import audio_facts
    from monde.jepa.causal_audio import CausalAudioJEPA
    from monde.jepa.model import JEPA

    frontend = audio_facts(model)[2]
    if getattr(model.config, "kind", None) == "audio-spectral":
        from monde.errors import ConfigError

        raise ConfigError("a spectral audio model (one latent per frequency cell of a whole "
                          "window) is made for machine monitoring, not for probing spoken "
                          "digits; evaluate an fsdd-causal or fsdd model")
    torch.manual_seed(seed)
    if is_causal(model.config):
        return (model.jepa, CausalAudioJEPA(model.config, seed=seed).eval(),
                (model.config.steps,), frontend)
    enc = model.config.encoder
    return (model.jepa, JEPA(model.config).eval(),
            (enc.height // enc.patch, enc.width // enc.patch), frontend)


def logmel_stats(sounds: list[torch.Tensor], logmel) -> torch.Tensor:
    """Baseline features: mean and std of every log-mel band over the clip, ``[B, 2M]``."""
    feats = []
    for s in sounds:
        m = logmel(s[None])[0]  # [M, F]
        feats.append(torch.cat([m.mean(-1), m.std(-1)]))
    return torch.stack(feats)


def fit_logreg(x: torch.Tensor, y: np.ndarray, classes: int, l2: float) -> tuple:
    """Multinomial logistic regression on standardised ``x [N, D]`` (L-BFGS, L2 penalty)."""
    mu, sd = x.mean(0), x.std(0).clamp_min(1e-6)
    xs = (x - mu) / sd
    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    yt = torch.as_tensor(y, dtype=torch.long)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xs @ w + b, yt) + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return mu, sd, w.detach(), b.detach()


def logreg_accuracy(model: tuple, x: torch.Tensor, y: np.ndarray) -> float:
    mu, sd, w, b = model
    return float(((((x - mu) / sd) @ w + b).argmax(1).numpy() == y).mean())


def stratified(y: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``fraction`` of the samples of every class (at least one each)."""
    idx = [rng.choice(np.flatnonzero(y == c), max(1, round(fraction * (y == c).sum())),
                      replace=False) for c in np.unique(y)]
    return np.sort(np.concatenate(idx))



def probe_features(tokens_tr, tokens_te, ytr, yte, classes, pos, protocol) -> dict:
    """Linear (pooled) and attentive probes for every label fraction."""
    out: dict = {}
    pooled_tr, pooled_te = tokens_tr.mean(1), tokens_te.mean(1)
    for frac in protocol.fractions:
        draws = 1 if frac >= 1 else protocol.draws
        rngs = [np.random.default_rng([protocol.seed, d]) for d in range(draws)]
        subsets = [np.arange(len(ytr)) if frac >= 1 else stratified(ytr, frac, r) for r in rngs]
        lin = [logreg_accuracy(fit_logreg(pooled_tr[s], ytr[s], classes, protocol.l2),
                               pooled_te, yte) for s in subsets]
        probe = fit_attentive_probe(tokens_tr[subsets[0]], ytr[subsets[0]], pos, classes,
                                    protocol.probe)
        att = float((predict_scores(probe, tokens_te, pos).argmax(1) == yte).mean())
        out[str(frac)] = {"linear": round(float(np.mean(lin)), 4),
                          "linear_std": round(float(np.std(lin)), 4),
                          "attentive": round(att, 4), "labels": int(len(subsets[0]))}
    return out


def fsdd_eval(model, data: FSDDData, protocol: FSDDProtocol | None = None) -> dict:
    """Digits and speakers from ``model``'s frozen features, a random twin's, and log-mel stats."""
    protocol = protocol or FSDDProtocol()
    t0 = time.perf_counter()
    net, random_net, grid, logmel = audio_twin(model, protocol.seed)
    tasks = {"digit": (data.train_digit, data.test_digit, 10),
             "speaker": (data.train_speaker, data.test_speaker, len(data.speakers))}
    result: dict = {"protocol": protocol_record(protocol), "train_clips": len(data.train_sounds),
                    "test_clips": len(data.test_sounds), "speakers": data.speakers}
    for name, jepa in (("model", net), ("random", random_net)):
        tr, te = token_features(jepa, data.train_sounds), token_features(jepa, data.test_sounds)
        if is_causal(model.config):
            # A CNN's raw output scale differs by orders of magnitude between trained and
            # random weights; z-score both alike with training statistics (as monde eval
            # actions does for the frame-causal video family).
            tr, te = standardise_tokens(tr, te)
        result[name] = {task: probe_features(tr, te, ytr, yte, k, grid_positions(grid), protocol)
                        for task, (ytr, yte, k) in tasks.items()}
    ftr, fte = logmel_stats(data.train_sounds, logmel), logmel_stats(data.test_sounds, logmel)
    base: dict = {}
    for task, (ytr, yte, k) in tasks.items():
        base[task] = {}
        for frac in protocol.fractions:
            draws = 1 if frac >= 1 else protocol.draws
            accs = []
            for d in range(draws):
                s = (np.arange(len(ytr)) if frac >= 1
                     else stratified(ytr, frac, np.random.default_rng([protocol.seed, d])))
                accs.append(logreg_accuracy(fit_logreg(ftr[s], ytr[s], k, protocol.l2), fte, yte))
            base[task][str(frac)] = {"linear": round(float(np.mean(accs)), 4),
                                     "linear_std": round(float(np.std(accs)), 4)}
    result["logmel_stats"] = base
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result
