"""monde.worlds: small simulated worlds that render training clips with their true state."""

from monde.worlds.balls import OCCLUDER_COLOR, PALETTE, BallsClips, BallsConfig, BouncingBalls
from monde.worlds.plant import PlantConfig, PlantFault, PlantRun, SyntheticPlant

__all__ = ["OCCLUDER_COLOR", "PALETTE", "BallsClips", "BallsConfig", "BouncingBalls",
           "PlantConfig", "PlantFault", "PlantRun", "SyntheticPlant"]
