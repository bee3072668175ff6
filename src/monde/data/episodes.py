"""Offline episodes on disk: a chunked, memory-mappable format, its writer, reader and sampler.

Format ``monde-episodes`` version 1 — a folder::

    manifest.json                 written last: a folder without it is incomplete
    chunk-00000/obs.npy           uint8   [E, T+1, C, H, W]   observations o_0 … o_T
    chunk-00000/actions.npy       float32 [E, T, A]           a_t takes o_t to o_{t+1}
    chunk-00000/proprio.npy       float32 [E, T+1, P]         proprioception with each o_t
    chunk-00001/…

Every episode has the same length ``T`` (``steps``). ``manifest.json`` holds
``{"monde_format": "episodes", "format_version": 1, "world", "world_config", "policy",
"seed", "episodes", "steps", "obs_shape", "action_dim", "proprio_dim", "chunks": [{"name",
"episodes"}], ...}``. Plain ``.npy`` files open with ``numpy.load(mmap_mode="r")``, so a
dataset larger than memory is read lazily, and any tool that reads NumPy reads it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from monde import __version__
from monde.errors import DataError

FORMAT = "episodes"
FORMAT_VERSION = 1
_ARRAYS = ("obs", "actions", "proprio")


class EpisodeWriter:
    """Write episodes chunk by chunk; :meth:`close` writes the manifest that completes them."""

    def __init__(self, out: Path | str, meta: dict):
        self.out = Path(out)
        if (self.out / "manifest.json").exists():
            raise DataError(f"{self.out} already holds an episode dataset; choose another --out "
                            "or delete it first")
        self.out.mkdir(parents=True, exist_ok=True)
        self.meta = dict(meta)
        self.chunks: list[dict] = []
        self.shapes: tuple | None = None

    def add(self, obs: np.ndarray, actions: np.ndarray, proprio: np.ndarray) -> None:
        """Append a chunk of ``E`` episodes (shapes in the module docstring)."""
        obs = np.ascontiguousarray(obs, dtype=np.uint8)
        actions = np.ascontiguousarray(actions, dtype=np.float32)
        proprio = np.ascontiguousarray(proprio, dtype=np.float32)
        e, t1 = obs.shape[:2]
        if actions.shape[:2] != (e, t1 - 1) or proprio.shape[:2] != (e, t1):
            raise DataError(f"episode arrays disagree: obs {obs.shape}, actions {actions.shape}, "
                            f"proprio {proprio.shape}")
        shapes = (obs.shape[1:], actions.shape[2:], proprio.shape[2:])
        if self.shapes is not None and shapes != self.shapes:
            raise DataError(f"chunk shapes {shapes} differ from the first chunk's {self.shapes}")
        self.shapes = shapes
        name = f"chunk-{len(self.chunks):05d}"
        folder = self.out / name
        folder.mkdir(exist_ok=True)
        for key, arr in zip(_ARRAYS, (obs, actions, proprio)):
            tmp = folder / f".{key}.tmp.npy"
            np.save(tmp, arr)
            os.replace(tmp, folder / f"{key}.npy")
        self.chunks.append({"name": name, "episodes": int(e)})

    def close(self) -> dict:
        """Write ``manifest.json`` (atomically) and return it."""
        if not self.chunks:
            raise DataError("no episodes were written")
        (t1, *obs_shape), (a,), (p,) = self.shapes
        manifest = {"monde_format": FORMAT, "format_version": FORMAT_VERSION,
                    "monde_version": __version__, **self.meta,
                    "episodes": sum(c["episodes"] for c in self.chunks), "steps": t1 - 1,
                    "obs_shape": list(obs_shape), "action_dim": a, "proprio_dim": p,
                    "chunks": self.chunks}
        tmp = self.out / ".manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=2))
        os.replace(tmp, self.out / "manifest.json")
        return manifest


class EpisodeDataset:
    """Read a ``monde-episodes`` folder; arrays are memory-mapped, nothing is loaded up front."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.manifest = _read_manifest(self.path)
        m = self.manifest
        self.steps, self.action_dim, self.proprio_dim = m["steps"], m["action_dim"], m["proprio_dim"]
        self.obs_shape = tuple(m["obs_shape"])
        self._arrays: list[dict[str, np.ndarray]] = []
        self._offsets = np.cumsum([0] + [c["episodes"] for c in m["chunks"]])
        for c in m["chunks"]:
            self._arrays.append(self._open_chunk(c))

    def _open_chunk(self, chunk: dict) -> dict[str, np.ndarray]:
        arrays = {}
        e, t = chunk["episodes"], self.steps
        want = {"obs": (e, t + 1, *self.obs_shape), "actions": (e, t, self.action_dim),
                "proprio": (e, t + 1, self.proprio_dim)}
        for key in _ARRAYS:
            f = self.path / chunk["name"] / f"{key}.npy"
            try:
                arr = np.load(f, mmap_mode="r")
            except (OSError, ValueError) as err:
                raise DataError(f"{f} is missing or unreadable ({err}); the dataset at "
                                f"{self.path} is damaged — collect it again") from err
            if arr.shape != want[key]:
                raise DataError(f"{f} has shape {arr.shape} but the manifest says {want[key]}; "
                                "the dataset is damaged — collect it again")
            arrays[key] = arr
        return arrays

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def locate(self, index: int) -> tuple[dict[str, np.ndarray], int]:
        """The chunk arrays holding episode ``index`` and its row in them."""
        if not 0 <= index < len(self):
            raise IndexError(f"episode {index} out of range (dataset has {len(self)})")
        c = int(np.searchsorted(self._offsets, index, side="right") - 1)
        return self._arrays[c], index - int(self._offsets[c])

    def episode(self, index: int) -> dict[str, np.ndarray]:
        """One whole episode: ``obs [T+1, C, H, W]``, ``actions [T, A]``, ``proprio [T+1, P]``."""
        arrays, row = self.locate(index)
        return {k: np.asarray(v[row]) for k, v in arrays.items()}

    def check_action_dim(self, action_dim: int, what: str = "the model") -> None:
        """Raise a clear error when the dataset's action size is not ``action_dim``."""
        if self.action_dim != action_dim:
            raise DataError(f"the dataset at {self.path} has {self.action_dim}-D actions but "
                            f"{what} takes {action_dim}-D actions; collect data from the same "
                            "world, or train a model for this one")


def _read_manifest(path: Path) -> dict:
    f = path / "manifest.json"
    if not path.is_dir():
        raise DataError(f"no episode dataset at {path}: the folder does not exist (make one with "
                        "`monde data collect WORLD --out DIR`)")
    if not f.is_file():
        raise DataError(f"{path} is not a monde episode dataset (it has no manifest.json); make "
                        "one with `monde data collect WORLD --out DIR`, or the collection there "
                        "was interrupted — run it again")
    try:
        m = json.loads(f.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{f} is unreadable ({e}); collect the dataset again") from e
    if not isinstance(m, dict) or m.get("monde_format") != FORMAT:
        raise DataError(f"{f} does not describe a monde episode dataset "
                        f"(monde_format={m.get('monde_format') if isinstance(m, dict) else None!r})")
    if m.get("format_version", 0) > FORMAT_VERSION:
        raise DataError(f"{path} was written by a newer monde (format version "
                        f"{m['format_version']}); upgrade monde to read it")
    missing = [k for k in ("steps", "obs_shape", "action_dim", "proprio_dim", "chunks") if k not in m]
    if missing:
        raise DataError(f"{f} lacks {missing}; the dataset is damaged — collect it again")
    return m


@dataclass
class WindowSpec:
    """How training windows are cut from episodes."""

    chunks: int = 8
    """Predicted transitions per window (the window holds ``chunks + 1`` observations)."""
    frameskip: int = 4
    """Environment steps per transition; their actions are concatenated (``[k * A]``)."""


class EpisodeWindows:
    """A deterministic batch source of windows for the trainer.

    ``batch(step, B, rank)`` returns ``{"obs": uint8 [B, n+1, C, H, W], "actions": float32
    [B, n, k*A], "proprio": float32 [B, n+1, P]}`` with ``n = spec.chunks``, ``k =
    spec.frameskip``: observations every ``k`` steps, and the ``k`` actions between two of them.
    The same ``(seed, step, rank)`` always gives the same batch, so resumed runs are exact.
    """

    def __init__(self, data: EpisodeDataset, spec: WindowSpec, seed: int = 0,
                 episodes: np.ndarray | None = None):
        span = spec.chunks * spec.frameskip
        if span > data.steps:
            raise DataError(f"windows of {spec.chunks} x {spec.frameskip} steps do not fit the "
                            f"dataset's {data.steps}-step episodes; collect longer episodes or "
                            "lower data.chunks / model.frameskip")
        self.data, self.spec, self.seed, self.span = data, spec, seed, span
        self.episodes = np.arange(len(data)) if episodes is None else np.asarray(episodes)

    def batch(self, step: int, batch_size: int, rank: int = 0) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step, rank])
        eps = self.episodes[rng.integers(0, len(self.episodes), size=batch_size)]
        starts = rng.integers(0, self.data.steps - self.span + 1, size=batch_size)
        k, n = self.spec.frameskip, self.spec.chunks
        obs, act, pro = [], [], []
        for e, s in zip(eps, starts):
            arrays, row = self.data.locate(int(e))
            obs.append(arrays["obs"][row, s:s + self.span + 1:k])
            act.append(np.asarray(arrays["actions"][row, s:s + self.span]).reshape(n, -1))
            pro.append(arrays["proprio"][row, s:s + self.span + 1:k])
        return {"obs": torch.from_numpy(np.stack(obs)), "actions": torch.from_numpy(np.stack(act)),
                "proprio": torch.from_numpy(np.stack(pro))}
