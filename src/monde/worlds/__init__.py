"""monde.worlds: small simulated worlds that render training clips with their true state."""

from monde.worlds.balls import OCCLUDER_COLOR, PALETTE, BallsClips, BallsConfig, BouncingBalls

__all__ = ["OCCLUDER_COLOR", "PALETTE", "BallsClips", "BallsConfig", "BouncingBalls"]
