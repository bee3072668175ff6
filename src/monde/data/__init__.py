"""monde.data: reading real-world data (video files) into tensors."""

from monde.data.video import (
    VIDEO_EXTENSIONS,
    VideoInfo,
    iter_clips,
    read_video,
    video_info,
    write_video,
)
from monde.data.video_folder import VideoFolder

__all__ = [
    "VIDEO_EXTENSIONS", "VideoFolder", "VideoInfo", "iter_clips", "read_video", "video_info",
    "write_video",
]
