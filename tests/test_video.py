"""Video files: write small clips, read them back, and turn every bad input into a DataError."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
import torch

import monde.data.video as video_mod
import monde.data.video_folder as video_folder_mod
from monde.data import VideoFolder, iter_clips, read_video, video_info, write_video
from monde.errors import DataError

av = pytest.importorskip("av", reason="PyAV is not installed (pip install 'monde[video]')")

T, H, W, SQ = 20, 32, 48, 8  # frames, height, width, side of the moving square


def _has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:
        return False
    return True


def _moving_square(n: int = T) -> np.ndarray:
    """uint8 [n, 3, H, W]: a white square whose left edge is at x = 2t, top at y = 12."""
    frames = np.zeros((n, 3, H, W), np.uint8)
    for t in range(n):
        frames[t, :, 12 : 12 + SQ, 2 * t : 2 * t + SQ] = 255
    return frames


def _square_x(video: torch.Tensor) -> np.ndarray:
    """Column centroid of the bright pixels of each frame, [T]."""
    bright = (video.float().mean(1) > 128).numpy()  # [T, H, W]
    cols = np.arange(video.shape[-1])
    return (bright.sum(1) * cols).sum(-1) / bright.sum((1, 2))


def _expected_x(t) -> np.ndarray:
    return 2 * np.asarray(t) + (SQ - 1) / 2


FORMATS = {
    ".mp4": ("libx264", "mpeg4"), ".avi": ("mpeg4", "mjpeg"),
    ".webm": ("libvpx-vp9", "libvpx"), ".mkv": ("libx264", "mpeg4"), ".mov": ("libx264", "mpeg4"),
}


@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "square.mp4"
    write_video(path, torch.from_numpy(_moving_square()), fps=10)
    return path


@pytest.mark.parametrize("ext", [*FORMATS, ".gif"])
def test_write_then_read_round_trip(tmp_path, ext):
    if ext != ".gif" and not any(_has_encoder(c) for c in FORMATS[ext]):
        pytest.skip(f"this PyAV build has no {ext} encoder (tried {FORMATS[ext]})")
    path = tmp_path / f"square{ext}"
    write_video(path, _moving_square(), fps=10)  # numpy input is accepted too
    video = read_video(path)
    assert video.dtype == torch.uint8 and video.shape == (T, 3, H, W)
    np.testing.assert_allclose(_square_x(video), _expected_x(range(T)), atol=0.75)
    info = video_info(path)
    assert (info.width, info.height, info.fps) == (W, H, 10.0)
    assert abs(info.frames - T) <= 1 and abs(info.duration_s - 2.0) < 0.2
    if info.exact:  # mp4/avi/mov store the count; webm/mkv only a duration
        assert info.frames == T


def test_step_start_max_frames(mp4):
    video = read_video(mp4, step=3, start=2, max_frames=4)
    assert video.shape == (4, 3, H, W)
    np.testing.assert_allclose(_square_x(video), _expected_x([2, 5, 8, 11]), atol=0.75)
    assert read_video(mp4, step=3, start=2).shape[0] == 6  # frames 2, 5, ..., 17


def test_resize(mp4):
    assert read_video(mp4, size=16, max_frames=2).shape == (2, 3, 16, 16)
    half = read_video(mp4, size=(H // 2, W // 2))
    assert half.shape == (T, 3, H // 2, W // 2)
    # Halving the width halves the square's position (pixel centres: x' = (x + 0.5) / 2 - 0.5).
    expected = (_expected_x(range(T)) + 0.5) / 2 - 0.5
    np.testing.assert_allclose(_square_x(half), expected, atol=0.75)


def test_iter_clips_counts_and_content(mp4):
    assert [c.shape for c in iter_clips(mp4, clip_len=4)] == [(4, 3, H, W)] * 5
    # step 2 keeps 10 frames; clips of 3 starting every 2 sampled frames: 0, 2, 4, 6.
    clips = list(iter_clips(mp4, clip_len=3, step=2, stride=2, size=(H, W)))
    assert len(clips) == 4
    for c, clip in enumerate(clips):
        np.testing.assert_allclose(_square_x(clip), _expected_x([4 * c, 4 * c + 2, 4 * c + 4]),
                                   atol=0.75)
    # A stride longer than the clip leaves gaps: sampled starts 0 and 7 of 10.
    assert len(list(iter_clips(mp4, clip_len=3, step=2, stride=7))) == 2


def test_iter_clips_streams(mp4):
    first = next(iter_clips(mp4, clip_len=2))
    np.testing.assert_allclose(_square_x(first), _expected_x([0, 1]), atol=0.75)


def test_video_shorter_than_clip(mp4):
    with pytest.raises(DataError, match=r"square\.mp4.*too short.*shorter clip"):
        list(iter_clips(mp4, clip_len=11, step=2))
    with pytest.raises(DataError, match=r"square\.mp4.*only 20 frames"):
        read_video(mp4, start=25)


def _bad_files(tmp_path, mp4) -> dict:
    """Unreadable files of every kind, by name."""
    rng = np.random.default_rng(0)
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    data = mp4.read_bytes()
    truncated = tmp_path / "truncated.mp4"  # the mp4 index (moov) is at the end: cut it off
    truncated.write_bytes(data[: len(data) // 2])
    files = {"noise": noise, "truncated": truncated, "missing": tmp_path / "missing.mp4"}
    if _has_encoder("pcm_s16le"):
        files["audio"] = tmp_path / "audio.mkv"
        with av.open(str(files["audio"]), "w") as c:
            stream = c.add_stream("pcm_s16le", rate=8000)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1600), np.int16), format="s16",
                                               layout="stereo")
            frame.sample_rate = 8000
            c.mux(stream.encode(frame))
            c.mux(stream.encode())
    return files


@pytest.mark.parametrize("kind", ["noise", "truncated", "missing", "audio"])
@pytest.mark.parametrize("reader", ["read_video", "video_info", "iter_clips"])
def test_bad_files_raise_data_error(tmp_path, mp4, kind, reader):
    files = _bad_files(tmp_path, mp4)
    if kind not in files:
        pytest.skip("no pcm_s16le encoder to write an audio-only file")
    path = files[kind]
    read = {"read_video": read_video, "video_info": video_info,
            "iter_clips": lambda p: list(iter_clips(p, clip_len=2))}[reader]
    with pytest.raises(DataError) as info:
        read(path)
    msg = str(info.value)
    assert str(path) in msg
    hint = {"missing": "check the path", "audio": "no video stream"}.get(kind, "re-encode it")
    assert hint in msg
    if kind != "missing":
        assert "--skip-bad-videos" in msg
    assert not isinstance(info.value, av.FFmpegError)


def _folder(tmp_path, mp4):
    root = tmp_path / "videos"
    (root / "sub").mkdir(parents=True)
    (root / "a.mp4").write_bytes(mp4.read_bytes())
    write_video(root / "sub" / "b.avi", _moving_square()[::-1].copy())
    write_video(root / "short.mp4", _moving_square(4))
    (root / "bad.mp4").write_bytes(b"\x00not a video" * 100)
    (root / "notes.txt").write_text("ignored")
    return root


def test_video_folder_raises_on_bad_file(tmp_path, mp4):
    with pytest.raises(DataError, match=r"bad\.mp4.*--skip-bad-videos"):
        VideoFolder(_folder(tmp_path, mp4), clip_len=8)


def test_video_folder_skips_and_counts(tmp_path, mp4):
    ds = VideoFolder(_folder(tmp_path, mp4), clip_len=5, step=2, size=16, clips_per_video=2,
                     skip_bad=True)
    assert [p.name for p, _ in ds.skipped] == ["bad.mp4", "short.mp4"]
    assert "too short" in ds.skipped[1][1]
    assert len(ds) == 4 and [p.name for p, _ in ds.items] == ["a.mp4"] * 2 + ["b.avi"] * 2
    assert "2 of 4 videos used, 4 clips, 2 skipped" in ds.summary and "bad.mp4" in ds.summary
    batch = torch.stack([ds[i] for i in range(len(ds))])
    assert batch.shape == (4, 5, 3, 16, 16) and batch.dtype == torch.uint8
    # Two clips per video start at different frames (1/4 and 3/4 of the room left).
    assert [s for _, s in ds.items] == [2, 8, 2, 8]
    assert not torch.equal(batch[0], batch[1])


def _overstate_lengths(monkeypatch, frames: int = 40):
    """Make every header claim ``frames`` frames, as webm/mkv estimates sometimes do."""
    real = video_mod.video_info

    def info(path):
        return dataclasses.replace(real(path), frames=frames, exact=False)

    monkeypatch.setattr(video_folder_mod, "video_info", info)


def test_video_folder_falls_back_to_last_clip_when_length_was_overestimated(
    tmp_path, mp4, monkeypatch
):
    _overstate_lengths(monkeypatch)
    root = tmp_path / "v"
    root.mkdir()
    (root / "a.mp4").write_bytes(mp4.read_bytes())
    ds = VideoFolder(root, clip_len=8)
    assert ds.items[0][1] == 16  # planned from the claimed 40 frames: past the real end
    np.testing.assert_allclose(_square_x(ds[0]), _expected_x(range(12, 20)), atol=0.75)


def test_video_folder_replaces_a_file_that_fails_to_decode(tmp_path, mp4, monkeypatch):
    _overstate_lengths(monkeypatch)
    root = tmp_path / "v"
    root.mkdir()
    write_video(root / "a.mp4", _moving_square(4))  # passes the probe, too short to decode
    (root / "b.mp4").write_bytes(mp4.read_bytes())
    with pytest.raises(DataError, match=r"a\.mp4.*too short.*--skip-bad-videos"):
        VideoFolder(root, clip_len=8)[0]
    ds = VideoFolder(root, clip_len=8, skip_bad=True)
    assert len(ds) == 2 and not ds.skipped
    np.testing.assert_allclose(_square_x(ds[0]), _expected_x(range(12, 20)), atol=0.75)
    assert [p.name for p, _ in ds.skipped] == ["a.mp4"] and "1 skipped" in ds.summary


def test_video_folder_empty_or_missing(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        VideoFolder(tmp_path / "nope")
    with pytest.raises(DataError, match="no video files"):
        VideoFolder(tmp_path)


def test_write_video_rejects_bad_input(tmp_path):
    with pytest.raises(DataError, match="even width and height"):
        write_video(tmp_path / "odd.mp4", np.zeros((2, 3, 15, 16), np.uint8))
    with pytest.raises(DataError, match=r"uint8 frames \[T, 3, H, W\]"):
        write_video(tmp_path / "f.mp4", np.zeros((2, 16, 16, 3), np.float32))
    with pytest.raises(DataError, match="cannot write .xyz"):
        write_video(tmp_path / "f.xyz", np.zeros((2, 3, 16, 16), np.uint8))


def test_missing_pyav_says_how_to_install(monkeypatch, mp4):
    monkeypatch.setitem(sys.modules, "av", None)  # makes `import av` raise ImportError
    with pytest.raises(DataError, match=r'pip install "monde\[video\]"'):
        read_video(mp4)
