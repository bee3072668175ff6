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

from monde.errors import MondeError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="monde", description="JEPA world models of the physical world.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a recipe: monde train RECIPE --out DIR [key=value ...]")
    t.add_argument("recipe", help="recipe name (see `monde recipes`)")
    t.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. train.steps=200")
    t.add_argument("--out", required=True, type=Path, help="run folder (rerun to resume)")
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
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    # Overrides may come before or after options (`monde train R --out D a=1 b=2`); argparse
    # stops filling a positional list at the first option, so collect the rest here.
    args, extra = parser.parse_known_args(argv)
    bad = [e for e in extra if e.startswith("-") or args.command != "train"]
    if bad:
        parser.error(f"unrecognized arguments: {' '.join(bad)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    try:
        return {"train": cmd_train, "recipes": cmd_recipes, "info": cmd_info,
                "probe": cmd_probe}[args.command](args)
    except MondeError as e:
        print(f"monde: error: {e}", file=sys.stderr)
        return 2


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
    if args.print_config:
        print(json.dumps(to_dict(cfg), indent=2))
        return 0
    s = run_recipe(cfg, args.out, quiet=args.quiet, overwrite=args.overwrite)
    if s["interrupted"]:
        print(f"interrupted at step {s['steps']}; rerun the same command to resume from the "
              f"last checkpoint in {args.out}", file=sys.stderr)
        return 130
    human = (f"trained {s['recipe']} for {s['steps']} steps in {s['seconds']:.0f} s "
             f"({s['steps_per_second']:.2f} steps/s"
             + (f", resumed from step {s['resumed_from']}" if s["resumed_from"] else "")
             + f"); final loss {s['final_loss']:.4f}, effective rank {s['effective_rank']:.1f}"
             f"\nmodel saved in {s['out']} (load it with monde.load('{s['out']}'))")
    _emit(args, human, s)
    return 0


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
    r = run_probe(model, protocol)
    t, b = r["trained"], r["random_init"]
    human = (f"linear probe ({r['protocol']['name']} v{r['protocol']['version']}, "
             f"{r['seconds']} s)\n"
             f"  R² position: trained {t['r2_position']:.3f}   random init {b['r2_position']:.3f}\n"
             f"  R² velocity: trained {t['r2_velocity']:.3f}   random init {b['r2_velocity']:.3f}\n"
             f"  R² position of hidden balls ({t['hidden_fraction']:.1%} of ball-slots): "
             f"trained {t['r2_position_hidden']:.3f}   random init {b['r2_position_hidden']:.3f}")
    _emit(args, human, r)
    return 0
