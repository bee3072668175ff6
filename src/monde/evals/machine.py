"""Machine-sound monitoring: does surprise separate faulty machines from normal ones?

Frozen protocol over :mod:`monde.worlds.machine_sounds`. The model was trained on normal
sounds only. Each test clip gets

* ``surprise``: the model's own prediction error (its ``surprise()``, mean over the clip's
  windows: a forecast error for the masked-ViT and frame-causal families, the error of
  predicting masked frequency spans for the spectral one) — no fitting at all;
* ``novelty``: Mahalanobis distance (Ledoit–Wolf covariance) of the clip's mean-pooled latents
  to a set of normal clips — the latent-space analogue of the baseline;

and the baseline gets the Mahalanobis distance of its log-mel statistics (mean and std of
every band) to the same normal clips. A spectral model (:mod:`monde.jepa.spectral_audio`) also
gets ``spectrum_stats``: the same distance on its own front end's output (every grid point of
every channel), which tells what the learned model adds to its input representation.
Reported: AUROC of each score, normal vs each fault.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from monde.evals.fsdd import logmel_stats
from monde.evals.physics import auroc
from monde.evals.protocol import protocol_record
from monde.jepa.audio_surprise import audio_facts


@dataclass(frozen=True)
class MachineProtocol:
    """Clip counts and seeds of the machine-sound evaluation."""

    name: str = "machine-sounds"
    version: int = 1
    normal_fit: int = 512
    """Normal clips the novelty scores are fitted on."""
    normal_test: int = 200
    per_fault: int = 200
    seed: int = 20261129


class Mahalanobis:
    """Distance of feature vectors to a fitted normal set (Ledoit–Wolf shrunk covariance)."""

    def __init__(self, x: torch.Tensor):
        from monde.jepa.sensor_world_model import ledoit_wolf

        x = x.double()
        self.mu, self.sd = x.mean(0), x.std(0).clamp_min(1e-8)
        z = (x - self.mu) / self.sd
        self.prec = torch.linalg.inv(ledoit_wolf(z[:, None, :])[0])

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        z = (x.double() - self.mu) / self.sd
        return torch.einsum("ni,ij,nj->n", z, self.prec, z).sqrt().numpy()


@torch.no_grad()
def per_first_window(model, audio: np.ndarray, fn, batch_size: int = 64) -> torch.Tensor:
    """``fn`` (``[b, window] → [b, F]``) of the first model window of each clip ``[B, N]``,
    ``batch_size`` clips at a time: ``[B, F]`` float."""
    n = audio_facts(model)[1]
    x = torch.from_numpy(audio[:, :n]).float()
    return torch.cat([fn(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)])


def pooled_latents(model, audio: np.ndarray) -> torch.Tensor:
    """Mean-pooled latents ``[B, D]`` of the first model window of each clip."""
    return per_first_window(model, audio, lambda x: model.encode(x, pool=True))


def front_end_features(model, audio: np.ndarray) -> torch.Tensor:
    """A spectral model's front end output, flattened, ``[B, channels * bins]``, of the first
    model window of each clip."""
    return per_first_window(model, audio, lambda x: model.jepa.frontend(x).flatten(1))


def machine_eval(model, protocol: MachineProtocol | None = None) -> dict:
    """AUROC per fault of the model's surprise and latent novelty, and of the baseline."""
    from monde.worlds.machine_sounds import FAULTS, MachineConfig, MachineSounds

    protocol = protocol or MachineProtocol()
    rate, _, logmel = audio_facts(model)
    t0 = time.perf_counter()
    world = MachineSounds(MachineConfig(rate=rate))
    rng = np.random.default_rng(protocol.seed)
    fit = world.sample(protocol.normal_fit, rng).audio
    sets = {"normal": world.sample(protocol.normal_test, rng).audio}
    for f in FAULTS:
        sets[f] = world.sample(protocol.per_fault, rng, fault=f).audio
    base = Mahalanobis(logmel_stats(list(torch.from_numpy(fit)), logmel))
    nov = Mahalanobis(pooled_latents(model, fit))
    spectral = getattr(model.config, "kind", None) == "audio-spectral"
    if spectral:
        spec = Mahalanobis(front_end_features(model, fit))
    scores: dict[str, dict[str, np.ndarray]] = {}
    for name, audio in sets.items():
        scores[name] = {
            "surprise": np.array([model.surprise(a).scores.mean() for a in audio]),
            "novelty": nov(pooled_latents(model, audio)),
            "logmel_stats": base(logmel_stats(list(torch.from_numpy(audio)), logmel)),
        }
        if spectral:
            scores[name]["spectrum_stats"] = spec(front_end_features(model, audio))
    keys = list(scores["normal"])
    result = {"protocol": protocol_record(protocol), "faults": {}}
    for f in FAULTS:
        result["faults"][f] = {k: round(auroc(scores[f][k], scores["normal"][k]), 4)
                               for k in keys}
    result["mean"] = {k: round(float(np.mean([v[k] for v in result["faults"].values()])), 4)
                      for k in keys}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result
