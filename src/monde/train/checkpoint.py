"""Checkpoints that survive a killed process, and the exported model folder users load.

A checkpoint lives in ``run_dir/checkpoints/step_000001000/``::

    model.safetensors      model state dict (tied weights stored once, see ``save_tensors``)
    optimizer.safetensors  optimizer tensors, flattened by :func:`flatten_state`
    rng.safetensors        torch / CUDA generator states
    state.json             step, config, extra, the optimizer and RNG skeletons, versions

Everything is written into a hidden temporary sibling, fsynced, then renamed into place, and
only then is ``checkpoints/latest`` (a text file with the folder name) replaced. A kill at any
moment therefore leaves the previous complete checkpoint or the new complete one.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from monde import __version__
from monde.errors import CheckpointError
from monde.train._ckpt_io import (
    FORMAT_VERSION,
    atomic_write_text,
    capture_rng_state,
    check_format,
    flatten_state,
    fsync_dir,
    load_tensors,
    read_json,
    restore_rng_state,
    save_tensors,
    to_json,
    unflatten_state,
    write_text,
)

__all__ = [
    "Checkpoint",
    "capture_rng_state",
    "flatten_state",
    "latest_checkpoint",
    "load_checkpoint",
    "load_model_folder",
    "restore_rng_state",
    "save_checkpoint",
    "save_model_folder",
    "unflatten_state",
]

_STEP_RE = re.compile(r"^step_(\d+)$")
_STATE, _MODEL, _OPTIM, _RNG = (
    "state.json",
    "model.safetensors",
    "optimizer.safetensors",
    "rng.safetensors",
)


@dataclass
class Checkpoint:
    """One loaded training checkpoint."""

    path: Path
    """The checkpoint folder it was read from (``.../checkpoints/step_000001000``)."""
    step: int
    """Number of optimizer steps completed when it was saved."""
    model: dict[str, torch.Tensor]
    """Model state dict; tied weights come back as the same tensor under both names."""
    optimizer: dict | None
    """Optimizer state dict with its original structure (int ids, tuples), or None."""
    config: dict
    """The run's JSON config as saved."""
    rng: dict | None
    """RNG states for :func:`restore_rng_state`, or None if none were saved."""
    extra: dict
    """Free-form JSON saved with the checkpoint (metrics, recipe name, ...)."""


# ----------------------------------------------------------------------------- checkpoints


def _step_folders(root: Path, complete: bool = True) -> list[tuple[int, Path]]:
    """``(step, folder)`` for every ``step_*`` folder (with a state.json if ``complete``), oldest first."""
    found = []
    for p in root.iterdir() if root.is_dir() else ():
        m = _STEP_RE.match(p.name)
        if m and p.is_dir() and (not complete or (p / _STATE).is_file()):
            found.append((int(m.group(1)), p))
    return sorted(found)


def _pointer(root: Path) -> Path | None:
    try:
        name = (root / "latest").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    # Only trust a plain folder name: a damaged file must not point outside the run.
    return root / name if _STEP_RE.match(name) else None


def latest_checkpoint(run_dir: Path | str) -> Path | None:
    """The newest complete checkpoint folder of ``run_dir``, or None if there is none.

    Follows ``checkpoints/latest``; if it is missing or names a folder that is gone, falls back
    to the highest-step complete ``step_*`` folder. Hidden temporary folders are never returned.
    """
    root = Path(run_dir) / "checkpoints"
    target = _pointer(root)
    if target is not None and (target / _STATE).is_file():
        return target
    found = _step_folders(root)
    return found[-1][1] if found else None


def save_checkpoint(
    run_dir: Path | str,
    *,
    step: int,
    model: dict[str, torch.Tensor],
    optimizer: dict | None,
    config: dict,
    rng: dict | None,
    extra: dict | None = None,
    keep: int = 2,
) -> Path:
    """Atomically save a checkpoint as ``run_dir/checkpoints/step_{step:09d}`` and return it.

    ``optimizer`` is ``optimizer.state_dict()`` (or a gathered FSDP2 one with FQN keys);
    ``config`` and ``extra`` must be JSON-able. Afterwards only the newest ``keep`` complete
    checkpoints remain (the one just written always stays). Saving a step that already exists
    replaces it.
    """
    if not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    root = Path(run_dir) / "checkpoints"
    name = f"step_{step:09d}"
    final, tmp = root / name, root / f".tmp-{name}-{os.getpid()}"
    # Flatten and serialise the small parts first, so a non-JSON config fails before big writes.
    optim_tensors, optim_skeleton = (
        flatten_state(optimizer) if optimizer is not None else ({}, None)
    )
    rng_tensors, rng_skeleton = flatten_state(rng) if rng is not None else ({}, None)
    state = {
        "monde_format": "checkpoint",
        "format_version": FORMAT_VERSION,
        "monde_version": __version__,
        "saved_at": datetime.now(timezone.utc).isoformat(),
        "step": step,
        "config": config,
        "extra": extra or {},
        "optimizer": optim_skeleton,
        "rng": rng_skeleton,
    }
    state_text = to_json(state, "config, extra and the optimizer's non-tensor state")
    try:
        root.mkdir(parents=True, exist_ok=True)
        for p in root.glob(".tmp-*"):  # left behind by a killed save or prune
            shutil.rmtree(p, ignore_errors=True)
        tmp.mkdir()
        save_tensors(tmp / _MODEL, model)
        if optimizer is not None:
            save_tensors(tmp / _OPTIM, optim_tensors)
        if rng is not None:
            save_tensors(tmp / _RNG, rng_tensors)
        write_text(tmp / _STATE, state_text)  # written last: its presence marks completeness
        fsync_dir(tmp)
        old = root / f".tmp-old-{name}-{os.getpid()}"
        if final.exists():  # os.rename cannot replace a non-empty folder
            os.rename(final, old)
        os.rename(tmp, final)
        fsync_dir(root)
        atomic_write_text(root / "latest", name + "\n")
        shutil.rmtree(old, ignore_errors=True)
        _prune(root, final, keep)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(
            f"could not write checkpoint {final} ({e}); check free disk space and write "
            f"permission for {run_dir}."
        ) from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _prune(root: Path, keep_this: Path, keep: int) -> None:
    others = [p for _, p in _step_folders(root) if p != keep_this]
    for p in others[: max(len(others) - (keep - 1), 0)]:
        # Rename first so no half-deleted step folder is ever visible to a loader.
        doomed = root / f".tmp-del-{p.name}-{os.getpid()}"
        os.rename(p, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def _load_folder(folder: Path, device: str) -> Checkpoint:
    todo = (
        f"delete {folder} to fall back to the previous checkpoint, point --resume at an earlier "
        f"checkpoint, or delete the run folder to start over"
    )
    state = read_json(folder / _STATE, todo)
    check_format(state, folder / _STATE, "checkpoint", todo)
    try:
        step, config, extra = int(state["step"]), state["config"], state["extra"]
        optim_skel, rng_skel = state["optimizer"], state["rng"]
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{folder / _STATE} lacks a valid entry {e}; {todo}.") from e
    model = load_tensors(folder / _MODEL, device, todo)
    optimizer = rng = None
    try:
        if optim_skel is not None:
            optimizer = unflatten_state(load_tensors(folder / _OPTIM, device, todo), optim_skel)
        if rng_skel is not None:  # generator states must live on the CPU whatever the device
            rng = unflatten_state(load_tensors(folder / _RNG, "cpu", todo), rng_skel)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{folder} is inconsistent: {e!r} is missing; {todo}.") from e
    return Checkpoint(folder, step, model, optimizer, config, rng, extra)


def load_checkpoint(path: Path | str, *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint folder, or the latest checkpoint of a run folder.

    Tensors go to ``map_location`` (RNG states always stay on the CPU). For a run folder, if
    the latest checkpoint is unreadable, older complete ones are tried in turn, each fallback
    reported with ``warnings.warn``; :class:`CheckpointError` if none can be read.
    """
    path, device = Path(path), str(map_location)
    if not path.exists():
        raise CheckpointError(
            f"no checkpoint at {path}; check the path, or start without --resume."
        )
    if (path / _STATE).exists() or _STEP_RE.match(path.name):
        return _load_folder(path, device)
    root = path if path.name == "checkpoints" else path / "checkpoints"
    if not root.is_dir():
        raise CheckpointError(
            f"{path} is neither a checkpoint folder (with {_STATE}) nor a run folder (with "
            f"checkpoints/); point --resume at one of those."
        )
    target = _pointer(root)
    found = [p for _, p in reversed(_step_folders(root))]
    if target is not None and target.is_dir():
        # Only fall back to *older* checkpoints than the one `latest` names.
        step = int(_STEP_RE.match(target.name).group(1))
        found = [target] + [p for p in found if int(p.name[5:]) < step]
    if not found:
        raise CheckpointError(
            f"run folder {path} has no complete checkpoint yet; start without --resume, or "
            f"delete the folder to start over."
        )
    first_error: CheckpointError | None = None
    for i, folder in enumerate(found):
        try:
            return _load_folder(folder, device)
        except CheckpointError as e:
            first_error = first_error or e
            if i + 1 < len(found):
                warnings.warn(
                    f"checkpoint {folder} is unreadable ({e}); falling back to the older "
                    f"checkpoint {found[i + 1]}.",
                    stacklevel=2,
                )
    assert first_error is not None
    raise first_error


# ----------------------------------------------------------------------------- model folders


def save_model_folder(
    out_dir: Path | str, *, model: dict[str, torch.Tensor], config: dict, meta: dict
) -> None:
    """Export a Hugging Face–style folder: ``model.safetensors`` + ``config.json``.

    ``config.json`` holds the format markers, ``monde_version``, every key of ``meta`` (e.g.
    recipe, modality, steps; ``meta`` may override ``monde_version``) and ``"config"``. Each
    file is replaced atomically, so other files already in the folder (README, plots) stay.
    """
    clash = {"monde_format", "format_version", "config"} & meta.keys()
    if clash:
        raise ValueError(f"meta may not use the reserved keys {sorted(clash)}")
    doc = {"monde_format": "model", "format_version": FORMAT_VERSION, "monde_version": __version__}
    text = to_json({**doc, **meta, "config": config}, "config and meta")
    out = Path(out_dir)
    tmp = out / f".{_MODEL}.tmp-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        save_tensors(tmp, model)
        os.replace(tmp, out / _MODEL)
        atomic_write_text(out / "config.json", text)  # last: marks the export as complete
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(
            f"could not write the model folder {out} ({e}); check free disk space and write "
            f"permission, or choose another output folder."
        ) from e


def load_model_folder(path: Path | str) -> tuple[dict[str, torch.Tensor], dict]:
    """Load an exported model folder → ``(weights on CPU, config.json contents)``."""
    p = Path(path)
    if p.is_file() and p.name in (_MODEL, "config.json"):
        p = p.parent
    what = "a monde model folder holds model.safetensors and config.json"
    if not p.is_dir():
        raise CheckpointError(f"no model folder at {p}; check the path ({what}).")
    if not (p / "config.json").is_file():
        hint = what
        if (p / _STATE).is_file() or (p / "checkpoints").is_dir():
            hint = "this is a training checkpoint or run folder: load it with load_checkpoint, or export it first"
        raise CheckpointError(f"{p} has no config.json, so it is not a monde model folder; {hint}.")
    todo = f"re-export the model into {p}, or point at another model folder"
    cfg = read_json(p / "config.json", todo)
    check_format(
        cfg, p / "config.json", "model", f"{todo} (it may be a model saved by another library)"
    )
    if not isinstance(cfg.get("config"), dict):
        raise CheckpointError(f'{p / "config.json"} has no "config" object; {todo}.')
    return load_tensors(p / _MODEL, "cpu", todo), cfg
