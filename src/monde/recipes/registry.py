"""The recipe registry and the code that turns a resolved config into a trained model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from monde.errors import ConfigError
from monde.recipes import action_worlds as tr
from monde.recipes import audio as au
from monde.recipes import audio_visual as av
from monde.recipes import sensors as sn
from monde.recipes import video_causal as vc
from monde.recipes import video_physics as vp
from monde.recipes.runs import open_run, train_and_export
from monde.recipes.video_data import video_source


@dataclass(frozen=True)
class Recipe:
    """A named run: a one-line description and a function returning its typed config."""

    name: str
    description: str
    build: Callable[[], object]


def _user_video() -> vp.VideoRunConfig:
    cfg = vp.video_physics_tiny()
    cfg.recipe = "video"
    cfg.data.source = "folder"
    # Future-predicting masks too, so that `monde surprise` works on the trained model.
    cfg.model.mask.kind = "vjepa+causal"
    return cfg


RECIPES: dict[str, Recipe] = {r.name: r for r in [
    Recipe("video-physics-tiny", "bouncing-balls video JEPA for a laptop CPU (minutes)",
           vp.video_physics_tiny),
    Recipe("video-physics-medium", "bouncing-balls video JEPA, 16 frames, ViT-S width at half depth (GPU minutes)",
           vp.video_medium),
    Recipe("video-physics", "bouncing-balls video JEPA sized for a GPU (ViT-S, 16 frames, 20k steps)",
           vp.video_physics),
    Recipe("video", "video JEPA on your own files: monde train video --data DIR",
           _user_video),
    Recipe("video-causal", "frame-causal video JEPA on your own files, for surprise: "
           "monde train video-causal --data DIR", vc.video_causal),
    Recipe("intphys-tiny", "intuitive physics: frame-causal video JEPA whose recurrent state "
           "runs through each clip, on possible clips only, CPU 20-45 min (monde eval physics)",
           vc.intphys_tiny),
    Recipe("intphys-pixels-tiny", "the pixel-predicting baseline of intphys-tiny (same "
           "networks and budget)", vc.intphys_pixels_tiny),
    Recipe("intphys", "intphys-tiny sized for a GPU", vc.intphys),
    Recipe("intphys-vit-tiny", "intuitive physics with the masked ViT video JEPA (tubes + "
           "causal masks), CPU", vp.intphys_tiny),
    Recipe("intphys-vit-pixels-tiny", "the pixel-predicting baseline of intphys-vit-tiny",
           vp.intphys_pixels_tiny),
    Recipe("intphys-vit", "intphys-vit-tiny sized for a GPU", vp.intphys),
    Recipe("actions-tiny", "video JEPA of an agent acting on objects, CPU (monde eval actions)",
           vp.actions_tiny),
    Recipe("actions-causal-tiny", "frame-causal video JEPA of an agent acting on objects, "
           "CPU (monde eval actions)", vc.actions_causal_tiny),
    Recipe("audio-tiny", "audio JEPA of the built-in machine sounds (normal only), CPU minutes "
           "(monde eval machine)", au.audio_tiny),
    Recipe("audio", "audio JEPA on your own sound files: monde train audio --data DIR",
           au.audio_user),
    Recipe("audio-base", "audio JEPA sized for a GPU (ViT-S width, 12 blocks)", au.audio_base),
    Recipe("fsdd", "audio JEPA of the spoken-digit training recordings (monde eval fsdd)",
           au.fsdd),
    Recipe("fsdd-causal", "frame-causal audio JEPA of the spoken-digit training recordings, CPU "
           "~7 min (monde eval fsdd)", au.fsdd_causal),
    Recipe("audio-causal-tiny", "frame-causal audio JEPA of the built-in machine sounds "
           "(normal only), CPU (monde eval machine)", au.audio_causal_tiny),
    Recipe("audio-causal", "frame-causal audio JEPA on your own sound files, for surprise: "
           "monde train audio-causal --data DIR", au.audio_causal),
    Recipe("audio-spectral-tiny", "spectral audio JEPA of the built-in machine sounds (normal "
           "only): masked prediction along frequency, CPU ~11 min (monde eval machine)",
           au.audio_spectral_tiny),
    Recipe("audio-spectral", "spectral audio JEPA on your own machine's sound files, for "
           "surprise: monde train audio-spectral --data DIR", au.audio_spectral),
    Recipe("av-balls-tiny", "sound with sight: audio-visual JEPA of bouncing balls and their "
           "impact sounds, CPU minutes (monde eval av)", av.av_balls_tiny),
    Recipe("av-balls", "av-balls-tiny sized for a GPU (64x64, 3 balls, 20k steps)", av.av_balls),
    Recipe("av", "audio-visual JEPA on your own video files with sound: monde train av --data DIR",
           av.av_folder),
    Recipe("two-rooms", "action-conditioned world model of Two-Rooms for planning (CPU minutes)",
           tr.two_rooms),
    Recipe("two-rooms-no-door", "two-rooms trained on episodes that never cross the door",
           tr.two_rooms_no_door),
    Recipe("reacher", "action-conditioned world model of the MuJoCo 2-link arm (needs monde[mujoco])",
           tr.reacher),
    Recipe("pointmaze", "action-conditioned world model of gymnasium-robotics' U-maze point (needs monde[mujoco])",
           tr.pointmaze),
    Recipe("pusht", "action-conditioned world model of PushT: push a T-shaped block to a goal pose (needs monde[sim])",
           tr.pusht),
    Recipe("sensors", "sensor world model of your plant: monde sensors fit DATA --schema S --out DIR",
           sn.sensors),
    Recipe("tep", "sensor world model of Tennessee Eastman normal operation (monde eval tep)",
           sn.tep),
    Recipe("cmapss", "sensor world model of the C-MAPSS FD001 training engines (monde eval cmapss)",
           sn.cmapss),
    Recipe("etth", "sensor world model of ETTh1's training split (monde eval etth)", sn.etth),
    Recipe("tep-control", "Tennessee Eastman simulated under setpoint moves, valve moves as "
           "actions (monde eval tep-control; needs monde[tep])", sn.tep_control),
    Recipe("plant-tiny", "sensor world model of the built-in synthetic plant (64 sensors, CPU minutes)",
           sn.plant_tiny),
]}


def get_recipe(name: str) -> Recipe:
    """Look a recipe up by name, with a helpful error."""
    if name not in RECIPES:
        import difflib

        close = difflib.get_close_matches(name, RECIPES, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"unknown recipe '{name}'.{hint} Run `monde recipes` to list them: "
                          + ", ".join(RECIPES))
    return RECIPES[name]


def check_config(cfg: vp.VideoRunConfig) -> None:
    """Cross-field checks the types alone cannot express."""
    enc, balls = cfg.model.encoder, cfg.data.balls
    if cfg.data.source == "balls" and (balls.frames, balls.size, balls.size) != (
            enc.frames, enc.height, enc.width):
        raise ConfigError(
            f"the world renders {balls.frames} frames of {balls.size}x{balls.size} but the "
            f"encoder expects {enc.frames} frames of {enc.height}x{enc.width}; set "
            "data.balls.frames/size and model.encoder.frames/height/width to agree")
    man = cfg.data.manipulation
    if cfg.data.source == "manipulation" and (man.size, man.size) != (enc.height, enc.width):
        raise ConfigError(f"the manipulation world renders {man.size}x{man.size} frames but the "
                          f"encoder expects {enc.height}x{enc.width}; set data.manipulation.size "
                          "and model.encoder.height/width to agree")
    if enc.frames % enc.tubelet or enc.height % enc.patch or enc.width % enc.patch:
        raise ConfigError("model.encoder.frames must be a multiple of tubelet and height/width "
                          "multiples of patch")
    if (enc.dim // enc.heads) < 6 or enc.dim % enc.heads:
        raise ConfigError("model.encoder.dim must be divisible by heads with at least 6 channels "
                          "per head (3-D rotary embedding)")
    if cfg.train.steps < 1 or cfg.train.batch_size < 2:
        raise ConfigError("train.steps must be ≥ 1 and train.batch_size ≥ 2")


def run_recipe(cfg: vp.VideoRunConfig, out: Path, *, quiet: bool = False,
               overwrite: bool = False) -> dict:
    """Train ``cfg`` into ``out`` (resuming if ``out`` holds the same run) and export the model.

    Returns the summary printed by ``monde train --json``.
    """
    if isinstance(cfg, tr.PlanRunConfig):
        return tr.run(cfg, out, quiet=quiet, overwrite=overwrite)
    if isinstance(cfg, sn.SensorRunConfig):
        return sn.run(cfg, out, quiet=quiet, overwrite=overwrite)
    if isinstance(cfg, au.CausalAudioRunConfig):
        return au.run_causal(cfg, out, quiet=quiet, overwrite=overwrite)
    if isinstance(cfg, au.SpectralAudioRunConfig):
        return au.run_spectral(cfg, out, quiet=quiet, overwrite=overwrite)
    if isinstance(cfg, au.AudioRunConfig):
        return au.run(cfg, out, quiet=quiet, overwrite=overwrite)
    if isinstance(cfg, av.AudioVisualRunConfig):
        return av.run(cfg, out, quiet=quiet, overwrite=overwrite)
    if isinstance(cfg, vc.CausalVideoRunConfig):
        return vc.run(cfg, out, quiet=quiet, overwrite=overwrite)
    from monde.jepa.model import JEPA

    check_config(cfg)
    run = open_run(cfg, out, overwrite)
    model = JEPA(cfg.model, seed=cfg.train.seed)
    enc = cfg.model.encoder
    data = video_source(cfg.data, enc.frames, (enc.height, enc.width), seed=cfg.train.seed)
    meta = {"recipe": cfg.recipe, "modality": enc.modality}
    return train_and_export(run, cfg, model, data, meta, quiet=quiet, data=run.config["data"],
                            params=sum(p.numel() for p in model.encoder.parameters()))
