"""Sound with sight (protocol ``av-balls``): does the model know what a clip should sound like?

Test clips come from the sounding-balls world (:mod:`monde.worlds.sounding_balls`) on a seed
training never draws. Each clip is scored several ways with the model's surprise (the error of
the soundtrack's latents predicted from the video alone, averaged over frames):

* with its **own** soundtrack;
* with **another clip's** soundtrack (clip ``i`` gets clip ``i + 1``'s): a plausible sound of
  balls bouncing, but not of these balls;
* with its own soundtrack **out of step** by each of ``shifts`` frames (rolled in time; one
  frame is 40 ms): the right impacts at the wrong moments.

How well the sound is predicted from the picture is also reported directly:
``sound_from_sight_r2``, the share of the variance of the own soundtracks' chunk latents that
the prediction from the video alone explains (``1 − Σ‖pred − actual‖² / Σ‖actual − mean‖²``
over all chunks of all clips; 0: no better than one average sound).

Each mismatch is reported as AUROC (mismatched vs own, over all clips) and pairwise accuracy
(the mismatched version of a clip scores above its own; ties count half). Beside the model,
in the same run:

* **control**: the same scoring on the same architecture at initialisation — what the
  read-out gets from networks nobody trained;
* **baseline** (``motion_sync``, no learning): how badly the soundtrack's onsets follow the
  video's changes of motion. Per frame interval ``t``: the sound onset (rise of chunk ``t``'s
  log energy over chunk ``t − 1``'s, or 0) and the change of motion across it,
  ``|d_{t+1} − d_{t−1}|`` summed over pixels with ``d_t = frame_{t+1} − frame_t`` (a bounce
  turns a ball's motion round); the score is minus their correlation over the clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from monde.evals.physics import auroc
from monde.evals.protocol import protocol_record
from monde.worlds.sounding_balls import SoundingBalls, SoundingBallsConfig


@dataclass(frozen=True)
class AudioVisualProtocol:
    """Frozen ``av-balls`` settings (change one → bump ``version``)."""

    name: str = "av-balls"
    version: int = 1
    clips: int = 400
    """Test clips."""
    seed: int = 20261206
    """Seed of the test clips."""
    shifts: tuple[int, ...] = (1, 4)
    """Frames the out-of-step soundtracks are rolled by (one result each, ``shifted_<n>``)."""


def _pairwise(mismatched: np.ndarray, own: np.ndarray) -> float:
    return float(np.mean((mismatched > own) + 0.5 * (mismatched == own)))


def score_mismatches(surprise, world: SoundingBalls, protocol: AudioVisualProtocol,
                     batch_size: int = 100) -> dict:
    """Mismatch detection for one ``surprise(video, audio) -> [B, T]`` function."""
    clips = world.sample(protocol.clips, protocol.seed)
    spf = world.cfg.samples_per_frame
    audio = {"own": clips.audio, "other": np.roll(clips.audio, 1, axis=0)}
    for n in protocol.shifts:
        audio[f"shifted_{n}"] = np.roll(clips.audio, n * spf, axis=1)
    scores = {}
    for name, a in audio.items():
        parts = [surprise(clips.video[i:i + batch_size], a[i:i + batch_size]).mean(1)
                 for i in range(0, protocol.clips, batch_size)]
        scores[name] = np.concatenate(parts)
    out = {name: {"auroc": auroc(scores[name], scores["own"]),
                  "pairwise": _pairwise(scores[name], scores["own"])}
           for name in audio if name != "own"}
    out["mean_surprise"] = {k: float(v.mean()) for k, v in scores.items()}
    return out


def motion_sync(video: np.ndarray, audio: np.ndarray) -> np.ndarray:
    """The no-learning baseline's surprise ``[B, T]`` (constant over ``t``: minus the
    correlation of sound onsets with changes of motion over the clip; see the module doc)."""
    v = np.asarray(video, np.float32) / 255.0                        # [B, T, C, H, W]
    b, t = v.shape[:2]
    d = np.diff(v, axis=1)                                           # d_t, t = 0 … T-2
    change = np.zeros((b, t), np.float32)                            # 0 where undefined
    change[:, 1:t - 2] = np.abs(d[:, 2:] - d[:, :-2]).reshape(b, t - 3, -1).sum(-1)
    loud = np.log(np.asarray(audio, np.float32).reshape(b, t, -1).var(-1) + 1e-8)
    onset = np.maximum(0.0, np.diff(loud, axis=1, prepend=loud[:, :1]))
    x = change - change.mean(1, keepdims=True)
    y = onset - onset.mean(1, keepdims=True)
    corr = (x * y).sum(1) / np.sqrt((x * x).sum(1) * (y * y).sum(1) + 1e-12)
    return np.repeat(-corr[:, None], t, axis=1)


def sound_from_sight_r2(net, world: SoundingBalls, protocol: AudioVisualProtocol,
                        batch_size: int = 100) -> float:
    """Variance of the own soundtracks' latents explained by their prediction from the video."""
    clips = world.sample(protocol.clips, protocol.seed)
    pred, actual = [], []
    for i in range(0, protocol.clips, batch_size):
        p, a = net.sound_from_sight(torch.from_numpy(clips.video[i:i + batch_size]),
                                    torch.from_numpy(clips.audio[i:i + batch_size]))
        pred.append(p.flatten(0, 1))
        actual.append(a.flatten(0, 1))
    p, a = torch.cat(pred).double(), torch.cat(actual).double()
    return float(1 - (p - a).pow(2).sum() / (a - a.mean(0)).pow(2).sum())


def av_eval(model, protocol: AudioVisualProtocol | None = None,
            world: SoundingBallsConfig | None = None, *, control: bool = True) -> dict:
    """Run ``protocol`` on an :class:`~monde.jepa.audio_visual_world_model.AudioVisualWorldModel`.

    ``world``: the sounding-balls settings the model was trained on (default: the world's
    defaults, those of ``av-balls-tiny``). Returns ``{"protocol", "model", "random_init"}``.
    """
    from monde.jepa.audio_visual import AudioVisualJEPA
    from monde.jepa.audio_visual_world_model import AudioVisualWorldModel

    protocol = protocol or AudioVisualProtocol()
    w = SoundingBalls(world or SoundingBallsConfig())
    c = model.config
    if (w.cfg.balls.frames, w.cfg.balls.size, w.cfg.samples_per_frame) != (
            c.frames, c.size, c.samples_per_frame):
        from monde.errors import ConfigError

        raise ConfigError(f"the model takes {c.frames} frames of {c.size}x{c.size} with "
                          f"{c.samples_per_frame} samples each; the protocol's world makes "
                          f"{w.cfg.balls.frames} of {w.cfg.balls.size}x{w.cfg.balls.size} with "
                          f"{w.cfg.samples_per_frame}: pass the world the model was trained on")
    r = {"protocol": protocol_record(protocol),
         "model": {**score_mismatches(model.surprise, w, protocol),
                   "sound_from_sight_r2": sound_from_sight_r2(model.jepa, w, protocol)},
         "motion_sync": score_mismatches(motion_sync, w, protocol)}
    if control:
        with torch.random.fork_rng():
            twin = AudioVisualWorldModel(AudioVisualJEPA(c, seed=0), model.meta)
        r["random_init"] = {**score_mismatches(twin.surprise, w, protocol),
                            "sound_from_sight_r2": sound_from_sight_r2(twin.jepa, w, protocol)}
    return r
