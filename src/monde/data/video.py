"""Video files: read clips from mp4/avi/webm/mkv/mov with PyAV, write small videos.

Frames come back as uint8 torch tensors ``[T, 3, H, W]`` (RGB, channels first). Frame indices
count decoded frames in presentation order from 0; ``step`` keeps every ``step``-th of them.
Resizing uses FFmpeg's bilinear scaler (area-aware when shrinking, so no aliasing).

Every unreadable input raises :class:`monde.errors.DataError` naming the file and saying what to
do; PyAV is imported lazily so that ``import monde.data`` works without it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from monde.errors import DataError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v")
REENCODE_HINT = "re-encode it with ffmpeg (ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4)"
SKIP_HINT = "pass --skip-bad-videos (VideoFolder(skip_bad=True)) to skip unreadable files"
# Encoders to try per container, best first (libx264 may be missing from LGPL builds).
_ENCODERS = {
    ".mp4": ("libx264", "mpeg4"), ".m4v": ("libx264", "mpeg4"), ".mov": ("libx264", "mpeg4"),
    ".mkv": ("libx264", "mpeg4"), ".avi": ("mpeg4", "mjpeg"), ".webm": ("libvpx-vp9", "libvpx"),
}

Size = int | tuple[int, int] | None


def _av():
    try:
        import av
    except ImportError as e:
        raise DataError('Reading and writing video needs PyAV: pip install "monde[video]"') from e
    return av


def _why(err: Exception) -> str:
    """FFmpeg's own words for an error, without PyAV's errno prefix."""
    return getattr(err, "strerror", None) or str(err)


@dataclass
class VideoInfo:
    """What the container header says about a video file."""

    path: Path
    """The file."""
    frames: int
    """Number of frames; estimated from duration x fps when ``exact`` is False."""
    fps: float
    """Average frames per second (0.0 if unknown)."""
    width: int
    """Frame width in pixels."""
    height: int
    """Frame height in pixels."""
    duration_s: float
    """Duration in seconds (0.0 if unknown)."""
    exact: bool = True
    """Whether ``frames`` comes from the header rather than an estimate (webm/mkv have none)."""


def _hw(size: Size) -> tuple[int, int] | None:
    """``size`` as ``(height, width)``; an int means a square frame."""
    if size is None:
        return None
    h, w = (size, size) if isinstance(size, int) else size
    if h < 1 or w < 1:
        raise DataError(f"Video size must be positive, got {size}")
    return int(h), int(w)


@contextmanager
def _open(path):
    """Open ``path`` and yield ``(container, video_stream)``, turning PyAV errors into DataError."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a video file; use VideoFolder for folders")
    av = _av()
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
        raise DataError(
            f"{path}: cannot be opened as a video ({_why(e)}): the file is truncated, corrupt "
            f"or not a video; {REENCODE_HINT}, or {SKIP_HINT}"
        ) from None  # the PyAV traceback says nothing more than the message
    try:
        if not container.streams.video:
            raise DataError(
                f"{path}: contains no video stream (audio only?); remove it from the data or "
                f"{SKIP_HINT}"
            )
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threads: several times faster on long files
        yield container, stream
    finally:
        container.close()


def _decode(container, stream, path) -> Iterator:
    """Decoded frames of ``stream`` in order; a decoding failure becomes a DataError."""
    av = _av()
    n = 0
    try:
        for frame in container.decode(stream):
            yield frame
            n += 1
    except av.FFmpegError as e:
        raise DataError(
            f"{path}: corrupt or truncated video, decoding failed after {n} frames "
            f"({_why(e)}); {REENCODE_HINT}, or {SKIP_HINT}"
        ) from None


def _rgb(frame, hw: tuple[int, int] | None) -> np.ndarray:
    """One decoded frame as uint8 ``[3, H, W]``, resized to ``hw`` if given."""
    if hw is None:
        arr = frame.to_ndarray(format="rgb24")
    else:
        arr = frame.to_ndarray(width=hw[1], height=hw[0], format="rgb24", interpolation="BILINEAR")
    return arr.transpose(2, 0, 1)


def _read(path, step: int, hw, start: int, max_frames: int | None) -> tuple[list, int]:
    """Frames ``start, start+step, ...`` (at most ``max_frames``) and how many were decoded."""
    if step < 1 or start < 0 or (max_frames is not None and max_frames < 1):
        raise DataError(f"{path}: need step >= 1, start >= 0, max_frames >= 1 "
                        f"(got step={step}, start={start}, max_frames={max_frames})")
    out, n = [], 0
    with _open(path) as (container, stream):
        for i, frame in enumerate(_decode(container, stream, path)):
            n = i + 1
            # Skipped frames are decoded (codecs need them) but never converted to RGB.
            if i >= start and (i - start) % step == 0:
                out.append(_rgb(frame, hw))
                if max_frames is not None and len(out) == max_frames:
                    break
    return out, n


def read_video(
    path, *, step: int = 1, size: Size = None, start: int = 0, max_frames: int | None = None
) -> torch.Tensor:
    """Decode a video into uint8 ``[T, 3, H, W]``.

    Keeps every ``step``-th frame from frame index ``start``, at most ``max_frames`` of them,
    resized to ``size`` (int for a square, or ``(height, width)``). Frames before ``start``
    are decoded, not seeked past, so a large ``start`` costs decoding time.
    """
    frames, n = _read(path, step, _hw(size), start, max_frames)
    if not frames:
        if n == 0:
            raise DataError(f"{path}: contains no decodable frames; {REENCODE_HINT}")
        raise DataError(f"{path}: has only {n} frames, nothing at or after start={start}; "
                        "use a smaller start")
    return torch.from_numpy(np.stack(frames))


def video_info(path) -> VideoInfo:
    """Read the header of ``path`` (no decoding; counts packets only if the header has no length)."""
    with _open(path) as (container, stream):
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = container.duration / 1e6 if container.duration else 0.0  # microseconds
        frames, exact = int(stream.frames or 0), True
        if frames == 0 and duration > 0 and fps > 0:
            frames, exact = round(duration * fps), False
        elif frames == 0:
            # No length anywhere in the header: count packets (cheap, nothing is decoded).
            try:
                frames = sum(1 for p in container.demux(stream) if p.size)
            except _av().FFmpegError as e:
                raise DataError(f"{path}: corrupt video ({_why(e)}); {REENCODE_HINT}, or "
                                f"{SKIP_HINT}") from None
        cc = stream.codec_context
        return VideoInfo(Path(path), frames, fps, cc.width, cc.height, duration, exact)


def iter_clips(
    path, *, clip_len: int, step: int = 1, stride: int | None = None, size: Size = None
) -> Iterator[torch.Tensor]:
    """Stream uint8 ``[clip_len, 3, H, W]`` clips from one video, decoding it only once.

    Clips are cut from the sampled frames (every ``step``-th decoded frame); clip ``c`` starts
    at sampled frame ``c * stride`` (default ``stride = clip_len``: back to back). Only
    ``clip_len`` frames are held in memory. Raises DataError if the video is too short for one.
    """
    stride = clip_len if stride is None else stride
    if clip_len < 1 or step < 1 or stride < 1:
        raise DataError(f"{path}: need clip_len, step and stride >= 1 "
                        f"(got clip_len={clip_len}, step={step}, stride={stride})")
    hw = _hw(size)
    window: deque = deque(maxlen=clip_len)
    clips = n = j = 0
    with _open(path) as (container, stream):
        for n, frame in enumerate(_decode(container, stream, path), start=1):
            if (n - 1) % step:
                continue
            # A sampled frame j is in some clip iff j % stride < clip_len; convert only those.
            window.append(_rgb(frame, hw) if j % stride < clip_len else None)
            first = j - clip_len + 1
            if first >= 0 and first % stride == 0:
                clips += 1
                yield torch.from_numpy(np.stack(window))
            j += 1
    if clips == 0:
        raise DataError(
            f"{path}: too short for one clip: {n} frames, but a clip of {clip_len} frames "
            f"every {step} needs {(clip_len - 1) * step + 1}; use a shorter clip or step"
        )


def write_video(path, frames, fps: int = 10, *, audio=None, rate: int | None = None) -> None:
    """Write uint8 ``[T, 3, H, W]`` frames (tensor or array) to ``path``.

    The container follows the extension: mp4/m4v/mov/mkv (h264, else mpeg4), avi (mpeg4,
    else mjpeg), webm (vp9, else vp8) or gif (via PIL). Video codecs need even width and height.

    ``audio``: an optional mono soundtrack, float ``[N]`` in [-1, 1] at ``rate`` Hz, starting
    with the first frame; written as 16-bit PCM (mkv, mov, avi: lossless, no codec delay) or
    AAC (mp4, m4v). Not for gif or webm.
    """
    path = Path(path)
    arr = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if arr.ndim != 4 or arr.shape[1] != 3 or arr.dtype != np.uint8 or len(arr) == 0:
        raise DataError(f"{path}: write_video needs uint8 frames [T, 3, H, W] with T >= 1, "
                        f"got {arr.dtype} {tuple(arr.shape)}")
    hwc = np.ascontiguousarray(arr.transpose(0, 2, 3, 1))
    ext = path.suffix.lower()
    sound = None
    if audio is not None:
        sound = np.asarray(audio.detach().cpu() if isinstance(audio, torch.Tensor) else audio,
                           dtype=np.float32)
        if ext not in _AUDIO_CODECS or sound.ndim != 1 or not rate or rate < 1:
            raise DataError(f"{path}: a soundtrack needs a mono float array [N], a rate in Hz "
                            f"and one of {', '.join(_AUDIO_CODECS)}; got {ext or 'no extension'}"
                            f", shape {sound.shape}, rate {rate}")
        if not np.isfinite(sound).all():
            raise DataError(f"{path}: the soundtrack holds NaN or infinite samples")
    if ext == ".gif":
        try:
            from PIL import Image
        except ImportError as e:
            raise DataError('Writing gif needs pillow: pip install "monde[video]"') from e
        images = [Image.fromarray(f) for f in hwc]
        try:
            images[0].save(path, save_all=True, append_images=images[1:],
                           duration=max(1, round(1000 / fps)), loop=0)
        except OSError as e:
            raise DataError(f"{path}: could not write gif ({_why(e)}); check the folder exists "
                            "and is writable") from None
        return
    if ext not in _ENCODERS:
        raise DataError(f"{path}: cannot write {ext or 'no'} extension; use one of "
                        f"{', '.join(_ENCODERS)} or .gif")
    h, w = hwc.shape[1:3]
    if h % 2 or w % 2:
        raise DataError(f"{path}: video codecs need even width and height, got {w}x{h}; "
                        "crop or resize the frames first")
    av = _av()
    codec = next((c for c in _ENCODERS[ext] if _has_encoder(av, c)), None)
    if codec is None:
        raise DataError(f"{path}: this PyAV build has none of the encoders "
                        f"{_ENCODERS[ext]}; write .mp4 or .avi instead")
    try:
        with av.open(str(path), "w") as container:
            stream = container.add_stream(codec, rate=fps)
            stream.width, stream.height = w, h
            stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
            # Generous quality: tests and later features compare decoded pixels.
            stream.bit_rate = max(1_000_000, 4 * w * h * fps)
            if codec == "libx264":
                stream.options = {"crf": "18"}
            track = None
            if sound is not None:
                track = container.add_stream(_AUDIO_CODECS[ext], rate=rate, layout="mono")
            for f in hwc:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
            container.mux(stream.encode())
            if track is not None:
                _write_track(av, container, track, sound, rate)
    except (av.FFmpegError, OSError) as e:
        raise DataError(f"{path}: could not write video ({_why(e)}); check the folder exists and "
                        "is writable") from None


_AUDIO_CODECS = {".mkv": "pcm_s16le", ".mov": "pcm_s16le", ".avi": "pcm_s16le", ".mp4": "aac",
                 ".m4v": "aac"}


def _write_track(av, container, track, sound: np.ndarray, rate: int) -> None:
    """Encode a mono float soundtrack into ``track`` (PCM as int16, AAC as planar float)."""
    fmt = track.codec_context.format.name
    clipped = np.clip(sound, -1.0, 1.0)
    block = track.codec_context.frame_size or 4096  # AAC wants fixed-size frames
    for i in range(0, len(clipped), block):
        piece = clipped[i:i + block]
        if fmt.startswith("s16"):
            piece = (piece * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(piece[None], format=fmt, layout="mono")
        frame.sample_rate, frame.pts = rate, i
        container.mux(track.encode(frame))
    container.mux(track.encode())


def read_soundtrack(path, rate: int) -> np.ndarray:
    """The first audio track of a video file, mono float32 ``[N]`` at ``rate`` Hz.

    Sample 0 is the time of the video's first frame: a track that starts later is padded with
    silence, one that starts earlier is cut. Channels are averaged. A file without an audio
    track, or whose track does not decode, gets a :class:`DataError`.
    """
    from monde.data.audio import resample

    av = _av()
    with _open(path) as (container, stream):
        if not container.streams.audio:
            raise DataError(f"{path}: has no audio track; an audio-visual model needs the "
                            "video's sound")
        track = container.streams.audio[0]
        pieces, first_audio, first_video, native = [], None, None, None
        try:
            for frame in container.decode(track, stream):
                if isinstance(frame, av.AudioFrame):
                    if first_audio is None:
                        first_audio, native = frame.time or 0.0, frame.sample_rate
                    x = frame.to_ndarray().astype(np.float32)
                    if frame.format.name.startswith("s16"):
                        x /= 32768.0
                    elif frame.format.name.startswith("s32"):
                        x /= 2.0 ** 31
                    # Planar frames are [channels, n]; packed ones [1, n · channels].
                    ch = len(frame.layout.channels)
                    x = x.reshape(ch, -1) if frame.format.is_planar else x.reshape(-1, ch).T
                    pieces.append(x.mean(0))
                elif first_video is None:
                    first_video = frame.time or 0.0
        except av.FFmpegError as e:
            raise DataError(f"{path}: the audio track does not decode ({_why(e)}); "
                            f"{REENCODE_HINT}") from None
    if not pieces:
        raise DataError(f"{path}: the audio track holds no samples")
    sound = resample(torch.from_numpy(np.concatenate(pieces)), native, rate).numpy()
    lag = round(((first_audio or 0.0) - (first_video or 0.0)) * rate)
    if lag > 0:
        sound = np.concatenate([np.zeros(lag, np.float32), sound])
    elif lag < 0:
        sound = sound[-lag:]
    return sound.astype(np.float32)


def _has_encoder(av, name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:  # UnknownCodecError and friends: this build lacks the encoder
        return False
    return True
