"""A small on-disk cache for arrays that are slow to make and cheap to keep (simulator runs).

Entries are ``.npz`` files named by a hash of what made them (a JSON-able key: settings,
seeds, the generator's version), under ``$MONDE_CACHE`` — by default
``$XDG_CACHE_HOME/monde`` or ``~/.cache/monde``; ``MONDE_CACHE=off`` turns caching off.
A write goes to a temporary file first and is renamed into place, so an interrupted run
never leaves a half-written entry; an entry that does not read back (truncated, corrupt,
missing arrays) is made again and replaced, with a warning — nothing is lost but time.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

OFF = {"0", "off", "false", "no", "none"}


def cache_root() -> Path | None:
    """The cache folder, or ``None`` when ``MONDE_CACHE`` turns caching off."""
    env = os.environ.get("MONDE_CACHE")
    if env is not None:
        return None if env.strip().lower() in OFF or not env.strip() else Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = Path.home() / ".cache"
        except RuntimeError:  # no home directory to put it in: run without a cache
            return None
    return Path(base) / "monde"


def key_digest(key: dict) -> str:
    """16 hex digits naming ``key`` (its canonical JSON)."""
    text = json.dumps(key, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            if not set(names) <= set(f.files):
                raise KeyError(f"missing {sorted(set(names) - set(f.files))}")
            return {n: f[n] for n in f.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        warnings.warn(f"cache entry {path} does not read back ({e}); making it again",
                      stacklevel=3)
        return None


def cached_arrays(kind: str, key: dict, make: Callable[[], dict[str, np.ndarray]],
                  names: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """``make()``'s arrays, read from the cache entry of ``(kind, key)`` when one exists.

    ``names``: arrays an entry must hold to count (an entry without them is made again).
    With caching off, or a cache folder that cannot be written, this is ``make()``."""
    root = cache_root()
    if root is None:
        return make()
    path = root / kind / f"{key_digest({'kind': kind, **key})}.npz"
    if path.is_file():
        got = _read(path, names)
        if got is not None:
            return got
    arrays = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError as e:  # a read-only home or a full disk costs the cache, not the run
        warnings.warn(f"could not write the cache entry {path} ({e}); set MONDE_CACHE to a "
                      "writable folder, or MONDE_CACHE=off", stacklevel=2)
    return arrays
