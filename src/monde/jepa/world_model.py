"""``WorldModel``: what a user holds after training, or after ``monde.load(path)``."""

from __future__ import annotations

from pathlib import Path

import torch

from monde.config import from_dict
from monde.errors import CheckpointError, ConfigError, DataError
from monde.jepa.config import ModelConfig
from monde.jepa.model import JEPA


class WorldModel:
    """A trained JEPA, ready to use: encode observations into latents.

    Later capabilities (prediction, rollouts, surprise, planning) hang off this object.
    """

    def __init__(self, jepa: JEPA, meta: dict | None = None):
        self.jepa = jepa.eval()
        self.meta = meta or {}

    @property
    def config(self) -> ModelConfig:
        return self.jepa.cfg

    @property
    def encoder(self):
        return self.jepa.inference_encoder()

    def _prepare(self, obs) -> torch.Tensor:
        """Accept ``[T, C, H, W]`` or ``[B, T, C, H, W]`` video, uint8 (0–255) or float (0–1)."""
        enc = self.config.encoder
        x = torch.as_tensor(obs)
        if enc.modality == "video":
            if x.dim() == 4:
                x = x.unsqueeze(0)
            if x.dim() != 5:
                raise DataError(f"this model encodes video [B, T, C, H, W]; got shape {tuple(x.shape)}")
            want = (enc.frames, enc.channels, enc.height, enc.width)
            if tuple(x.shape[1:]) != want:
                raise DataError(
                    f"this model was trained on clips of {enc.frames} frames, {enc.channels} "
                    f"channels, {enc.height}x{enc.width}; got {tuple(x.shape[1:])}. Resize or "
                    "cut the clips to match (monde.data.read_video(path, size=...)).")
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return x.to(next(self.jepa.parameters()).device)

    @torch.no_grad()
    def encode(self, obs, *, pool: bool = False) -> torch.Tensor:
        """Latents of observations.

        Args:
            obs: video ``[B, T, C, H, W]`` or ``[T, C, H, W]`` (uint8 or float in [0, 1]).
            pool: average over tokens.

        Returns:
            ``[B, N, D]`` token latents, or ``[B, D]`` when ``pool``.
        """
        z = self.encoder.encode(self._prepare(obs))
        return z.mean(dim=1) if pool else z

    def rollout(self, *args, **kwargs):
        """Not available: this model has no action-conditioned predictor."""
        raise ConfigError(self._no_actions("roll out actions"))

    def plan(self, *args, **kwargs):
        """Not available: this model has no action-conditioned predictor."""
        raise ConfigError(self._no_actions("plan"))

    def _no_actions(self, what: str) -> str:
        return (f"this model ({self.meta.get('recipe')}) has no action-conditioned predictor, "
                f"so it cannot {what}; train one with `monde train two-rooms --out DIR` (or "
                "run `monde demo`)")

    def to(self, device) -> WorldModel:
        self.jepa.to(device)
        return self

    def __repr__(self) -> str:
        e = self.config.encoder
        return (f"WorldModel({e.modality}, {e.frames}x{e.height}x{e.width}, dim={e.dim}, "
                f"depth={e.depth}, recipe={self.meta.get('recipe')!r}, steps={self.meta.get('steps')})")


def load(path: str | Path, device: str = "cpu") -> WorldModel:
    """Load a model folder written by ``monde train`` (``model.safetensors`` + ``config.json``)."""
    from monde.train.checkpoint import load_model_folder

    weights, config = load_model_folder(Path(path))
    if "model" not in config["config"]:
        raise CheckpointError(f"{path}/config.json has no model config: it was not written by "
                              "monde train. Point at the --out folder of a monde training run.")
    meta = {k: v for k, v in config.items() if k != "config"}
    kind = config["config"]["model"].get("kind")
    if kind == "action":
        return _load_action_model(path, weights, config["config"]["model"], meta).to(device)
    if kind == "sensors":
        return _load_sensor_model(path, weights, config["config"]["model"], meta).to(device)
    cfg = from_dict(ModelConfig, config["config"]["model"], where="model")
    jepa = JEPA(cfg)
    _load_weights(jepa, weights, path)
    return WorldModel(jepa, meta).to(device)


def _load_action_model(path, weights: dict, model_cfg: dict, meta: dict):
    from monde.jepa.action_model import ActionJEPA, ActionModelConfig
    from monde.jepa.action_world_model import ActionWorldModel

    net = ActionJEPA(from_dict(ActionModelConfig, model_cfg, where="model"))
    _load_weights(net, weights, path)
    return ActionWorldModel(net, meta)


def _load_sensor_model(path, weights: dict, model_cfg: dict, meta: dict):
    from monde.jepa.sensor_model import SensorJEPA, SensorModelConfig
    from monde.jepa.sensor_world_model import SensorWorldModel

    net = SensorJEPA(from_dict(SensorModelConfig, model_cfg, where="model"))
    # Folders saved before the forecast read-out existed load without it (forecast then says so).
    for name in ("decoder", "decoder_ready"):
        weights.setdefault(name, getattr(net, name))
    _load_weights(net, weights, path)
    return SensorWorldModel(net, meta)


def _load_weights(net: torch.nn.Module, weights: dict, path) -> None:
    missing, unexpected = net.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}/model.safetensors does not fit its config.json "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]}); the folder "
                              "is damaged or mixed from two runs — retrain or restore it")
