"""``monde demo``: collect Two-Rooms data, train a world model, plan 50 episodes, show them."""

from __future__ import annotations

import json
import time
from pathlib import Path

from monde.config import apply_overrides, to_dict
from monde.evals.planning import TwoRoomsPlanProtocol, evaluate, tasks, world_for
from monde.train.metrics import Progress


def run_demo(out: Path, overrides: list[str] | None = None, *, episodes: int | None = None,
             quiet: bool = False, overwrite: bool = False) -> dict:
    """The whole loop on the built-in default; returns the summary ``monde demo --json`` prints.

    Rerunning with the same ``out`` reuses its data and finished (or interrupted) training.
    """
    import monde
    from monde.recipes import get_recipe, run_recipe
    from monde.viz import episode_gif, plot_plans

    t0 = time.perf_counter()
    cfg = apply_overrides(get_recipe("two-rooms").build(), overrides or [])
    cfg.recipe = "two-rooms"
    train = run_recipe(cfg, out, quiet=quiet, overwrite=overwrite)
    if train["interrupted"]:
        return {"interrupted": True, "train": train}
    model = monde.load(out)
    protocol = TwoRoomsPlanProtocol() if episodes is None else TwoRoomsPlanProtocol(episodes=episodes)
    bar = Progress(protocol.episodes, desc="planning", quiet=quiet, unit="episode")
    result, eps = evaluate(model, protocol, cfg.planner, record=6,
                           progress=lambda done, wins: bar.update(done, success=f"{wins}/{done}"))
    bar.close()
    world = world_for(model, protocol)
    starts, goals = tasks(protocol, world)
    png = plot_plans(world, eps, starts, goals, out / "plans.png")
    shown = next((i for i, e in enumerate(eps) if e.success), 0)
    gif = episode_gif(world, eps[shown], goals[shown], out / "episode.gif")
    summary = {**result, "train": {k: train[k] for k in ("steps", "seconds", "final_loss",
                                                          "resumed_from")},
               "config": to_dict(cfg)["planner"], "model": str(out), "plot": str(png),
               "gif": str(gif), "total_seconds": round(time.perf_counter() - t0, 1)}
    (out / "plan_results.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
