"""Per-channel z-scoring of sensor values, fitted on training data and saved with the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from monde.errors import ConfigError, DataError


@dataclass
class Normalizer:
    """Per-channel z-scoring fitted on training data, kept with the model."""

    mean: np.ndarray
    """float32 [C] channel means."""
    std: np.ndarray
    """float32 [C] channel standard deviations (1 for constant channels)."""

    @classmethod
    def fit(cls, values: np.ndarray, names: list[str] | None = None) -> Normalizer:
        """Fit on ``values [T, C]``, ignoring NaN; a channel with no reading is an error."""
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 2:
            raise DataError(f"Normalizer.fit takes values [T, C]; got shape {v.shape}")
        finite = np.isfinite(v)
        empty = np.flatnonzero(~finite.any(axis=0))
        if empty.size:
            label = [names[i] if names else f"#{i}" for i in empty[:10]]
            raise DataError(f"cannot normalise channel(s) {', '.join(label)}: they have no "
                            "finite reading; drop them or supply data where they are measured")
        v = np.where(finite, v, np.nan)
        mean = np.nanmean(v, axis=0)
        std = np.nanstd(v, axis=0)
        # A constant channel would divide by ~0; std 1 maps it to 0 instead of inf/NaN.
        std = np.where(std <= 1e-10 * np.maximum(np.abs(mean), 1e-30), 1.0, std)
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def _check(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.shape[-1:] != self.mean.shape:
            raise DataError(f"the normalizer was fitted on {self.mean.shape[0]} channels but the "
                            f"data has shape {x.shape}")
        return x

    def transform(self, values: np.ndarray) -> np.ndarray:
        """z-scores ``(values - mean) / std`` as float32, shape ``[..., C]``; NaN stays NaN."""
        return (self._check(values) - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Back to sensor units: ``z * std + mean``."""
        return self._check(z) * self.std + self.mean

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalizer:
        if not isinstance(d, dict) or set(d) != {"mean", "std"} or len(d["mean"]) != len(d["std"]):
            raise ConfigError("a saved normalizer must be {'mean': [...], 'std': [...]} with one "
                              f"value per channel; got {str(d)[:200]}; refit it with "
                              "Normalizer.fit")
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32))
