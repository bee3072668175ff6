"""Planning speed: plans per second of each planner, at the peers' settings and at monde's.

    python benchmarks/planning.py --json [--model runs/demo]

Each setting plans from one Two-Rooms observation to a goal in the other room, ``--reps``
times after a warm-up call, and reports plans/s, milliseconds per plan and imagined
transitions per second (samples × horizon × iterations / time). Speed does not depend on the
weights, so without ``--model`` a randomly initialised two-rooms model of the default size is
used. Settings:

* ``cem-dinowm``: CEM 300 samples × 30 iterations × horizon 5 (DINO-WM, LeWM, V-JEPA 2-AC);
* ``mppi-pldm``: MPPI 2000 samples × horizon 16 (PLDM), 3 iterations;
* ``*-monde``: the defaults ``monde demo`` plans with (every 4 environment steps).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from monde.jepa.action_model import ActionJEPA, ActionModelConfig
from monde.jepa.action_world_model import ActionWorldModel
from monde.planning import PlannerConfig
from monde.worlds.two_rooms import TwoRooms, TwoRoomsConfig

SETTINGS = {
    "cem-dinowm": PlannerConfig(name="cem", samples=300, elites=30, iterations=30, horizon=5),
    "mppi-pldm": PlannerConfig(name="mppi", samples=2000, iterations=3, horizon=16),
    "mppi-monde": PlannerConfig(name="mppi"),
    "cem-monde": PlannerConfig(name="cem"),
    "gradient-monde": PlannerConfig(name="gradient"),
}


def load_model(path: str | None) -> ActionWorldModel:
    if path:
        import monde

        return monde.load(path)
    from dataclasses import asdict

    return ActionWorldModel(ActionJEPA(ActionModelConfig()),
                            {"world": "two-rooms", "world_config": asdict(TwoRoomsConfig())})


def bench(model: ActionWorldModel, cfg: PlannerConfig, reps: int) -> dict:
    world = TwoRooms()
    start, goal = world.sample_task(np.random.default_rng(0), 1)
    obs, goal_obs = world.render(start), world.render(goal)
    model.plan(obs, goal_obs, cfg)  # warm-up
    t0 = time.perf_counter()
    for _ in range(reps):
        model.plan(obs, goal_obs, cfg)
    dt = (time.perf_counter() - t0) / reps
    return {"planner": cfg.name, "samples": cfg.samples, "iterations": cfg.iterations,
            "horizon": cfg.horizon, "plans_per_second": round(1 / dt, 2),
            "ms_per_plan": round(1000 * dt, 2),
            "transitions_per_second": round(cfg.samples * cfg.horizon * cfg.iterations / dt)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a two-rooms model folder (default: random init)")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    model = load_model(args.model)
    results = {name: bench(model, cfg, args.reps) for name, cfg in SETTINGS.items()}
    out = {"benchmark": "planning", "machine": platform.processor() or platform.machine(),
           "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
           "torch": torch.__version__, "model": args.model or "random-init default",
           "results": results}
    if args.json:
        print(json.dumps(out))
    else:
        for name, r in results.items():
            print(f"{name:16s} {r['plans_per_second']:8.2f} plans/s  {r['ms_per_plan']:8.2f} ms/plan")


if __name__ == "__main__":
    main()
