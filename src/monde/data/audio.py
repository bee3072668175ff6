"""Sound files: read WAV/FLAC/OGG with soundfile, resample in torch, stream long recordings.

Audio comes back as float32 torch tensors ``[C, N]`` (channels first, samples in [-1, 1] for
integer files), with ``C = 1`` when ``mono`` averages the channels. Times are in seconds.

Every unreadable input raises :class:`monde.errors.DataError` naming the file and saying what to
do; soundfile is imported lazily so that ``import monde.data`` works without it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from monde.errors import ConfigError, DataError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
REENCODE_HINT = "re-encode it to WAV or FLAC (ffmpeg -i IN -ac 1 OUT.wav)"
ROLLOFF = 0.95
"""Resampling low-pass cutoff as a fraction of the lower Nyquist frequency."""
ZEROS = 16
"""Zero crossings of the windowed sinc on each side: longer is sharper and slower."""
KAISER_BETA = 8.6
"""Kaiser window shape: about 80 dB of stop-band attenuation."""


def _sf():
    try:
        import soundfile
    except ImportError as e:
        raise ConfigError("Reading and writing audio needs soundfile: "
                          "pip install 'monde[audio]'") from e
    return soundfile


@dataclass
class AudioInfo:
    """What the header says about a sound file (nothing is decoded)."""

    path: Path
    """The file."""
    frames: int
    """Samples per channel."""
    rate: int
    """Sample rate in Hz."""
    channels: int
    """Number of channels."""
    seconds: float
    """Duration, ``frames / rate``."""
    format: str
    """Container and encoding, e.g. ``"WAV/PCM_16"``."""


def _open(path):
    """``soundfile.SoundFile`` for ``path``, turning every failure into a DataError."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a sound file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes); record or copy it again")
    sf = _sf()
    try:
        return sf.SoundFile(str(path))
    except (sf.SoundFileError, RuntimeError) as e:
        raise DataError(f"{path}: cannot be decoded as audio ({e}); the file is truncated, "
                        f"corrupt or in an unsupported format; {REENCODE_HINT}") from None


def _check(x: np.ndarray, path) -> None:
    """Raise DataError if the samples ``x`` (soundfile's ``[N, C]``) are empty or not finite."""
    if x.shape[0] == 0:
        raise DataError(f"{path}: contains no samples (0 frames); record or export it again")
    if not np.isfinite(x).all():
        raise DataError(f"{path}: contains NaN or infinite samples (a broken float WAV?); "
                        f"{REENCODE_HINT} after fixing the source")


def _frames(x: np.ndarray, mono: bool) -> torch.Tensor:
    """soundfile's ``[N, C]`` float32 block as a ``[C, N]`` tensor (``C = 1`` if mono)."""
    t = torch.from_numpy(np.ascontiguousarray(x.T))
    return t.mean(0, keepdim=True) if mono else t


def audio_info(path) -> AudioInfo:
    """Read the header of ``path``."""
    with _open(path) as f:
        return AudioInfo(Path(path), f.frames, f.samplerate, f.channels,
                         f.frames / f.samplerate, f"{f.format}/{f.subtype}")


def read_audio(path, *, rate: int | None = None, mono: bool = True, start: float = 0.0,
               duration: float | None = None) -> tuple[torch.Tensor, int]:
    """Decode ``duration`` seconds (default: to the end) from ``start`` into float32 ``[C, N]``.

    Returns the samples and their rate: ``rate`` when given (the audio is resampled with
    :func:`resample`), else the file's own rate.
    """
    if start < 0 or (duration is not None and duration <= 0) or (rate is not None and rate < 1):
        raise DataError(f"{path}: need start >= 0, duration > 0 and rate >= 1 "
                        f"(got start={start}, duration={duration}, rate={rate})")
    with _open(path) as f:
        sr, first = f.samplerate, round(start * f.samplerate)
        if f.frames == 0:
            _check(np.zeros((0, 1)), path)
        if first >= f.frames:
            raise DataError(f"{path}: start={start}s is past the end of the file "
                            f"({f.frames / sr:.3f}s); use a smaller start")
        f.seek(first)
        x = f.read(-1 if duration is None else round(duration * sr), dtype="float32",
                   always_2d=True)
    _check(x, path)
    out = _frames(x, mono)
    return (out, sr) if rate is None else (resample(out, sr, rate), rate)


def write_audio(path, x, rate: int, subtype: str | None = None) -> None:
    """Write ``x`` (tensor or array, ``[C, N]`` or ``[N]``) to ``path``; format from the suffix.

    ``subtype`` is soundfile's encoding (default: 16-bit PCM for WAV/FLAC, Vorbis for OGG);
    integer encodings clip samples outside [-1, 1].
    """
    sf = _sf()
    arr = x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    arr = arr[None] if arr.ndim == 1 else arr
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise DataError(f"{path}: write_audio needs samples [C, N] or [N] with N >= 1, "
                        f"got {tuple(arr.shape)}")
    try:
        sf.write(str(path), arr.T.astype(np.float32), int(rate), subtype=subtype)
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as e:
        raise DataError(f"{path}: could not write audio ({e}); use a .wav, .flac or .ogg name "
                        "in a folder that exists") from None


def _ratio(orig: int, new: int) -> tuple[int, int]:
    """``(up, down)``: the reduced ratio ``new / orig``."""
    if orig < 1 or new < 1:
        raise DataError(f"sample rates must be positive integers, got {orig} -> {new}")
    g = math.gcd(int(orig), int(new))
    return int(new) // g, int(orig) // g


def _width(up: int, down: int) -> int:
    """Half-width of the resampling filter in input samples: ``ZEROS`` zero crossings."""
    return math.ceil(ZEROS * down / (ROLLOFF * min(up, down)))


def _kernel(up: int, down: int, device, dtype) -> tuple[torch.Tensor, int]:
    """Polyphase windowed-sinc filters ``[up, 1, K]`` and their half-width in input samples.

    Output sample ``q * up + j`` sits at input time ``q * down + j * down / up``; filter ``j``
    weights inputs ``q * down - width + k`` for ``k < K = 2 * width + down``.
    """
    fc = ROLLOFF * min(up, down) / (2 * down)  # cutoff in cycles per input sample
    width = _width(up, down)
    # Built in float64: the sinc's tails are small differences of large numbers.
    k = torch.arange(2 * width + down, dtype=torch.float64, device=device)
    t = k[None] - width - torch.arange(up, dtype=torch.float64, device=device)[:, None] * down / up
    inside = (t / width).abs() <= 1
    win = torch.special.i0(KAISER_BETA * torch.sqrt((1 - (t / width) ** 2).clamp(min=0)))
    h = 2 * fc * torch.sinc(2 * fc * t) * win / torch.special.i0(torch.tensor(KAISER_BETA))
    return torch.where(inside, h, 0).to(dtype)[:, None], width


def resample(x: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    """Band-limited resampling of ``x [..., N]`` from ``orig`` Hz to ``new`` Hz, on x's device.

    Polyphase Kaiser-windowed sinc for the reduced ratio ``new/orig`` (gcd), with the
    anti-aliasing cutoff at ``ROLLOFF * min(orig, new) / 2``. The output has
    ``ceil(N * new / orig)`` samples: output ``i`` is at time ``i / new``, and every such time
    inside ``[0, N / orig)`` is kept. The signal is taken as zero outside the input, so about
    ``ZEROS`` periods of the cutoff at each end see a softened edge. Float64 input stays
    float64; any other dtype is computed and returned in float32.
    """
    if orig == new:
        return x
    up, down = _ratio(orig, new)
    n = x.shape[-1]
    lead = x.shape[:-1]
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    h, width = _kernel(up, down, x.device, dtype)
    n_out = -(-n * up // down)
    q = -(-n_out // up)  # frames of `up` outputs each
    flat = x.reshape(-1, 1, n).to(dtype)
    pad_right = max(0, (q - 1) * down + h.shape[-1] - width - n)
    flat = torch.nn.functional.pad(flat, (width, pad_right))
    y = torch.nn.functional.conv1d(flat, h, stride=down)[..., :q]  # [B, up, q]
    return y.transpose(1, 2).reshape(*lead, q * up)[..., :n_out]


def iter_audio_windows(path, *, window: float, hop: float | None = None, rate: int | None = None,
                       mono: bool = True) -> Iterator[tuple[float, torch.Tensor]]:
    """Stream ``(start_seconds, [C, W])`` windows of ``window`` seconds every ``hop`` seconds
    (default: back to back).

    ``W = round(window * rate)`` (rate defaults to the file's). The file is read block by
    block at its own rate and only about one window (plus resampling context) is held in memory.
    When resampling, each window is resampled with the filter's half-width of neighbouring
    file samples on each side (zeros beyond the file's ends) and then cropped, so it equals the
    matching part of the resampled whole file whenever its start falls on the output grid
    (otherwise it is the same signal on a grid shifted by under one sample). Window ``k`` starts at
    file sample ``round(k * hop * file_rate)``; only whole windows are yielded.
    """
    hop = window if hop is None else hop
    if window <= 0 or hop <= 0 or (rate is not None and rate < 1):
        raise DataError(f"{path}: need window > 0, hop > 0 and rate >= 1 "
                        f"(got window={window}, hop={hop}, rate={rate})")
    with _open(path) as f:
        sr, total = f.samplerate, f.frames
        out_rate = sr if rate is None else rate
        up, down = _ratio(sr, out_rate)
        w_out = max(1, round(window * out_rate))
        w_in = -(-w_out * down // up)  # file samples whose resampling covers W outputs
        ctx = 0 if up == down else -(-_width(up, down) // down) * down
        if w_in > total:
            raise DataError(f"{path}: too short for one window: {total / sr:.3f}s "
                            f"({total} samples at {sr} Hz), but a window is {window}s; "
                            "use a shorter window or a longer recording")
        buf, buf_start, k = np.zeros((0, f.channels), np.float32), 0, 0
        while (s := round(k * hop * sr)) + w_in <= total:
            lo, hi = s - ctx, min(total, s + w_in + ctx)
            if buf_start < max(lo, 0):  # drop samples no later window needs
                buf, buf_start = buf[max(lo, 0) - buf_start:], max(lo, 0)
            if buf_start + len(buf) < hi:
                f.seek(buf_start + len(buf))
                need = hi - buf_start - len(buf)
                more = f.read(need, dtype="float32", always_2d=True)
                if len(more) < need:
                    raise DataError(f"{path}: truncated: the header promises {total} samples "
                                    f"but reading stopped at {buf_start + len(buf) + len(more)}"
                                    f"; {REENCODE_HINT}")
                _check(more, path)
                buf = np.concatenate([buf, more]) if len(buf) else more
            x = _frames(buf[max(lo, 0) - buf_start: hi - buf_start], mono)
            if up != down:
                # Zero context before the file start, as whole-file resampling assumes.
                x = torch.nn.functional.pad(x, (max(0, -lo), 0))
                skip = ctx * up // down
                x = resample(x, sr, out_rate)[:, skip: skip + w_out]
            yield s / sr, x
            k += 1
