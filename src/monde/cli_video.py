"""Command line for video world models: ``monde surprise`` and ``monde eval physics|actions``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from monde.errors import ConfigError, DataError


def add_surprise_parser(sub) -> None:
    """Register ``monde surprise INPUT --model DIR``."""
    s = sub.add_parser("surprise", help="surprise over a video or sound file: prints the peak, "
                       "writes a PNG of the surprise curve")
    s.add_argument("input", type=Path, help="a video (mp4/webm/avi/mkv/mov/gif) or sound "
                   "(wav/flac/ogg) file")
    s.add_argument("--model", required=True, type=Path, help="a video, audio or audio-visual "
                   "model folder (audio-visual: scores how well the file's own sound fits its "
                   "picture)")
    s.add_argument("--context", type=int, default=None,
                   help="frames of context per window (default: half the model's window)")
    s.add_argument("--stride", type=int, default=None,
                   help="frames (video; default one tubelet) or samples (sound; default half a "
                        "window) between windows")
    s.add_argument("--aggregate", choices=["max", "mean"], default="max",
                   help="how the windows forecasting a frame combine")
    s.add_argument("--tokens", choices=["mean", "max"], default=None,
                   help="how a frame's spatial tokens combine (max: one small object; default: "
                        "the model's own, mean for a windowed model, max for a frame-causal one)")
    s.add_argument("--blur", type=int, default=None,
                   help="frame-causal models: cells of spatial tolerance when comparing forecast "
                        "and frame (default: the model's own; 0 compares cell by cell)")
    s.add_argument("--plot", type=Path, default=None,
                   help="PNG of the curve (default: INPUT_STEM_surprise.png here)")
    s.add_argument("--csv", type=Path, default=None, help="write per-frame scores to this CSV")
    s.add_argument("--json", action="store_true")


def _thumbnails(path: Path, frames: int, size: tuple[int, int], k: int = 8):
    """``k`` evenly spaced frames of the video (uint8 ``[k, 3, H, W]``) and their indices."""
    from monde.data.video import read_video

    step = max(1, frames // k)
    thumbs = read_video(path, step=step, size=size, max_frames=k).numpy()
    return thumbs, np.arange(len(thumbs)) * step


def _write_frame_csv(path: Path, scores: np.ndarray, fps: float) -> None:
    """``frame,seconds,surprise`` rows (seconds empty without a frame rate, scores empty for
    frames no window covers)."""
    rows = ["frame,seconds,surprise"] + [
        f"{i},{f'{i / fps:.4f}' if fps > 0 else ''},{'' if not np.isfinite(v) else f'{v:.6g}'}"
        for i, v in enumerate(scores)]
    path.write_text("\n".join(rows) + "\n")


def run_surprise(args, emit) -> int:
    import monde
    from monde.data.video import video_info
    from monde.viz import plot_video_surprise

    model = monde.load(args.model)
    modality = getattr(model, "modality", None)
    if modality == "audio-visual":
        return _soundtrack_surprise(model, args, emit)
    if modality not in ("video", "audio"):
        raise ConfigError(f"{args.model} is not a video model; for a plant's sensors use "
                          "`monde sensors score DATA --model DIR`")
    if modality != "video":
        raise ConfigError(f"{args.model} encodes {modality}, not video")
    if not args.input.is_file():
        raise DataError(f"{args.input}: no such file")
    info = video_info(args.input)
    notes = []
    _, height, width = model.frame_shape
    if (info.height, info.width) != (height, width):
        notes.append(f"resized from {info.width}x{info.height} to the model's "
                     f"{width}x{height}")
    t0 = time.perf_counter()
    given = {"tokens": args.tokens} if args.tokens else {}
    if args.blur is not None:
        if getattr(model.config, "surprise_blur", None) is None:
            raise ConfigError("--blur applies to frame-causal video models (video-causal, "
                              f"intphys-tiny); {args.model} is a windowed model")
        given["blur"] = args.blur
    r = model.surprise(str(args.input), context=args.context, stride=args.stride,
                       aggregate=args.aggregate, **given)
    seconds = time.perf_counter() - t0
    frame, peak = r.peak
    fps = info.fps
    at = f"frame {frame}" + (f" ({frame / fps:.2f} s)" if fps > 0 else "")
    plot = args.plot or Path(f"{args.input.stem}_surprise.png")
    thumbs, where = _thumbnails(args.input, len(r.scores), (height, width))
    plot_video_surprise(r.scores, thumbs, where, plot, fps=fps,
                        title=f"{args.input.name}: surprise under {args.model}")
    if args.csv:
        _write_frame_csv(args.csv, r.scores, fps)
    human = (f"peak surprise {peak:.4f} at {at} of {len(r.scores)} frames; "
             f"{len(r.window_starts)} windows of {r.window} frames (context {r.context}) "
             f"scored in {seconds:.1f} s" + "".join(f"; {n}" for n in notes)
             + f"\nplot: {plot}" + (f"\nscores: {args.csv}" if args.csv else ""))
    emit(args, human, {"input": str(args.input), "peak": peak, "peak_frame": frame,
                       "peak_seconds": frame / fps if fps > 0 else None,
                       "frames": len(r.scores), "windows": len(r.window_starts),
                       "window": r.window, "context": r.context, "seconds": round(seconds, 3),
                       "plot": str(plot), "notes": notes})
    return 0


def _soundtrack_surprise(model, args, emit) -> int:
    """``monde surprise`` with an audio-visual model: does the file's sound fit its picture?"""
    from monde.data.video import video_info
    from monde.viz import plot_video_surprise

    if not args.input.is_file():
        raise DataError(f"{args.input}: no such file")
    if args.context or args.blur is not None or args.tokens:
        raise ConfigError("--context, --blur and --tokens apply to video models; an "
                          "audio-visual model scores windows of its own length (--stride)")
    t0 = time.perf_counter()
    r = model.surprise_file(args.input, stride=args.stride)
    seconds = time.perf_counter() - t0
    frame, peak = r.peak
    c = model.config
    plot = args.plot or Path(f"{args.input.stem}_surprise.png")
    # Thumbnails are read from the file's own frames; place them on the model's frame axis.
    ratio = video_info(args.input).fps / r.fps
    thumbs, where = _thumbnails(args.input, round(len(r.scores) * ratio), (c.size, c.size))
    plot_video_surprise(r.scores, thumbs, np.round(where / ratio).astype(int), plot, fps=r.fps,
                        title=f"{args.input.name}: soundtrack surprise under {args.model}")
    if args.csv:
        _write_frame_csv(args.csv, r.scores, r.fps)
    mean = float(np.nanmean(r.scores))
    human = (f"soundtrack surprise: mean {mean:.4f}, peak {peak:.4f} at frame {frame} "
             f"({frame / r.fps:.2f} s) of {len(r.scores)} frames at {r.fps:g} fps; "
             f"{len(r.window_starts)} windows of {r.window} frames scored in {seconds:.1f} s"
             f"\nplot: {plot}" + (f"\nscores: {args.csv}" if args.csv else ""))
    emit(args, human, {"input": str(args.input), "mean": mean, "peak": peak,
                       "peak_frame": frame, "peak_seconds": frame / r.fps,
                       "frames": len(r.scores), "fps": r.fps, "windows": len(r.window_starts),
                       "window": r.window, "seconds": round(seconds, 3), "plot": str(plot)})
    return 0


def _train(recipe: str, overrides: list[str], out: Path, args) -> Path:
    from monde.config import apply_overrides
    from monde.recipes import get_recipe, run_recipe

    cfg = apply_overrides(get_recipe(recipe).build(), overrides)
    s = run_recipe(cfg, out, quiet=args.quiet, overwrite=args.overwrite)
    if s["interrupted"]:
        print(f"interrupted; rerun the same command to resume from {out}", file=sys.stderr)
        raise SystemExit(130)
    return out


def run_eval(args, emit) -> int:
    """``monde eval physics|actions``: train the recipes unless ``--model`` is given, evaluate."""
    import json

    import monde

    if args.protocol == "actions":
        return run_actions(args, emit)
    from monde.evals.physics import PhysicsProtocol, physics_eval

    if args.model is None:
        out = args.out or Path("runs/eval-physics")
        model_dir = _train("intphys-tiny", args.overrides, out, args)
        base_dir = args.baseline or _train("intphys-pixels-tiny", args.overrides,
                                           Path(f"{out}-pixels"), args)
    else:
        model_dir, base_dir = args.model, args.baseline
    model = monde.load(model_dir)
    baseline = monde.load(base_dir) if base_dir else None
    protocol = PhysicsProtocol() if args.pairs is None else PhysicsProtocol(pairs=args.pairs)
    r = physics_eval(model, protocol, baseline)
    names = ["model"] + (["baseline"] if baseline else [])
    lines = [f"intuitive physics ({r['protocol']['name']} v{r['protocol']['version']}, "
             f"{r['protocol']['settings']['pairs']} pairs per principle): pairwise accuracy / "
             "AUROC / thresholded accuracy"]
    for p in r["model"]["principles"]:
        cells = "   ".join(
            f"{r[n]['target']:>6} {r[n]['principles'][p]['pairwise']:.3f} / "
            f"{r[n]['principles'][p]['auroc']:.3f} / {r[n]['principles'][p]['thresholded']:.3f}"
            for n in names)
        lines.append(f"  {p:<11} {cells}")
    lines.append("  " + "   ".join(f"{r[n]['target']} mean pairwise {r[n]['mean']['pairwise']:.3f}"
                                    for n in names))
    if baseline is None:
        lines.append("  (no pixel baseline scored: give --baseline DIR, or run without --model)")
    (Path(model_dir) / "physics.json").write_text(json.dumps(r, indent=2, default=str))
    emit(args, "\n".join(lines) + f"\n  full results in {model_dir}/physics.json", r)
    return 0


def run_actions(args, emit) -> int:
    """``monde eval actions``: recognition and anticipation probes, model vs random encoder."""
    import json

    import monde
    from monde.evals.actions import ActionsProtocol, actions_eval

    # The frame-causal recipe is the default: it passes both action targets where the masked
    # ViT (actions-tiny, still usable with --model) does not (docs/results.md).
    model_dir = args.model or _train("actions-causal-tiny", args.overrides,
                                     args.out or Path("runs/eval-actions"), args)
    r = actions_eval(monde.load(model_dir), ActionsProtocol())
    lines = [f"actions ({r['protocol']['name']} v{r['protocol']['version']}, "
             f"{len(r['classes'])} classes; test clips: {r['clips']['recognition'][1]} "
             f"recognition, {r['clips']['anticipation'][1]} anticipation): top-1 / "
             "mean-class recall@5"]
    for task in ("recognition", "anticipation"):
        m, b = r["model"][task], r["random"][task]
        lines.append(f"  {task:<13} model {m['top1']:.3f} / {m['recall@5']:.3f}   random encoder "
                     f"{b['top1']:.3f} / {b['recall@5']:.3f}   chance {m['chance_top1']:.3f} / "
                     f"{m['chance_recall@5']:.3f}")
    (Path(model_dir) / "actions.json").write_text(json.dumps(r, indent=2, default=str))
    emit(args, "\n".join(lines) + f"\n  full results in {model_dir}/actions.json", r)
    return 0
