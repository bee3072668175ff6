"""Training throughput of the video recipes in fp32 and bf16, against the machine's matmul peak.

    python benchmarks/train_throughput.py --json

For each recipe and precision it runs a few warm-up steps, then times ``--steps`` training
steps (data generation included, as in a real run), counts the FLOPs of one step with
PyTorch's FLOP counter, and reports samples/s, tokens/s, achieved FLOP/s and that figure as a
share of the dense matmul peak measured in the same run (fp32 and bf16, 2048² matmuls).

The machine is shared and its speed drifts, so fp32 and bf16 are timed alternately
``--repeats`` times (fresh model each time): each row reports the median time per step, and
the bf16 speed-up is the median of the paired ratios (with all of them listed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from monde.cpu_memory import keep_freed_memory
from monde.jepa.model import JEPA
from monde.recipes import get_recipe
from monde.recipes.video_data import BallsSource
from monde.train.config import TrainConfig
from monde.train.parallel import DistInfo
from monde.train.precision import bf16_native
from monde.train.trainer import build_optimizer, train_step


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 2.0) -> float:
    """Dense matmul FLOP/s for ``dtype`` on this machine."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def bench(recipe: str, precision: str, steps: int, warmup: int, batch: int | None):
    """Train a fresh model of ``recipe`` for a few steps: ``(config, FLOPs of one step,
    seconds per timed step)``."""
    cfg = get_recipe(recipe).build()
    tcfg: TrainConfig = cfg.train
    tcfg.precision = precision
    if batch:
        tcfg.batch_size = batch
    torch.manual_seed(0)
    model = JEPA(cfg.model)
    data = BallsSource(cfg.data.balls)
    opt = build_optimizer(model, tcfg)
    info = DistInfo()
    for s in range(warmup):
        train_step(model, opt, data, tcfg, s, tcfg.batch_size, info)
    with FlopCounterMode(display=False) as counter:
        train_step(model, opt, data, tcfg, warmup, tcfg.batch_size, info)
    flops = counter.get_total_flops()
    t0 = time.perf_counter()
    for s in range(steps):
        train_step(model, opt, data, tcfg, warmup + 1 + s, tcfg.batch_size, info)
        model.after_step(s, tcfg.steps)
    dt = (time.perf_counter() - t0) / steps
    return cfg, flops, dt


def row(recipe: str, precision: str, cfg, flops: float, dt: float) -> dict:
    """One result row from a median time per step ``dt``."""
    tcfg = cfg.train
    e = cfg.model.encoder
    tokens = (e.frames // e.tubelet) * (e.height // e.patch) * (e.width // e.patch)
    return {"recipe": recipe, "precision": precision, "batch_size": tcfg.batch_size,
            "tokens_per_clip": tokens, "seconds_per_step": round(dt, 4),
            "samples_per_s": round(tcfg.batch_size / dt, 2),
            "tokens_per_s": round(tcfg.batch_size * tokens / dt, 1),
            "flops_per_step": flops, "achieved_gflops": round(flops / dt / 1e9, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipes", nargs="+", default=["video-physics-tiny", "video-physics-medium"])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=None, help="override the recipes' batch size")
    p.add_argument("--repeats", type=int, default=3,
                   help="alternate fp32 and bf16 this many times; report medians")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    kept = keep_freed_memory()  # as `monde` does; MONDE_KEEP_FREED_MEMORY=0 to compare
    peak = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    rows, speedup, ratios = [], {}, {}
    for recipe in args.recipes:
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        counted = {}
        for _ in range(args.repeats):
            for precision in ("fp32", "bf16"):
                cfg, flops, dt = bench(recipe, precision, args.steps, args.warmup, args.batch)
                times[precision].append(dt)
                counted[precision] = (cfg, flops)
        for precision in ("fp32", "bf16"):
            r = row(recipe, precision, *counted[precision], statistics.median(times[precision]))
            r["share_of_peak"] = round(r["achieved_gflops"] * 1e9 / peak[precision], 3)
            rows.append(r)
            if not args.json:
                print(r)
        paired = [f / b for f, b in zip(times["fp32"], times["bf16"])]
        speedup[recipe] = round(statistics.median(paired), 2)
        ratios[recipe] = [round(x, 2) for x in paired]
    out = {"benchmark": "train_throughput", "keep_freed_memory": kept,
           "machine": platform.processor() or platform.machine(),
           "cpus": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__,
           "cpu_capability": torch.backends.cpu.get_cpu_capability(), "bf16_native": bf16_native(),
           "matmul_peak_gflops": {k: round(v / 1e9, 1) for k, v in peak.items()},
           "bf16_speedup": speedup, "bf16_speedup_per_repeat": ratios,
           "repeats": args.repeats, "results": rows, "command": "python benchmarks/train_throughput.py --json"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
