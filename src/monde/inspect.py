"""``monde info``: say what a model folder, run folder or checkpoint is."""

from __future__ import annotations

from pathlib import Path

from monde.errors import CheckpointError


def describe(path: Path) -> dict:
    """A flat summary (modality, sizes, steps, recipe …) of a model, run or checkpoint folder."""
    from monde.train.checkpoint import latest_checkpoint, load_checkpoint, load_model_folder

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"nothing at {path}; pass a folder written by monde train")
    if (path / "config.json").is_file():
        weights, doc = load_model_folder(path)
        model = doc["config"].get("model", {})
        info = {"kind": "model", "path": str(path)}
        info.update({k: v for k, v in doc.items()
                     if k not in ("config", "data", "sensor_names", "action_names", "schema")})
        if "sensor_names" in doc:  # a plant may have thousands: name the first few
            names = doc["sensor_names"]
            info["sensors"] = f"{len(names)}: {', '.join(names[:4])}{' …' if len(names) > 4 else ''}"
            info["actions"] = ", ".join(doc.get("action_names") or []) or "none"
        info.update(_model_facts(model))
        info["tensors"] = len(weights)
        info["latest_checkpoint"] = str(latest_checkpoint(path) or "none")
        return info
    ckpt = load_checkpoint(path)
    model = ckpt.config.get("model", {})
    info = {"kind": "checkpoint", "path": str(ckpt.path), "step": ckpt.step,
            "recipe": ckpt.config.get("recipe"),
            "total_steps": ckpt.config.get("train", {}).get("steps")}
    info.update(_model_facts(model))
    return info


def _model_facts(model: dict) -> dict:
    if model.get("kind") == "action":  # ActionModelConfig: no encoder/predictor sections
        spatial = model.get("encoder_head") == "spatial"
        return {
            "modality": "image+action",
            "input": f"{model.get('channels')} x {model.get('size')}x{model.get('size')} images, "
                     f"{model.get('action_dim')}-D actions, frameskip {model.get('frameskip')}",
            "encoder": f"CNN widths {model.get('widths')}, " + (
                f"spatial latent of {model.get('map_channels')} channels" if spatial
                else f"latent {model.get('latent_dim')}"),
            "predictor": f"{'conv' if spatial else 'MLP'} {model.get('predictor_layers')} x "
                         f"{model.get('predictor_hidden')}",
        }
    if model.get("kind") == "sensors":
        return {
            "modality": "sensors",
            "input": f"{model.get('channels')} sensors + {model.get('actions')} control inputs, "
                     f"windows of {model.get('window')} steps, patch {model.get('patch')}"
                     + (" (values and roughness)" if model.get("roughness") else ""),
            "encoder": f"dim {model.get('dim')}, depth {model.get('depth')}, at most "
                       f"{model.get('groups')} channel groups",
            "predictor": f"dim {model.get('predictor_dim')}, depth {model.get('predictor_depth')}",
            "objective": f"{model.get('loss')} loss, {model.get('anti_collapse')} anti-collapse, "
                         f"future/channel/time masks; surprise {model.get('surprise')} "
                         f"({model.get('aggregate')} over groups)",
        }
    if model.get("kind") == "video-causal":
        side = model.get("size")
        return {
            "modality": "video",
            "input": f"{model.get('channels')} x {side}x{side} frames, " + (
                f"a state carried through the stream (scored after {model.get('context')} frames)"
                if model.get("memory") == "stream" else f"{model.get('context')} of context"),
            "encoder": f"frame-causal CNN widths {model.get('widths')}, latent map of "
                       f"{model.get('map_channels')} channels per frame",
            "predictor": (f"ConvGRU state {model.get('predictor_hidden')} + conv head "
                          if model.get("predictor") == "recurrent" else "conv ")
                         + f"{model.get('predictor_layers')} x {model.get('predictor_hidden')}"
                         f" (next frame's map), rollout {model.get('rollout')}",
            "objective": f"{model.get('target')} target" + (
                ", VICReg per cell" if model.get("target") == "latent" else " (generative baseline)"),
        }
    if model.get("kind") == "audio-causal":
        rate, hop, frames = model.get("sample_rate"), model.get("hop"), model.get("frames")
        return {
            "modality": "audio",
            "input": f"mono sound at {rate} Hz, windows of {(frames - 1) * hop / rate:.2f} s -> "
                     f"{model.get('n_mels')} mel bands x {frames} frames (n_fft "
                     f"{model.get('n_fft')}, hop {hop})",
            "encoder": f"time-causal CNN widths {model.get('widths')}, time strides "
                       f"{model.get('time_strides')}, latent map of {model.get('map_channels')} "
                       "channels per step",
            "predictor": f"1-D conv {model.get('predictor_layers')} x "
                         f"{model.get('predictor_hidden')} from {model.get('context')} steps, "
                         f"rollout {model.get('rollout')}",
            "objective": "next-step latent MSE + rollout, VICReg per frequency cell",
        }
    if model.get("kind") == "audio-spectral":
        sp = model.get("spectrum", {})
        rate, per = sp.get("rate"), sp.get("per_octave")
        return {
            "modality": "audio",
            "input": f"mono sound at {rate} Hz, windows of {sp.get('samples') / rate:.2f} s -> "
                     f"whole-window spectrum and envelope spectrum (above "
                     f"{sp.get('envelope_from'):g} Hz) on {sp.get('octaves') * per} log-frequency "
                     f"points from {sp.get('f_min'):g} Hz ({per} per octave)",
            "encoder": f"dilated residual 1-D CNN along frequency, width {model.get('width')}, "
                       f"{model.get('latent')} channels per 4 grid points",
            "predictor": f"dilated residual 1-D CNN, width {model.get('width')}, from the "
                         f"masked spectrum's latents",
            "objective": f"masked frequency spans {model.get('span')} positions x "
                         f"{model.get('spans')}, latent MSE + VICReg per position",
        }
    if model.get("kind") == "audio-visual":
        side, rate = model.get("size"), model.get("sample_rate")
        return {
            "modality": "audio-visual",
            "input": f"{model.get('frames')} RGB frames of {side}x{side} with "
                     f"{model.get('samples_per_frame')} samples of sound each at {rate} Hz",
            "encoder": f"per-frame CNN widths {model.get('widths')} and per-chunk spectrum MLP, "
                       f"latent {model.get('latent_dim')} per frame and per chunk",
            "predictor": f"transformer dim {model.get('dim')}, depth {model.get('depth')}, over "
                         "both modalities' tokens",
            "objective": f"masked latent MSE (sound from sight, sight from sound, spans of both), "
                         f"{model.get('anti_collapse')} anti-collapse",
        }
    enc, pred = model.get("encoder", {}), model.get("predictor", {})
    obj, mask = model.get("objective", {}), model.get("mask", {})
    modality = enc.get("modality")
    if modality == "video":
        shape = f"{enc.get('frames')} frames x {enc.get('channels')} x {enc.get('height')}x{enc.get('width')}"
    elif modality == "audio":
        rate, hop = enc.get("sample_rate"), enc.get("hop")
        shape = (f"mono sound at {rate} Hz, windows of {(enc.get('width') - 1) * hop / rate:.2f} s"
                 f" -> {enc.get('height')} mel bands x {enc.get('width')} frames "
                 f"(n_fft {enc.get('n_fft')}, hop {hop})")
    else:
        shape = f"{enc.get('channels')} x {enc.get('height')}"
    return {
        "modality": modality,
        "input": shape,
        "encoder": f"dim {enc.get('dim')}, depth {enc.get('depth')}, heads {enc.get('heads')}, "
                   f"patch {enc.get('patch')}, tubelet {enc.get('tubelet')}",
        "predictor": f"dim {pred.get('dim')}, depth {pred.get('depth')}",
        "objective": (f"{obj.get('loss')} loss, {obj.get('anti_collapse')} anti-collapse, "
                      f"{mask.get('kind')} masks" if obj.get("target", "latent") == "latent" else
                      f"pixel prediction ({obj.get('loss')} loss; the generative baseline), "
                      f"{mask.get('kind')} masks"),
    }
