"""Seeds or generators: every built-in world accepts either."""

from __future__ import annotations

import numpy as np


def as_rng(rng: np.random.Generator | int) -> np.random.Generator:
    """``rng`` itself if it is a Generator, else a new one seeded with it."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
