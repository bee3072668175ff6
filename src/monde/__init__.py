"""monde: JEPA world models of the physical world.

>>> import monde
>>> model = monde.load("runs/tiny")          # doctest: +SKIP
>>> z = model.encode(video)                  # doctest: +SKIP
"""

__version__ = "0.1.0"


def load(path, device: str = "cpu"):
    """Load a trained model folder; see :func:`monde.jepa.world_model.load`."""
    from monde.jepa.world_model import load as _load

    return _load(path, device)


__all__ = ["__version__", "load"]
