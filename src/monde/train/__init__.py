"""Learning: the trainer, checkpoints, schedules, metrics and parallelism."""

from monde.train.config import TrainConfig
from monde.train.parallel import ParallelConfig, parallelize
from monde.train.trainer import TrainResult, train, train_step

__all__ = ["ParallelConfig", "TrainConfig", "TrainResult", "parallelize", "train", "train_step"]
