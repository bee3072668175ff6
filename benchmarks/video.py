"""Video encoder inference throughput and surprise latency on this machine.

    python benchmarks/video.py --json [--recipe intphys-vit-tiny] [--batch 32] [--repeats 5]

Reports, for the recipe's encoder (random weights: speed does not depend on them):

* encoder inference throughput in clips/s (and tokens/s) at ``--batch`` clips, in fp32 and
  in bf16 autocast, the ratio measured in the same run;
* the latency of ``WorldModel.surprise`` on a 10-second 64×64 clip at 30 fps (300 frames,
  default stride and context), fp32 — the issue's target is ≤ 5 s on the CPU;
* the same latency for the frame-causal model of ``intphys-tiny`` (every frame forecast at
  each of its leads, its state carried through the video).
"""

from __future__ import annotations

import argparse
import json
import os
import platform

import torch
from _timing import best_time

from monde.jepa.causal_video import CausalVideoJEPA
from monde.jepa.causal_video_world_model import CausalVideoWorldModel
from monde.jepa.model import JEPA
from monde.jepa.world_model import WorldModel
from monde.recipes import get_recipe
from monde.train.precision import bf16_native


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="intphys-vit-tiny", help="a windowed (ViT) video recipe")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    cfg = get_recipe(args.recipe).build().model
    torch.manual_seed(0)
    jepa = JEPA(cfg).eval()
    enc = cfg.encoder
    clips = torch.rand(args.batch, enc.frames, enc.channels, enc.height, enc.width)
    tokens = (enc.frames // enc.tubelet) * (enc.height // enc.patch) * (enc.width // enc.patch)
    encoder = jepa.inference_encoder()
    result = {"benchmark": "video", "recipe": args.recipe, "batch": args.batch,
              "tokens_per_clip": tokens, "threads": torch.get_num_threads(), "bf16_native": bf16_native(),
              "machine": f"{platform.machine()} {os.cpu_count()} cpus, torch {torch.__version__}"}
    for precision in ("fp32", "bf16"):
        def run(precision=precision):
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                 enabled=precision == "bf16"):
                encoder.encode(clips)
        s = best_time(run, args.repeats)
        result[f"clips_per_second_{precision}"] = round(args.batch / s, 1)
        result[f"tokens_per_second_{precision}"] = round(args.batch * tokens / s)
    result["bf16_speedup"] = round(result["clips_per_second_bf16"]
                                   / result["clips_per_second_fp32"], 2)
    video = (torch.rand(300, enc.channels, enc.height, enc.width) * 255).to(torch.uint8)
    wm = WorldModel(jepa)
    result["surprise_10s_clip_seconds"] = round(best_time(lambda: wm.surprise(video), 2), 3)
    ccfg = get_recipe("intphys-tiny").build().model
    # A trained model calibrates one scale per lead; random weights get ones (speed does not
    # depend on them), so the recipe's 8 leads are all scored.
    ccfg.step_scale = (1.0,) * ccfg.surprise_horizon
    causal = CausalVideoWorldModel(CausalVideoJEPA(ccfg))
    result["causal_recipe"] = {"memory": ccfg.memory, "surprise_horizon": ccfg.surprise_horizon}
    result["surprise_10s_clip_seconds_causal"] = round(best_time(lambda: causal.surprise(video), 2), 3)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
