"""Pictures of what a model did: planned vs executed trajectories (PNG), an episode (GIF)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from monde.errors import ConfigError


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - only without the extra
        raise ConfigError("plots need matplotlib: pip install 'monde[plot]'") from e
    return plt


def plot_plans(world, episodes, starts, goals, path: Path | str, n: int = 6) -> Path:
    """A grid of up to ``n`` episodes: executed path, the first plan as imagined, start, goal.

    ``episodes`` are :class:`~monde.planning.mpc.EpisodeResult` recorded with plans; the
    imagined path is the first plan's predicted latents decoded to positions.
    """
    plt = _pyplot()
    n = min(n, len(episodes))
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    # Constrained layout places each title above its own (square) image, so a row's titles
    # never run into the frames above them (tight_layout did, for Two-Rooms' images).
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False,
                             layout="constrained")
    size = world.cfg.size
    # Where the background image lies in state coordinates (left, right, bottom, top): Two-Rooms'
    # pixels, or a world's own frame (PointMaze: maze units, y up).
    extent = getattr(world, "plot_extent", (0, size, size, 0))
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ep = episodes[i]
        ax.imshow(world.background, cmap="gray", vmin=0, vmax=255, extent=extent)
        p = ep.positions
        ax.plot(p[:, 0], p[:, 1], "-", color="#4da6ff", lw=2, label="executed")
        if ep.plans:
            t0, imagined = ep.plans[0]
            path0 = np.vstack([p[t0], imagined])
            ax.plot(path0[:, 0], path0[:, 1], "--", color="#ffb000", lw=1.5,
                    label="first plan (imagined)")
        ax.plot(*starts[i][:2], "o", color="white", mec="black", ms=6, label="start")
        ax.plot(*goals[i][:2], "*", color="#33dd55", ms=12, label="goal")
        ax.set_title(f"{'reached' if ep.success else 'missed'} in {ep.steps} steps", fontsize=9)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(f"{getattr(world, 'title', 'Two-Rooms')}: plans imagined by the world model vs "
                 "paths executed", fontsize=10)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def episode_gif(world, episode, goal, path: Path | str, scale: int = 4, fps: int = 20) -> Path:
    """An animated GIF of one episode: the agent (white), its trail (blue), the goal (green)."""
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover
        raise ConfigError("GIFs need pillow: pip install 'monde[sim]'") from e
    frames = []
    trail = np.zeros((world.cfg.size, world.cfg.size), bool)
    for pos in episode.positions:
        x, y = int(np.clip(pos[0], 0, world.cfg.size - 1)), int(np.clip(pos[1], 0, world.cfg.size - 1))
        trail[y, x] = True
        rgb = world.render_rgb(pos, goal).copy()
        rgb[trail & (rgb.sum(-1) < 200)] = (60, 140, 255)
        frames.append(Image.fromarray(np.kron(rgb, np.ones((scale, scale, 1), np.uint8))))
    frames += [frames[-1]] * fps  # hold the last frame for a second
    path = Path(path)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=1000 // fps, loop=0)
    return path


def plot_surprise(scores: np.ndarray, threshold: float | None, path: Path | str, *,
                  time: np.ndarray | None = None, title: str = "surprise",
                  marks: dict[str, float] | None = None) -> Path:
    """Surprise over time (log scale), the alarm threshold, and alarms marked in red.

    Args:
        scores: ``[T]`` per-step surprise (NaN where not scored).
        threshold: alarm threshold drawn as a dashed line (None: no threshold, no alarms).
        time: ``[T]`` x-axis values (default: row numbers).
        marks: vertical lines to label, e.g. ``{"fault starts": 160}`` (x-axis units).
    """
    plt = _pyplot()
    x = np.arange(len(scores)) if time is None else np.asarray(time)
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.plot(x, scores, lw=0.8, color="tab:blue", label="surprise")
    if threshold is not None:
        ax.axhline(threshold, ls="--", color="k", lw=0.8, label=f"threshold {threshold:.2f}")
    alarm = np.nan_to_num(scores, nan=-np.inf) > (np.inf if threshold is None else threshold)
    if alarm.any():
        ax.scatter(x[alarm], scores[alarm], s=6, color="tab:red", zorder=3,
                   label=f"alarms ({int(alarm.sum())})")
    for label, at in (marks or {}).items():
        ax.axvline(at, color="tab:orange", lw=1)
        ax.annotate(label, (at, 1), xycoords=("data", "axes fraction"), va="top", fontsize=8)
    finite = scores[np.isfinite(scores)]
    if len(finite) and finite.min() > 0:
        ax.set_yscale("log")
    ax.set_xlabel("row" if time is None else "time")
    ax.set_ylabel("surprise")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_video_surprise(scores: np.ndarray, thumbs: np.ndarray, thumb_frames: np.ndarray,
                        path: Path | str, *, fps: float = 0.0, title: str = "surprise",
                        marks: dict[str, float] | None = None) -> Path:
    """A strip of frames above the per-frame surprise curve, the peak marked.

    Args:
        scores: ``[T]`` per-frame surprise (NaN where not scored).
        thumbs: uint8 ``[K, 3, H, W]`` frames to show, taken at ``thumb_frames [K]``.
        fps: frames per second; when > 0 the x-axis is in seconds, else in frames.
        marks: vertical lines to label, in frames (e.g. ``{"violation": 12}``).
    """
    plt = _pyplot()
    k = len(thumbs)
    fig = plt.figure(figsize=(10, 4.2))
    grid = fig.add_gridspec(2, max(k, 1), height_ratios=[1, 1.6])
    for i in range(k):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(np.asarray(thumbs[i]).transpose(1, 2, 0))
        ax.set_title(f"{thumb_frames[i] / fps:.1f} s" if fps > 0 else f"frame {thumb_frames[i]}",
                     fontsize=7)
        ax.axis("off")
    ax = fig.add_subplot(grid[1, :])
    scale = 1 / fps if fps > 0 else 1.0
    x = np.arange(len(scores)) * scale
    ax.plot(x, scores, lw=1, color="tab:blue", label="surprise")
    if np.isfinite(scores).any():
        i = int(np.nanargmax(scores))
        ax.scatter([x[i]], [scores[i]], color="tab:red", zorder=3,
                   label=f"peak {scores[i]:.3f} at " + (f"{x[i]:.2f} s" if fps > 0 else f"frame {i}"))
    for f in thumb_frames:
        ax.axvline(f * scale, color="0.85", lw=0.6, zorder=0)
    for label, at in (marks or {}).items():
        ax.axvline(at * scale, color="tab:orange", lw=1)
        ax.annotate(label, (at * scale, 1), xycoords=("data", "axes fraction"), va="top", fontsize=8)
    ax.set_xlabel("seconds" if fps > 0 else "frame")
    ax.set_ylabel("surprise")
    ax.set_xlim(x[0] if len(x) else 0, x[-1] if len(x) else 1)
    ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
