"""Scale of the sensor world model: a 2,000-channel synthetic plant on a laptop CPU.

    python benchmarks/sensors.py --json [--channels 2000] [--steps 30]

Reports, for the ``sensors`` recipe's model at ``--channels`` sensors (64 channel groups):

* training throughput (windows/s, bf16 autocast, all cores) over ``--steps`` optimizer steps
  after two warm-up steps, and the process's peak resident memory;
* streaming scoring on **one core**: per-step surprise of a fresh history (stride 1, the
  causal sliding window of ``monde sensors score``), in sensor readings per second
  (scored rows × channels / seconds), in fp32 and bf16.

The weights are random (speed does not depend on them); calibration uses a short history.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time

import numpy as np
import torch

from monde.cpu_memory import keep_freed_memory
from monde.data.sensor_windows import SensorWindows
from monde.jepa.sensor_model import SensorJEPA, SensorModelConfig
from monde.jepa.sensor_world_model import SensorWorldModel
from monde.train.precision import bf16_native
from monde.worlds.plant import PlantConfig, SyntheticPlant


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=30, help="timed training steps")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--score-rows", type=int, default=600, help="rows scored per precision")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    kept = keep_freed_memory()  # as `monde` does; MONDE_KEEP_FREED_MEMORY=0 to compare

    t0 = time.perf_counter()
    plant = SyntheticPlant(PlantConfig(sensors=args.channels, actions=8, seed=0))
    hist = plant.simulate(3000, seed=0)
    sim_s = time.perf_counter() - t0
    cfg = SensorModelConfig(channels=args.channels, actions=8)
    torch.manual_seed(0)
    net = SensorJEPA(cfg)
    net.set_normalization(hist.values.mean(0), hist.values.std(0) + 1e-6,
                          hist.actions.mean(0), hist.actions.std(0) + 1e-6)
    src = SensorWindows(hist.values, hist.actions, [slice(0, 2400)], cfg.window)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)

    def step(i: int) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(src.batch(i, args.batch), step=i, generator=torch.Generator().manual_seed(i))
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        net.after_step(i, args.steps)

    for i in range(2):
        step(i)
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(2 + i)
    train_s = time.perf_counter() - t0

    wm = SensorWorldModel(net.eval(), {})
    wm.calibrate(hist.values, hist.actions, [slice(2400, 3000)], stride=4)
    fresh = plant.simulate(args.score_rows + cfg.window, seed=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    scoring = {}
    for prec in ("fp32", "bf16"):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec == "bf16"):
            t0 = time.perf_counter()
            res = wm.surprise(fresh.values, fresh.actions, batch_size=64)
            s = time.perf_counter() - t0
        rows = int(np.isfinite(res.scores).sum())
        scoring[prec] = {"rows": rows, "seconds": round(s, 2),
                         "readings_per_second": round(rows * args.channels / s)}
    torch.set_num_threads(threads)
    result = {
        "benchmark": "sensors-scale", "channels": args.channels, "actions": 8,
        "keep_freed_memory": kept,
        "groups": net.groups, "tokens_per_window": net.groups * cfg.patches,
        "window": cfg.window, "params": sum(p.numel() for p in net.parameters()),
        "simulate_seconds": round(sim_s, 2),
        "train": {"batch": args.batch, "steps": args.steps, "seconds": round(train_s, 1),
                  "windows_per_second": round(args.steps * args.batch / train_s, 1),
                  "threads": threads},
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "score_one_core": scoring,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch": torch.__version__, "bf16_native": bf16_native()},
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
