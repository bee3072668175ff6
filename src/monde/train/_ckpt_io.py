"""Nested-state flattening, RNG capture and crash-safe file I/O behind :mod:`monde.train.checkpoint`.

Kept apart so ``checkpoint.py`` reads as the checkpoint layout and policy only; import the
public names from :mod:`monde.train.checkpoint`.
"""

from __future__ import annotations

import json
import os
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from monde import __version__
from monde.errors import CheckpointError

FORMAT_VERSION = 1
"""Version of the on-disk layout; readers refuse files with a higher one."""


# ----------------------------------------------------------------------------- nested state

# Skeleton markers. Any JSON object in a skeleton with exactly one of these keys is a marker;
# plain dicts that would look like one are stored in the "__dict__" pair form instead.
_TENSOR, _TUPLE, _DICT = "__tensor__", "__tuple__", "__dict__"


def flatten_state(obj: Any) -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested dict/list/tuple of tensors and JSON scalars into (tensors, skeleton).

    Tensors are keyed by their path (``"state/0/exp_avg"``) and replaced in the JSON-able
    skeleton by ``{"__tensor__": key}``. Tuples become ``{"__tuple__": [...]}``; dicts with
    non-string keys (the optimizer's int param ids) become ``{"__dict__": [[key, value], ...]}``
    so the key types survive JSON. :func:`unflatten_state` inverts this exactly.
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(x: Any, path: str) -> Any:
        if isinstance(x, torch.Tensor):
            key = path or "tensor"
            while key in tensors:  # e.g. keys 0 and "0" in one dict share a path
                key += "~"
            tensors[key] = x
            return {_TENSOR: key}
        if isinstance(x, np.generic):
            x = x.item()
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        sub = f"{path}/" if path else ""
        if isinstance(x, (list, tuple)):
            items = [walk(v, f"{sub}{i}") for i, v in enumerate(x)]
            return {_TUPLE: items} if isinstance(x, tuple) else items
        if isinstance(x, dict):
            pairs = []
            for k, v in x.items():
                if not (k is None or isinstance(k, (bool, int, float, str))):
                    raise TypeError(f"key {k!r} at {path or '<root>'!r} is not a JSON scalar")
                pairs.append([k, walk(v, f"{sub}{k}")])
            if all(isinstance(k, str) for k in x) and not {_TENSOR, _TUPLE, _DICT} & x.keys():
                return dict(pairs)
            return {_DICT: pairs}
        raise TypeError(f"cannot store a {type(x).__name__} at {path or '<root>'!r}")

    return tensors, walk(obj, "")


def unflatten_state(tensors: dict[str, torch.Tensor], skeleton: Any) -> Any:
    """Rebuild the nested object saved by :func:`flatten_state` (KeyError if a tensor is missing)."""
    if isinstance(skeleton, list):
        return [unflatten_state(tensors, v) for v in skeleton]
    if not isinstance(skeleton, dict):
        return skeleton
    if len(skeleton) == 1:
        ((k, v),) = skeleton.items()
        if k == _TENSOR:
            return tensors[v]
        if k == _TUPLE:
            return tuple(unflatten_state(tensors, x) for x in v)
        if k == _DICT:
            return {key: unflatten_state(tensors, x) for key, x in v}
    return {k: unflatten_state(tensors, v) for k, v in skeleton.items()}


def capture_rng_state() -> dict[str, Any]:
    """Python ``random``, NumPy's global generator, torch CPU (and every CUDA device) states.

    Returns JSON-able values plus uint8 tensors, ready for :func:`flatten_state`. Under
    distributed training each rank has its own states; this captures the calling rank's.
    """
    version, internal, gauss = random.getstate()
    kind, key, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {
            "bit_generator": kind,
            "key": key.tolist(),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Restore what :func:`capture_rng_state` returned; absent entries are left alone."""
    try:
        if "python" in state:
            version, internal, gauss = state["python"]
            random.setstate((version, tuple(internal), gauss))
        if "numpy" in state:
            n = state["numpy"]
            np.random.set_state(
                (
                    n["bit_generator"],
                    np.asarray(n["key"], dtype=np.uint32),
                    n["pos"],
                    n["has_gauss"],
                    n["cached_gaussian"],
                )
            )
        if "torch" in state:
            torch.set_rng_state(state["torch"].to("cpu", torch.uint8))
        cuda = state.get("cuda") or []
        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if len(cuda) != have and cuda:
            warnings.warn(
                f"the checkpoint has RNG states for {len(cuda)} CUDA devices but "
                f"{have} are visible; GPU randomness will not continue exactly.",
                stacklevel=2,
            )
        for i, s in enumerate(cuda[:have]):
            torch.cuda.set_rng_state(s.to("cpu", torch.uint8), i)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        raise CheckpointError(
            f"the saved random-number-generator state is malformed ({e!r}); "
            "the checkpoint may be corrupt: resume from an earlier one."
        ) from e


# ----------------------------------------------------------------------------- low-level I/O


def fsync_dir(path: Path) -> None:
    # A rename is only durable once the directory entry itself reaches the disk.
    if os.name == "posix":
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def to_json(obj: Any, what: str) -> str:
    try:
        return json.dumps(obj, indent=1)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"{what} must be JSON-able (dicts, lists, str, numbers, bool, None): {e}"
        ) from e


def write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write_text(tmp, text)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write ``tensors`` (any devices, shapes, dtypes incl. bf16) to a safetensors file.

    Safetensors refuses tensors that share memory or are not contiguous. Exact aliases (tied
    weights: same storage, offset, shape, stride, dtype) are stored once and recorded in the
    file's metadata so loading gives one tensor under both names again; partial overlaps
    (views of one buffer) are cloned.
    """
    out: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    exact: dict[tuple, str] = {}
    storages: set[tuple] = set()
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name!r} is a {type(t).__name__}, expected a torch.Tensor")
        t = t.detach()
        shared = False
        if t.numel() > 0:  # empty tensors may all report data_ptr 0
            ptr = (t.device, t.untyped_storage().data_ptr())
            ident = (*ptr, t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
            if ident in exact:
                aliases[name] = exact[ident]
                continue
            exact[ident] = name
            shared = ptr in storages
            storages.add(ptr)
        t = t.to("cpu")
        out[name] = t.clone() if shared else t.contiguous()
    save_file(out, str(path), metadata={"format": "pt", "monde_aliases": json.dumps(aliases)})
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def load_tensors(path: Path, device: str, todo: str) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; {todo}.")
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            meta = f.metadata() or {}
            out = {k: f.get_tensor(k) for k in f.keys()}
        for alias, source in json.loads(meta.get("monde_aliases", "{}")).items():
            out[alias] = out[source]
    except (SafetensorError, OSError, ValueError, RuntimeError, KeyError) as e:
        raise CheckpointError(
            f"{path} is truncated or corrupt and cannot be read ({e}); {todo}."
        ) from e
    return out


def read_json(path: Path, todo: str) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; {todo}.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(
            f"{path} is truncated or corrupt and cannot be read ({e}); {todo}."
        ) from e


def check_format(doc: Any, path: Path, kind: str, todo: str) -> None:
    if not isinstance(doc, dict) or doc.get("monde_format") != kind:
        raise CheckpointError(
            f'{path} is not a monde {kind} file (no "monde_format": "{kind}"); {todo}.'
        )
    version = doc.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError(f"{path} has no valid format_version; {todo}.")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {version!r}, but this monde ({__version__}) reads up to "
            f"{FORMAT_VERSION}; upgrade monde (pip install -U monde)."
        )
