"""The ``monde`` command line.

Every command prints a short human summary; with ``--json`` it also prints one JSON object on
the last line of stdout. User mistakes (``MondeError``) print one clear message and exit 2;
anything else keeps its traceback because it is a bug.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from monde.cpu_memory import keep_freed_memory
from monde.errors import ConfigError, MondeError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="monde", description="JEPA world models of the physical world.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a recipe: monde train RECIPE --out DIR [key=value ...]")
    t.add_argument("recipe", help="recipe name (see `monde recipes`)")
    t.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. train.steps=200")
    t.add_argument("--out", required=True, type=Path, help="run folder (rerun to resume)")
    t.add_argument("--data", type=Path, default=None,
                   help="training data: a folder of videos (video recipes) or of sound files "
                        "(audio recipes), or an episodes folder (action recipes); same as the "
                        "data.folder / data.path override")
    t.add_argument("--overwrite", action="store_true", help="delete what --out holds first")
    t.add_argument("--json", action="store_true", help="print a JSON summary on the last line")
    t.add_argument("--quiet", action="store_true", help="no progress display")
    t.add_argument("--print-config", action="store_true", help="print the resolved config and exit")

    sub.add_parser("recipes", help="list the recipes")

    i = sub.add_parser("info", help="describe a trained model or checkpoint folder")
    i.add_argument("path", type=Path)
    i.add_argument("--json", action="store_true")

    pr = sub.add_parser("probe", help="linear probe of ball positions/velocities, trained vs random encoder")
    pr.add_argument("--model", required=True, type=Path, help="a model folder from monde train")
    pr.add_argument("--json", action="store_true")
    pr.add_argument("--train-clips", type=int, default=None, help="override the protocol's training clips")
    pr.add_argument("--attentive", action="store_true",
                    help="also fit attentive probes (V-JEPA's head) on all tokens: minutes more")
    pr.add_argument("--attentive-epochs", type=int, default=20, help="attentive probe epochs")

    d = sub.add_parser("data", help="offline datasets: monde data collect WORLD --out DIR")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    c = dsub.add_parser("collect", help="roll a policy in a built-in world and write episodes")
    c.add_argument("world", help="built-in world: two-rooms | reacher | pusht | pointmaze")
    c.add_argument("--out", required=True, type=Path, help="dataset folder to create")
    c.add_argument("--episodes", type=int, default=1000)
    c.add_argument("--steps", type=int, default=64, help="actions per episode")
    c.add_argument("--policy", default=None, help="two-rooms: random (default) | noisy-expert; "
                   "reacher, pointmaze: random; pusht: push (default) | random")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--no-door-crossings", action="store_true",
                   help="keep only episodes that stay in one room (two-rooms)")
    c.add_argument("--json", action="store_true")

    pl = sub.add_parser("plan", help="plan with an action-conditioned model: the frozen protocol, "
                        "or one start/goal")
    pl.add_argument("overrides", nargs="*", help="planner settings, e.g. name=cem samples=300")
    pl.add_argument("--model", required=True, type=Path, help="a model folder from monde train two-rooms")
    pl.add_argument("--world", default=None, help="world of the protocol: two-rooms | reacher | pusht | pointmaze "
                    "(default: the model's)")
    pl.add_argument("--episodes", type=int, default=None, help="override the protocol's episodes")
    pl.add_argument("--start", default=None, help="X,Y: plan one episode from here (with --goal)")
    pl.add_argument("--goal", default=None, help="X,Y: the goal of that episode")
    pl.add_argument("--plot", type=Path, default=None, help="write a PNG of planned vs executed paths")
    pl.add_argument("--json", action="store_true")

    dm = sub.add_parser("demo", help="collect Two-Rooms data, train a world model, plan 50 "
                        "episodes (~5 min on a laptop CPU)")
    dm.add_argument("overrides", nargs="*", help="recipe overrides, e.g. train.steps=500")
    dm.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder (default runs/demo)")
    dm.add_argument("--episodes", type=int, default=None, help="planning episodes (default: the protocol's 50)")
    dm.add_argument("--overwrite", action="store_true", help="delete what --out holds first")
    dm.add_argument("--json", action="store_true")
    dm.add_argument("--quiet", action="store_true")
    from monde import cli_sensors

    cli_sensors.add_parser(sub)
    cli_sensors.add_eval_parser(sub)
    from monde import cli_video

    cli_video.add_surprise_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    # Overrides may come before or after options (`monde train R --out D a=1 b=2`); argparse
    # stops filling a positional list at the first option, so collect the rest here.
    args, extra = parser.parse_known_args(argv)
    bad = [e for e in extra if e.startswith("-") or args.command not in ("train", "plan", "demo", "eval")
           and getattr(args, "sensors_command", None) != "fit"]
    if bad:
        parser.error(f"unrecognized arguments: {' '.join(bad)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    # Every command makes large temporaries (batches, score matrices, read-out blocks) over
    # and over: keep freed memory for reuse (monde.cpu_memory: sensor training 2.2x faster).
    keep_freed_memory()
    try:
        return {"train": cmd_train, "recipes": cmd_recipes, "info": cmd_info,
                "probe": cmd_probe, "data": cmd_data, "plan": cmd_plan,
                "demo": cmd_demo, "sensors": cmd_sensors,
                "eval": cmd_eval, "surprise": cmd_surprise}[args.command](args)
    except MondeError as e:
        print(f"monde: error: {e}", file=sys.stderr)
        return 2
    finally:
        # Under torchrun, leave the process group before the interpreter starts shutting down.
        if "torch.distributed" in sys.modules:
            from monde.train.parallel import shutdown_distributed

            shutdown_distributed()


def _emit(args, human: str, payload: dict) -> None:
    if os.environ.get("RANK", "0") != "0":
        return
    print(human)
    if getattr(args, "json", False):
        print(json.dumps(payload, default=str))


def cmd_train(args) -> int:
    from monde.config import apply_overrides, to_dict
    from monde.recipes import get_recipe, run_recipe

    cfg = apply_overrides(get_recipe(args.recipe).build(), args.overrides)
    if args.data is not None:
        _set_data(cfg, args.data)
    if args.print_config:
        print(json.dumps(to_dict(cfg), indent=2))
        return 0
    s = run_recipe(cfg, args.out, quiet=args.quiet, overwrite=args.overwrite)
    if s["interrupted"]:
        print(f"interrupted at step {s['steps']}; rerun the same command to resume from the "
              f"last checkpoint in {args.out}", file=sys.stderr)
        return 130
    human = (f"trained {s['recipe']} for {s['steps']} steps in {s['seconds']:.0f} s "
             f"({s['steps_per_second']:.2f} steps/s, {s.get('precision', 'fp32')}"
             + (f", resumed from step {s['resumed_from']}" if s["resumed_from"] else "")
             + f"); final loss {s['final_loss']:.4f}, effective rank {s['effective_rank']:.1f}"
             f"\nmodel saved in {s['out']} (load it with monde.load('{s['out']}'))")
    _emit(args, human, s)
    return 0


def _set_data(cfg, path: Path) -> None:
    """``--data PATH``: point the recipe's data at the user's files."""
    data = cfg.data
    if getattr(data, "source", None) == "fsdd":   # the data set's folder, split kept
        data.folder = str(path)
    elif hasattr(data, "folder"):
        data.source, data.folder = "folder", str(path)
    elif hasattr(data, "path"):
        data.path = str(path)
    else:
        raise ConfigError(f"recipe {cfg.recipe} does not read a data folder; drop --data")


def cmd_sensors(args) -> int:
    from monde import cli_sensors

    return cli_sensors.run(args, _emit)


def cmd_eval(args) -> int:
    if args.protocol in ("physics", "actions"):
        from monde import cli_video

        return cli_video.run_eval(args, _emit)
    if args.protocol in ("fsdd", "machine", "av"):
        from monde import cli_audio

        return cli_audio.run_eval(args, _emit)
    from monde import cli_sensors

    return cli_sensors.run_eval(args, _emit)


def cmd_surprise(args) -> int:
    from monde import cli_audio, cli_video

    if args.input.suffix.lower() in (".wav", ".flac", ".ogg"):
        return cli_audio.run_surprise(args, _emit)
    return cli_video.run_surprise(args, _emit)


def cmd_recipes(args) -> int:
    from monde.recipes import RECIPES

    width = max(map(len, RECIPES))
    for r in RECIPES.values():
        print(f"{r.name:<{width}}  {r.description}")
    return 0


def cmd_info(args) -> int:
    from monde.inspect import describe

    info = describe(args.path)
    lines = [f"{k}: {v}" for k, v in info.items() if not isinstance(v, dict)]
    _emit(args, "\n".join(lines), info)
    return 0


def cmd_probe(args) -> int:
    import dataclasses

    import monde
    from monde.evals.probe import BallsProbeProtocol, run_probe

    protocol = BallsProbeProtocol()
    if args.train_clips:
        protocol = dataclasses.replace(protocol, train_clips=args.train_clips)
    model = monde.load(args.model)
    attentive = None
    if args.attentive:
        from monde.evals.attentive_probe import ProbeConfig

        attentive = ProbeConfig(epochs=args.attentive_epochs)
    r = run_probe(model, protocol, attentive)
    t, b = r["trained"], r["random_init"]
    human = (f"linear probe ({r['protocol']['name']} v{r['protocol']['version']}, "
             f"{r['seconds']} s)\n"
             f"  R² position: trained {t['r2_position']:.3f}   random init {b['r2_position']:.3f}\n"
             f"  R² velocity: trained {t['r2_velocity']:.3f}   random init {b['r2_velocity']:.3f}\n"
             f"  R² position of hidden balls ({t['hidden_fraction']:.1%} of ball-slots): "
             f"trained {t['r2_position_hidden']:.3f}   random init {b['r2_position_hidden']:.3f}")
    if attentive is not None:
        human += ("\nattentive probe (all tokens, absolute positions added)\n"
                  f"  R² position: trained {t['attentive_r2_position']:.3f}   "
                  f"random init {b['attentive_r2_position']:.3f}\n"
                  f"  R² velocity: trained {t['attentive_r2_velocity']:.3f}   "
                  f"random init {b['attentive_r2_velocity']:.3f}")
    _emit(args, human, r)
    return 0


def cmd_data(args) -> int:
    from monde.data.collect import WORLD_POLICIES, CollectConfig, collect

    policy = args.policy or WORLD_POLICIES.get(args.world, ("random",))[0]
    cfg = CollectConfig(world=args.world, episodes=args.episodes, steps=args.steps,
                        policy=policy, seed=args.seed,
                        door_crossings=not args.no_door_crossings)
    m = collect(cfg, args.out)
    crossings = (f" ({m['episodes_with_door_crossing']} cross the door)"
                 if "episodes_with_door_crossing" in m else "")
    human = (f"wrote {m['episodes']} {m['policy']} {m['world']} episodes of {m['steps']} steps"
             f"{crossings} to {args.out} in {m['seconds']} s")
    _emit(args, human, {k: v for k, v in m.items() if k != "chunks"} | {"out": str(args.out)})
    return 0


def _point(text: str, flag: str):
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError as e:
        raise MondeError(f"{flag} takes X,Y (two numbers), got '{text}'") from e
    return [x, y]


def cmd_plan(args) -> int:
    import dataclasses

    import numpy as np

    import monde
    from monde.config import apply_overrides, from_dict
    from monde.errors import ConfigError
    from monde.evals.planning import PROTOCOLS, evaluate, tasks, world_for
    from monde.planning import PlannerConfig

    if args.world is not None and args.world not in PROTOCOLS:
        raise ConfigError(f"unknown world '{args.world}'; worlds with a planning protocol: "
                          + ", ".join(PROTOCOLS))
    model = monde.load(args.model)
    if not hasattr(model, "net"):
        model.plan()  # raises the "no action-conditioned predictor" error
    args.world = args.world or model.meta.get("world")
    if args.world not in PROTOCOLS:
        raise ConfigError(f"the model's world {args.world!r} has no planning protocol")
    if args.world != "two-rooms" and args.start:
        raise ConfigError("--start/--goal are for two-rooms models")
    if args.world not in ("two-rooms", "pointmaze") and args.plot:
        raise ConfigError("--plot is for two-rooms and pointmaze models")
    planner = apply_overrides(from_dict(PlannerConfig, model.meta.get("planner", {}), where="planner")
                              if model.meta.get("planner") else PlannerConfig(), args.overrides)
    protocol = PROTOCOLS[args.world]()
    maze = model.meta.get("world_config", {}).get("maze")
    if args.world == "pointmaze" and maze:  # the same test in the model's own maze (its own hash)
        protocol = dataclasses.replace(protocol, maze=maze)
    if args.episodes:
        protocol = dataclasses.replace(protocol, episodes=args.episodes)
    if (args.start is None) != (args.goal is None):
        raise ConfigError("--start and --goal go together")
    world = world_for(model, protocol)
    if args.start is not None:
        from monde.planning.mpc import run_episode

        start, goal = np.array(_point(args.start, "--start")), np.array(_point(args.goal, "--goal"))
        for name, p in (("--start", start), ("--goal", goal)):
            if world.in_wall(p[None])[0] or not (0 <= p).all() or not (p <= world.cfg.size).all():
                raise ConfigError(f"{name} {p.tolist()} is inside a wall or outside the arena")
        ep = run_episode(model, world, start, goal, planner, protocol.budget, record_plans=True)
        if args.plot:
            from monde.viz import plot_plans
            plot_plans(world, [ep], start[None], goal[None], args.plot)
        payload = {"success": ep.success, "steps": ep.steps, "path": ep.positions.round(2).tolist(),
                   "seconds_per_plan": round(float(np.mean(ep.plan_seconds)), 5) if ep.plan_seconds else None}
        _emit(args, f"{'reached' if ep.success else 'did not reach'} the goal in {ep.steps} steps", payload)
        return 0
    r, eps = evaluate(model, protocol, planner, record=6 if args.plot else 0)
    if args.plot:
        from monde.viz import plot_plans
        starts, goals = tasks(protocol, world)
        plot_plans(world, eps, starts, goals, args.plot)
    lo, hi = r["success_ci95"]
    human = (f"{r['protocol']['name']} v{r['protocol']['version']} ({r['protocol']['hash']}): "
             f"success {r['success_rate']:.1%} (95% CI {lo:.1%}-{hi:.1%}) over {r['episodes']} "
             f"episodes with {planner.name}; {r['seconds_per_episode']:.2f} s per episode, "
             f"{1000 * (r['seconds_per_plan'] or 0):.1f} ms per plan")
    _emit(args, human, r)
    return 0


def cmd_demo(args) -> int:
    from monde.demo import run_demo

    s = run_demo(args.out, args.overrides, episodes=args.episodes, quiet=args.quiet,
                 overwrite=args.overwrite)
    if s.get("interrupted"):
        print(f"interrupted; rerun the same command to resume from {args.out}", file=sys.stderr)
        return 130
    lo, hi = s["success_ci95"]
    human = (f"Two-Rooms planning: {s['successes']}/{s['episodes']} goals reached "
             f"(success {s['success_rate']:.1%}, 95% CI {lo:.1%}-{hi:.1%}) with {s['planner']['name']}\n"
             + (f"  training {s['train']['steps']} steps took {s['train']['seconds']:.0f} s; planning "
                if s['train']['resumed_from'] < s['train']['steps'] else
                f"  reused the model trained in {s['model']} ({s['train']['steps']} steps); planning ")
             + f"{s['seconds_per_episode']:.2f} s per episode ({1000 * (s['seconds_per_plan'] or 0):.1f} ms per plan)\n"
             f"  planned vs executed paths: {s['plot']}\n"
             f"  one episode:               {s['gif']}\n"
             f"  model: {s['model']} (monde.load('{s['model']}')); whole demo {s['total_seconds']:.0f} s")
    _emit(args, human, s)
    return 0
