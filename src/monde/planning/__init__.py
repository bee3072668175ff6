"""Planners (CEM, MPPI, gradient) behind one interface, and the MPC loop that uses them."""

from monde.planning.base import Bounds, CostFn, Planner, PlanResult, shift
from monde.planning.cem import CEM
from monde.planning.config import PlannerConfig, make_planner
from monde.planning.gradient import GradientPlanner
from monde.planning.mppi import MPPI

__all__ = ["CEM", "MPPI", "Bounds", "CostFn", "GradientPlanner", "PlanResult", "Planner",
           "PlannerConfig", "make_planner", "shift"]
