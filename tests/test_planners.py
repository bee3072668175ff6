"""Planners on a synthetic cost with a known optimum, the planner config, and Wilson intervals."""

from __future__ import annotations

import pytest
import torch

from monde.errors import ConfigError
from monde.evals.planning import wilson_interval
from monde.planning import (
    CEM,
    MPPI,
    Bounds,
    GradientPlanner,
    PlannerConfig,
    make_planner,
    shift,
)

H, A = 5, 2


def reach_cost(target):
    """Squared distance between where the summed actions lead and ``target`` ([N, H, A] → [N])."""
    target = torch.as_tensor(target, dtype=torch.float32)

    def cost(plan: torch.Tensor) -> torch.Tensor:
        return (plan.cumsum(dim=1)[:, -1] - target).pow(2).sum(-1)

    return cost


def planners(bounds: Bounds, seed: int = 0):
    return {
        "cem": CEM(H, A, bounds, samples=200, elites=20, iterations=20, seed=seed),
        "mppi": MPPI(H, A, bounds, samples=500, iterations=10, seed=seed),
        "gradient": GradientPlanner(H, A, bounds, restarts=8, steps=60, seed=seed),
    }


@pytest.mark.parametrize("name", ["cem", "mppi", "gradient"])
def test_planner_finds_a_reachable_target(name):
    bounds = Bounds.symmetric(1.0, A)
    planner = planners(bounds)[name]
    cost = reach_cost([2.0, -1.5])
    res = planner.plan(cost)
    assert res.actions.shape == (H, A)
    assert res.cost < 0.01
    assert res.cost == pytest.approx(float(cost(res.actions[None])[0]), abs=1e-5)
    assert res.iterations > 0 and res.seconds >= 0
    assert not res.actions.requires_grad
    assert (res.actions.abs() <= 1.0 + 1e-6).all()


@pytest.mark.parametrize("name", ["cem", "mppi", "gradient"])
def test_planner_stays_in_bounds_when_the_optimum_is_outside(name):
    # The target is out of reach: the best plan pushes every action to the bound.
    bounds = Bounds(torch.tensor([-1.0, -0.25]), torch.tensor([0.5, 0.75]))
    res = planners(bounds)[name].plan(reach_cost([10.0, -10.0]))
    assert (res.actions >= bounds.low - 1e-6).all() and (res.actions <= bounds.high + 1e-6).all()
    best = float(reach_cost([10.0, -10.0])(bounds.high.new_tensor([[0.5, -0.25]]).expand(1, H, A))[0])
    assert res.cost <= best + 0.1  # at the corner of the box
    # An init far outside the box is clamped onto it first.
    res = planners(bounds)[name].plan(reach_cost([0.0, 0.0]), init=torch.full((H, A), 50.0))
    assert (res.actions >= bounds.low - 1e-6).all() and (res.actions <= bounds.high + 1e-6).all()


@pytest.mark.parametrize("name", ["cem", "mppi", "gradient"])
def test_a_good_warm_start_is_never_lost_and_seeds_repeat(name):
    bounds = Bounds.symmetric(1.0, A)
    cost = reach_cost([2.0, -1.5])
    optimum = torch.tensor([[0.4, -0.3]]).repeat(H, 1)
    assert float(cost(optimum[None])[0]) == pytest.approx(0.0, abs=1e-10)
    res = planners(bounds)[name].plan(cost, init=optimum)
    assert res.cost <= 1e-6
    a = planners(bounds, seed=3)[name].plan(cost)
    b = planners(bounds, seed=3)[name].plan(cost)
    assert torch.equal(a.actions, b.actions)


def test_wrong_shapes_raise_value_error():
    bounds = Bounds.symmetric(1.0, A)
    for planner in planners(bounds).values():
        with pytest.raises(ValueError, match="init must have shape"):
            planner.plan(reach_cost([0.0, 0.0]), init=torch.zeros(H + 1, A))
        with pytest.raises(ValueError, match="init must have shape"):
            planner.plan(reach_cost([0.0, 0.0]), init=torch.zeros(H * A))
    with pytest.raises(ValueError, match="bounds must have shape"):
        CEM(H, 3, bounds)
    with pytest.raises(ValueError, match="positive"):
        MPPI(0, A, bounds)
    with pytest.raises(ValueError, match="elites"):
        CEM(H, A, bounds, samples=10, elites=20)


def test_shift():
    plan = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    assert shift(plan, 1).flatten().tolist() == [2.0, 3.0, 4.0, 4.0]
    assert shift(plan, 2).flatten().tolist() == [3.0, 4.0, 4.0, 4.0]
    assert shift(plan, 4).flatten().tolist() == [4.0] * 4
    assert shift(plan, 9).flatten().tolist() == [4.0] * 4
    assert plan.flatten().tolist() == [1.0, 2.0, 3.0, 4.0]  # not modified in place
    two = torch.arange(6.0).reshape(3, 2)
    assert shift(two, 1).tolist() == [[2.0, 3.0], [4.0, 5.0], [4.0, 5.0]]


def test_bounds():
    b = Bounds.symmetric(2.0, 3)
    assert b.low.tolist() == [-2.0] * 3 and b.width.tolist() == [4.0] * 3
    assert b.clamp(torch.tensor([[-5.0, 0.5, 7.0]])).tolist() == [[-2.0, 0.5, 2.0]]


@pytest.mark.parametrize("name, cls", [("cem", CEM), ("mppi", MPPI), ("gradient", GradientPlanner)])
def test_make_planner(name, cls):
    cfg = PlannerConfig(name=name, horizon=4, samples=32, iterations=3)
    planner = make_planner(cfg, 2, Bounds.symmetric(2.45, 2))
    assert isinstance(planner, cls)
    assert planner.horizon == 4 and planner.action_dim == 2
    res = planner.plan(reach_cost([3.0, 1.0]))
    assert res.actions.shape == (4, 2) and (res.actions.abs() <= 2.45 + 1e-6).all()
    # A small sample budget still gives CEM a valid number of elites.
    make_planner(PlannerConfig(name=name, samples=4, elites=25), 2, Bounds.symmetric(1.0, 2))


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "foo"}, "unknown planner 'foo'"),
    ({"horizon": 4, "replan_every": 5}, "replan_every"),
    ({"replan_every": 0}, "replan_every"),
    ({"samples": 1}, "samples"),
    ({"horizon": 0}, "horizon"),
])
def test_planner_config_errors(kwargs, message):
    cfg = PlannerConfig(**kwargs)
    with pytest.raises(ConfigError, match=message):
        cfg.validate()
    with pytest.raises(ConfigError):
        make_planner(cfg, 2, Bounds.symmetric(1.0, 2))


def test_wilson_interval():
    lo, hi = wilson_interval(50, 50)
    assert lo == pytest.approx(0.929, abs=1e-3) and hi == 1.0
    lo, hi = wilson_interval(0, 50)
    assert lo == 0.0 and hi == pytest.approx(0.071, abs=1e-3)
    lo, hi = wilson_interval(25, 50)
    assert lo < 0.5 < hi and (0.5 - lo) == pytest.approx(hi - 0.5)
    a, b = wilson_interval(10, 40)
    c, d = wilson_interval(30, 40)
    assert a == pytest.approx(1 - d) and b == pytest.approx(1 - c)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    # More episodes, narrower interval.
    assert (lambda r: r[1] - r[0])(wilson_interval(100, 200)) < (lambda r: r[1] - r[0])(wilson_interval(10, 20))
