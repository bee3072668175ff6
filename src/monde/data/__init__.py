"""monde.data: reading real-world data (video files, sensor tables) into arrays and tensors."""

from monde.data.normalizer import Normalizer
from monde.data.sensor_schema import SensorSchema, load_schema, schema_from_args
from monde.data.sensors import SensorTable, read_table
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
    "Normalizer", "SensorSchema", "SensorTable", "load_schema", "read_table", "schema_from_args",
]
