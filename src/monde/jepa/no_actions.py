"""What a world model without an action-conditioned predictor says when asked to act."""

from __future__ import annotations

from monde.errors import ConfigError


class WithoutActions:
    """Mixin: ``rollout`` and ``plan`` refuse with one clear message naming the model's recipe
    (``self.meta["recipe"]``) and how to get a model that can act."""

    meta: dict

    def _no_actions(self, what: str) -> str:
        return (f"this model ({self.meta.get('recipe')}) has no action-conditioned predictor, "
                f"so it cannot {what}; train one with `monde train two-rooms --out DIR` (or "
                "run `monde demo`)")

    def rollout(self, *args, **kwargs):
        """Not available: this model has no action-conditioned predictor."""
        raise ConfigError(self._no_actions("roll out actions"))

    def plan(self, *args, **kwargs):
        """Not available: this model has no action-conditioned predictor."""
        raise ConfigError(self._no_actions("plan"))
