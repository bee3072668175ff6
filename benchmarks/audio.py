"""Audio encoder inference throughput, in seconds of sound encoded per second, on this machine.

    python benchmarks/audio.py --json [--batch 64] [--repeats 5]

For each audio recipe's encoder (random weights: speed does not depend on them) — the masked
ViT JEPA (``audio-tiny``, 16 kHz), the frame-causal CNN (``audio-causal-tiny``, 16 kHz;
``fsdd-causal``, 8 kHz) and the spectral CNN (``audio-spectral-tiny``, 16 kHz, 1-s windows) —
encodes ``--batch`` windows of noise, front end included, in fp32 and in bf16 autocast (the
front ends stay fp32 in both), best of ``--repeats``; the
bf16/fp32 ratio is measured in the same run. Also: the latency of ``surprise`` on a 60-second
sound (default stride, half a window). And the audio-visual model (``av-balls-tiny``): clips of
16 frames with their sound scored by ``surprise`` (both encoders and the predictor, the whole
soundtrack predicted from the video), fp32 and bf16, in seconds of video per second.
"""

from __future__ import annotations

import argparse
import json
import os
import platform

import torch
from _timing import best_time

from monde.jepa.causal_audio import CausalAudioJEPA
from monde.jepa.causal_audio_world_model import CausalAudioWorldModel
from monde.jepa.model import JEPA
from monde.jepa.spectral_audio import SpectralAudioJEPA
from monde.jepa.spectral_audio_world_model import SpectralAudioWorldModel
from monde.jepa.world_model import WorldModel
from monde.recipes import get_recipe
from monde.train.precision import bf16_native


def _model(recipe: str):
    """``(world model, window samples, sample rate)`` of a recipe, random weights."""
    cfg = get_recipe(recipe).build().model
    torch.manual_seed(0)
    if getattr(cfg, "kind", None) == "audio-causal":
        return CausalAudioWorldModel(CausalAudioJEPA(cfg)), cfg.window_samples, cfg.sample_rate
    if getattr(cfg, "kind", None) == "audio-spectral":
        net = SpectralAudioJEPA(cfg)
        return SpectralAudioWorldModel(net), cfg.window_samples, cfg.sample_rate
    enc = cfg.encoder
    return WorldModel(JEPA(cfg).eval()), (enc.width - 1) * enc.hop, enc.sample_rate


def _measure(recipe: str, batch: int, repeats: int) -> dict:
    """Encoder throughput (fp32, bf16) and 60-second surprise latency of one recipe."""
    wm, n, rate = _model(recipe)
    x = torch.randn(batch, n) * 0.1
    r: dict = {"window_seconds": round(n / rate, 4), "sample_rate": rate}
    for precision in ("fp32", "bf16"):
        def run(precision=precision):
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                 enabled=precision == "bf16"):
                wm.encode(x)
        s = best_time(run, repeats)
        r[f"sound_seconds_per_second_{precision}"] = round(batch * n / rate / s, 1)
    r["bf16_speedup"] = round(r["sound_seconds_per_second_bf16"]
                              / r["sound_seconds_per_second_fp32"], 2)
    minute = torch.randn(60 * rate) * 0.1
    r["surprise_60s_sound_seconds"] = round(best_time(lambda: wm.surprise(minute), 2), 3)
    return r


def _measure_av(batch: int, repeats: int) -> dict:
    """Soundtrack-surprise throughput of ``av-balls-tiny`` (random weights), fp32 and bf16."""
    from monde.jepa.audio_visual import AudioVisualJEPA
    from monde.jepa.audio_visual_world_model import AudioVisualWorldModel

    cfg = get_recipe("av-balls-tiny").build().model
    torch.manual_seed(0)
    wm = AudioVisualWorldModel(AudioVisualJEPA(cfg))
    video = torch.randint(0, 256, (batch, cfg.frames, 3, cfg.size, cfg.size), dtype=torch.uint8)
    audio = torch.randn(batch, cfg.frames * cfg.samples_per_frame) * 0.1
    clip_seconds = cfg.frames * cfg.samples_per_frame / cfg.sample_rate
    r: dict = {"clip_seconds": clip_seconds, "frames": cfg.frames, "size": cfg.size,
               "sample_rate": cfg.sample_rate}
    for precision in ("fp32", "bf16"):
        def run(precision=precision):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                wm.surprise(video, audio)
        r[f"video_seconds_per_second_{precision}"] = round(
            batch * clip_seconds / best_time(run, repeats), 1)
    r["bf16_speedup"] = round(r["video_seconds_per_second_bf16"]
                              / r["video_seconds_per_second_fp32"], 2)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result: dict = {"benchmark": "audio", "batch": args.batch, "threads": torch.get_num_threads(),
                    "bf16_native": bf16_native(),
                    "machine": f"{platform.machine()} {os.cpu_count()} cpus, torch "
                               f"{torch.__version__}", "recipes": {}}
    for recipe in ("audio-tiny", "audio-causal-tiny", "fsdd-causal", "audio-spectral-tiny"):
        result["recipes"][recipe] = _measure(recipe, args.batch, args.repeats)
    result["recipes"]["av-balls-tiny"] = _measure_av(args.batch, args.repeats)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
