"""The life of one training run, shared by every model family's recipe runner.

A runner resolves its data and builds its network; what comes before and after is the same
for all of them and lives here: :func:`open_run` claims (or resumes) the run folder and seeds
torch; :func:`train_and_export` trains, writes the model folder through :func:`exporter` and
returns the summary ``monde train --json`` prints.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from monde import __version__
from monde.config import to_dict
from monde.errors import ConfigError


@dataclass(frozen=True)
class RunFolder:
    """A run folder claimed by :func:`open_run`."""

    out: Path
    config: dict
    """The resolved run config as saved in ``run.json``."""
    resumed: bool
    """True when ``out`` already held this same run (training continues from its checkpoint)."""
    is_main: bool
    """Rank 0 under ``torchrun`` (or a single process)."""


def open_run(cfg, out: Path, overwrite: bool) -> RunFolder:
    """Claim ``out`` for the run config ``cfg`` (a dataclass with a ``train`` section) and seed
    torch with ``cfg.train.seed``.

    Under torchrun only rank 0 touches the folder; the others start training, whose first
    collective (joining the process group) waits for rank 0 to get there.
    """
    config = to_dict(cfg)
    is_main = int(os.environ.get("RANK", "0")) == 0
    resumed = prepare_run_dir(out, config, overwrite) if is_main else True
    torch.manual_seed(cfg.train.seed)
    return RunFolder(out, config, resumed, is_main)


def train_and_export(run: RunFolder, cfg, model, source, meta: dict, *, quiet: bool,
                     export: Callable | None = None, **facts) -> dict:
    """Train ``model`` on ``source`` (its batches) with ``cfg.train`` into ``run.out`` and save the model folder.

    ``export``: the trainer's export callback; by default :func:`exporter` with ``meta`` and
    ``facts`` (e.g. ``params=``, ``data=``). Returns the run summary (:func:`run_summary`).
    """
    from monde.train.trainer import train

    if export is None:
        export = exporter(run.out, run.config["model"], meta, **facts)
    result = train(model, source, cfg.train, run.out, config=run.config, meta=meta, quiet=quiet,
                   export=export)
    return run_summary(cfg.recipe, result, run.out, run.resumed)


def prepare_run_dir(out: Path, config: dict, overwrite: bool) -> bool:
    """Create ``out`` or check that it holds this same run. Returns True when resuming."""
    run_file = out / "run.json"
    if out.exists() and overwrite:
        shutil.rmtree(out)
    if run_file.exists():
        try:
            previous = json.loads(run_file.read_text())
        except json.JSONDecodeError as e:
            raise ConfigError(f"{run_file} is corrupt ({e}); choose another --out or pass "
                              "--overwrite to start over there") from e
        if previous != config:
            diff = _first_difference(previous, config)
            raise ConfigError(
                f"{out} holds another run (it differs at {diff}). Choose another --out, pass "
                "--overwrite to replace it, or rerun with the same settings to resume it.")
        return True
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty and is not a monde run folder; choose another "
                          "--out (or pass --overwrite to delete its contents)")
    out.mkdir(parents=True, exist_ok=True)
    tmp = run_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config, indent=2))
    tmp.replace(run_file)
    return False


def _first_difference(a, b, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}".lstrip("."))
    return f"'{path}': {a!r} there, {b!r} now"


def exporter(out: Path, model_config: dict | Callable[[dict], dict], meta: dict, **facts):
    """The trainer's ``export`` callback: write the model folder into ``out``.

    ``config.json`` gets ``meta``, the training facts (steps, time, loss, rank) and ``facts``.
    ``model_config`` may be a function of the trained weights (``state -> dict``) for a model
    that measures something on them before it is saved. A finished run that is rerun trains
    nothing and keeps its export (and training time).
    """
    from monde.train.checkpoint import save_model_folder

    def export(state: dict, result) -> None:
        if result.steps == result.resumed_from and (out / "config.json").is_file():
            return
        config = model_config(state) if callable(model_config) else model_config
        save_model_folder(out, model=state, config={"model": config}, meta={
            **meta, "monde_version": __version__, "steps": result.steps,
            "train_seconds": round(result.seconds, 1), "final_loss": result.final_loss,
            "effective_rank": result.effective_rank, **facts})

    return export


def run_summary(recipe: str, result, out: Path, resumed: bool) -> dict:
    """What ``monde train --json`` prints for a finished run."""
    summary = {"recipe": recipe, **asdict(result), "out": str(out), "resumed": resumed}
    summary["final_loss"] = round(summary["final_loss"], 5)
    return summary
