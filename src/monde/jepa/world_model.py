"""``WorldModel``: what a user holds after training, or after ``monde.load(path)``."""

from __future__ import annotations

from pathlib import Path

import torch

from monde.config import from_dict
from monde.errors import CheckpointError, ConfigError, DataError
from monde.jepa.config import ModelConfig
from monde.jepa.model import JEPA
from monde.jepa.no_actions import WithoutActions


class WorldModel(WithoutActions):
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

    @property
    def modality(self) -> str:
        """``video`` or ``audio``."""
        return self.config.encoder.modality

    @property
    def target(self) -> str:
        """What the predictor regresses: ``latent`` (JEPA) or ``pixels`` (generative baseline)."""
        return self.config.objective.target

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of a video model's frames."""
        e = self.config.encoder
        return e.channels, e.height, e.width

    @property
    def min_frames(self) -> int:
        """Shortest video that gets a surprise score: one window."""
        return self.config.encoder.frames

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
        if enc.modality == "audio":
            if x.dim() == 1:
                x = x.unsqueeze(0)
            if x.dim() == 3 and x.shape[1] == 1:
                x = x[:, 0]
            if x.dim() != 2:
                raise DataError(f"this model encodes mono sound [B, N] at {enc.sample_rate} Hz; "
                                f"got shape {tuple(x.shape)}")
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

    def surprise(self, video, *, context: int | None = None, stride: int | None = None,
                 aggregate: str = "max", tokens: str = "mean", batch_size: int = 32):
        """Per-frame surprise of a video: how badly the model foresees each frame.

        Args:
            video: ``[T, C, H, W]`` frames (uint8 or float in [0, 1]) at the model's
                resolution, or the path of a video file — decoded as a stream (any length
                fits in memory) and resized to the model's resolution. For an audio model:
                a mono sound ``[N]`` at its sample rate or a sound file (streamed, resampled),
                scored per window (``stride``: samples between windows, default half a
                window; returns :class:`~monde.jepa.audio_surprise.AudioSurprise`).
            context: frames each window is given (default: half the window).
            stride: frames between windows (default: one tubelet).
            aggregate: how the windows that forecast a frame combine: ``max`` or ``mean``.
            tokens: how a time step's spatial tokens combine: ``mean`` or ``max``.

        Returns:
            :class:`~monde.jepa.video_surprise.VideoSurprise` (``scores [T]``, NaN for the
            first ``context`` frames, ``peak``).
        """
        from monde.jepa import video_surprise as vs

        enc = self.config.encoder
        if enc.modality == "audio":
            return self._audio_surprise(video, stride, tokens, batch_size)
        if enc.modality != "video":
            raise ConfigError(f"this model encodes {enc.modality}, not video; surprise here "
                              "needs a video model (monde train video-physics-tiny)")
        if aggregate not in ("max", "mean") or tokens not in ("max", "mean"):
            raise ConfigError(f"aggregate and tokens must be 'max' or 'mean'; got "
                              f"{aggregate!r}, {tokens!r}")
        if isinstance(video, (str, Path)):
            from monde.data.video import iter_clips, video_info

            info = video_info(video)  # header only; a length that is only estimated is
            # not trusted here (iter_clips still refuses a file too short for one window)
            context, stride = vs.check_settings(enc, info.frames if info.exact else None,
                                                context, stride)
            windows = iter_clips(video, clip_len=enc.frames, stride=stride,
                                 size=(enc.height, enc.width))
        else:
            x = torch.as_tensor(video)
            want = (enc.channels, enc.height, enc.width)
            if x.dim() != 4 or tuple(x.shape[1:]) != want:
                raise DataError(f"surprise takes one video [T, {enc.channels}, {enc.height}, "
                                f"{enc.width}] (the model's resolution); got {tuple(x.shape)}. "
                                "Pass a file path to have it resized.")
            context, stride = vs.check_settings(enc, x.shape[0], context, stride)
            windows = vs.video_windows(x, enc.frames, stride)
        return vs.score_windows(self.jepa, windows, context=context, stride=stride,
                                aggregate=aggregate, tokens=tokens, batch_size=batch_size)

    def _audio_surprise(self, sound, hop: int | None, tokens: str, batch_size: int):
        """Per-window surprise of a sound ``[N]`` (at the model's rate) or a sound file."""
        from monde.jepa import audio_surprise as aus

        enc = self.config.encoder
        n = aus.window_samples(enc)
        hop = n // 2 if hop is None else hop
        windows = aus.sound_windows(sound, n, hop, enc.sample_rate)
        return aus.score_sound(lambda x: aus.window_errors(self.jepa, x, tokens), windows,
                               window=n / enc.sample_rate, device=next(self.jepa.parameters()).device,
                               batch_size=batch_size)

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
    if kind in _FAMILIES:
        return _load_family(kind, path, weights, config["config"]["model"], meta).to(device)
    cfg = from_dict(ModelConfig, config["config"]["model"], where="model")
    jepa = JEPA(cfg)
    _load_weights(jepa, weights, path)
    return WorldModel(jepa, meta).to(device)


# Every model family but the masked JEPA: its saved ``kind`` → (module, config class, network
# class) and (module, world-model class). Imported only when such a folder is loaded.
_FAMILIES = {
    "action": (("monde.jepa.action_model", "ActionModelConfig", "ActionJEPA"),
               ("monde.jepa.action_world_model", "ActionWorldModel")),
    "sensors": (("monde.jepa.sensor_model", "SensorModelConfig", "SensorJEPA"),
                ("monde.jepa.sensor_world_model", "SensorWorldModel")),
    "video-causal": (("monde.jepa.causal_video", "CausalVideoConfig", "CausalVideoJEPA"),
                     ("monde.jepa.causal_video_world_model", "CausalVideoWorldModel")),
    "audio-causal": (("monde.jepa.causal_audio", "CausalAudioConfig", "CausalAudioJEPA"),
                     ("monde.jepa.causal_audio_world_model", "CausalAudioWorldModel")),
    "audio-spectral": (("monde.jepa.spectral_audio", "SpectralAudioConfig", "SpectralAudioJEPA"),
                       ("monde.jepa.spectral_audio_world_model", "SpectralAudioWorldModel")),
    "audio-visual": (("monde.jepa.audio_visual", "AudioVisualConfig", "AudioVisualJEPA"),
                     ("monde.jepa.audio_visual_world_model", "AudioVisualWorldModel")),
}


def _load_family(kind: str, path, weights: dict, model_cfg: dict, meta: dict):
    import importlib

    (net_module, cfg_name, net_name), (wm_module, wm_name) = _FAMILIES[kind]
    nets = importlib.import_module(net_module)
    net = getattr(nets, net_name)(from_dict(getattr(nets, cfg_name), model_cfg, where="model"))
    if kind == "sensors":
        # Folders saved before the forecast read-out existed load without it (forecast then
        # says so).
        for name in ("decoder", "decoder_ready"):
            weights.setdefault(name, getattr(net, name))
    _load_weights(net, weights, path)
    return getattr(importlib.import_module(wm_module), wm_name)(net, meta)


def _load_weights(net: torch.nn.Module, weights: dict, path) -> None:
    missing, unexpected = net.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}/model.safetensors does not fit its config.json "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]}); the folder "
                              "is damaged or mixed from two runs — retrain or restore it")
