"""The JEPA objective: encoders, predictor, masks, anti-collapse terms, and ``WorldModel``."""

from monde.jepa.config import (
    EncoderConfig,
    MaskConfig,
    ModelConfig,
    ObjectiveConfig,
    PredictorConfig,
)
from monde.jepa.diagnostics import CollapseStats, collapse_stats
from monde.jepa.ema import ema_update, momentum_schedule
from monde.jepa.masks import (
    CausalFuture,
    MaskMixture,
    MaskPair,
    MultiBlock2D,
    TimeBlocks,
    TubeMultiBlock3D,
    gather_tokens,
    vjepa_masks,
)
from monde.jepa.model import JEPA, LossOutput
from monde.jepa.networks import Encoder, Predictor
from monde.jepa.regularizers import RegOutput, SIGReg, VICReg, all_reduce_sum
from monde.jepa.world_model import WorldModel, load

__all__ = [
    "JEPA", "CausalFuture", "CollapseStats", "Encoder", "EncoderConfig", "LossOutput",
    "MaskConfig", "MaskMixture", "MaskPair", "ModelConfig", "MultiBlock2D", "ObjectiveConfig",
    "Predictor", "PredictorConfig", "RegOutput", "SIGReg", "TimeBlocks", "TubeMultiBlock3D",
    "VICReg", "WorldModel", "all_reduce_sum", "collapse_stats", "ema_update", "gather_tokens",
    "load", "momentum_schedule", "vjepa_masks",
]
