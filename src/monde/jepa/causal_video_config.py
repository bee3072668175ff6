"""Configuration of the frame-causal video JEPA (:mod:`monde.jepa.causal_video`)."""

from __future__ import annotations

from dataclasses import dataclass

from monde.nn.convnet import feature_side


@dataclass
class CausalVideoConfig:
    """Sizes and loss weights of a frame-causal video JEPA."""

    kind: str = "video-causal"
    """Marks the model family in saved configs (do not change)."""
    channels: int = 3
    """Image channels."""
    size: int = 64
    """Frame side in pixels (square frames)."""
    context: int = 8
    """Frames the predictor sees before the one it forecasts."""
    rollout: int = 3
    """Frames forecast per training clip (clips have ``context + rollout`` frames)."""
    widths: tuple[int, ...] = (32, 64, 64)
    """Channels of the encoder's stride-2 convolutions (3 of them: 8×8 cells at 64×64)."""
    map_channels: int = 16
    """Channels of a frame's latent map."""
    predictor_hidden: int = 64
    """Channels of the predictor's hidden convolutions."""
    predictor_layers: int = 5
    """Convolutions in the predictor (with ``predictor="recurrent"``: in its read-out head)."""
    predictor: str = "history"
    """``history``: the K most recent maps stacked as channels, one pass of convolutions
    (:class:`~monde.nn.convnet.HistoryConvPredictor`). ``recurrent``: a convolutional GRU
    state that takes in the K maps one at a time and runs on through a rollout
    (:class:`~monde.nn.convgru.RecurrentConvPredictor`), so a hidden object can be carried
    frame by frame."""
    memory: str = "window"
    """``window``: every forecast is made from the K maps before it and nothing older (a
    recurrent predictor's state starts afresh for each). ``stream`` (recurrent predictor
    only): the state runs from the first frame of a clip or video, so what it carries — a ball
    hidden for longer than K frames — is not cut off at K. Training then forecasts every frame
    of the clip from all frames before it and rolls out ``rollout`` frames from every
    ``rollout_every``-th frame after the first K (clips may be longer than ``context +
    rollout``); K only says where scoring starts."""
    rollout_every: int = 4
    """With ``memory="stream"``: frames between the starts of the training rollouts."""
    clip: int = 0
    """Frames per training clip; 0: ``context + rollout``. Only ``memory="stream"`` may train
    on longer clips (the state then learns to carry things for longer)."""
    target: str = "latent"
    """``latent`` (JEPA) or ``pixels`` (the generative baseline: decode, compare pixels)."""
    rollout_weight: float = 1.0
    """Weight of the free-running rollout loss (teacher forcing has weight 1)."""
    std_weight: float = 10.0
    """VICReg variance term (latent target only)."""
    cov_weight: float = 1.0
    """VICReg covariance term (latent target only)."""
    target_grad: bool = True
    """Let the forecast losses shape the encoded *target* maps as well as the context maps.
    False detaches the targets (stop-gradient, as in SimSiam / BYOL without the EMA): the
    encoder then cannot make a hard-to-forecast frame cheaper by encoding less of it (a ball
    coming out from behind an occluder); VICReg still holds every map against collapse."""
    surprise_blur: int = 0
    """Spatial tolerance of surprise, in cells: the forecast and the observed frame are both
    averaged over (2b+1)² neighbourhoods of cells (for the pixel target: the decoded and the
    observed frame's pixels averaged over the same areas) before they are compared, so that an object forecast a cell away from where it shows
    up is not scored as a violation. 0 compares cell by cell."""
    surprise_horizon: int = 1
    """Forecast lengths a frame's surprise averages over (latent target only): frame *t* is
    also forecast open-loop from the context that ended 2, 3 … ``surprise_horizon`` frames
    earlier, each error divided by ``step_scale`` (its typical size at that lead on training
    clips) before the average. A ball that hovers or falls upward differs from a free fall by
    a fraction of a cell per frame, but by several cells after a few frames."""
    step_scale: tuple[float, ...] = ()
    """Median per-frame error at each lead 1 … ``surprise_horizon`` on training clips, measured
    at the end of training (:func:`calibrate_step_scale`); empty before that."""

    @property
    def clip_frames(self) -> int:
        """Frames per training clip."""
        return self.clip or self.context + self.rollout

    @property
    def map_side(self) -> int:
        return feature_side(self.size, len(self.widths))

    @property
    def pixels(self) -> bool:
        return self.target == "pixels"

    def validate(self) -> None:
        """Raise :class:`~monde.errors.ConfigError` on settings that cannot train."""
        from monde.errors import ConfigError

        if self.target not in ("latent", "pixels"):
            raise ConfigError(f"model.target must be 'latent' or 'pixels', got {self.target!r}")
        if self.context < 1 or self.rollout < 1:
            raise ConfigError(f"model.context and model.rollout must be >= 1, got "
                              f"{self.context} and {self.rollout}")
        if self.size % 2 ** len(self.widths):
            raise ConfigError(f"model.size ({self.size}) must be a multiple of "
                              f"{2 ** len(self.widths)} (one halving per entry of model.widths)")
        if self.predictor_layers < 2:
            raise ConfigError("model.predictor_layers must be >= 2")
        if self.predictor not in ("history", "recurrent"):
            raise ConfigError(f"model.predictor must be 'history' or 'recurrent', got "
                              f"{self.predictor!r}")
        if self.memory not in ("window", "stream"):
            raise ConfigError(f"model.memory must be 'window' or 'stream', got {self.memory!r}")
        if self.memory == "stream" and self.predictor != "recurrent":
            raise ConfigError("model.memory=stream needs model.predictor=recurrent (only a "
                              "recurrent state can carry a stream)")
        if self.clip and (self.clip < self.context + self.rollout
                          or (self.memory == "window" and self.clip != self.context + self.rollout)):
            raise ConfigError(f"model.clip ({self.clip}) must be 0 or context + rollout "
                              f"({self.context + self.rollout}); longer clips need "
                              "model.memory=stream")
        if self.rollout_every < 1:
            raise ConfigError(f"model.rollout_every must be >= 1, got {self.rollout_every}")
        if self.surprise_blur < 0:
            raise ConfigError(f"model.surprise_blur must be >= 0, got {self.surprise_blur}")
        if self.surprise_horizon < 1 or (self.surprise_horizon > 1 and self.pixels):
            raise ConfigError(f"model.surprise_horizon must be >= 1 (and 1 for the pixel "
                              f"target), got {self.surprise_horizon}")
