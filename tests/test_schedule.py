"""Schedules: endpoints, warmup, monotonic parts, clamping."""

from __future__ import annotations

import math

import pytest

from monde.train.schedule import cosine, linear, warmup_cosine


def test_warmup_cosine_endpoints_and_warmup():
    kw = dict(total_steps=100, warmup_steps=10, base=1.0, final=0.1)
    assert warmup_cosine(0, **kw) == 0.0
    assert warmup_cosine(5, **kw) == pytest.approx(0.5)  # linear ramp
    assert warmup_cosine(10, **kw) == pytest.approx(1.0)  # peak right after warmup
    assert warmup_cosine(55, **kw) == pytest.approx(0.55)  # cosine midpoint
    assert warmup_cosine(100, **kw) == pytest.approx(0.1)
    assert warmup_cosine(10_000, **kw) == pytest.approx(0.1)  # clamped beyond the end
    assert warmup_cosine(-3, **kw) == 0.0


def test_warmup_cosine_is_monotonic_in_each_phase():
    values = [warmup_cosine(s, 50, 5, 2.0) for s in range(60)]
    assert all(a < b for a, b in zip(values[:5], values[1:6]))
    assert all(a >= b for a, b in zip(values[5:], values[6:]))
    assert all(a > b for a, b in zip(values[5:50], values[6:51]))


def test_warmup_cosine_without_warmup_and_with_too_long_warmup():
    assert warmup_cosine(0, 10, 0, 3.0) == pytest.approx(3.0)
    # A smoke test shorter than the recipe's warmup still ramps up and ends at `final`.
    values = [warmup_cosine(s, 4, 1000, 1.0, 0.2) for s in range(6)]
    assert values[:4] == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert values[4:] == pytest.approx([0.2, 0.2])
    with pytest.raises(ValueError):
        warmup_cosine(0, 10, -1, 1.0)


@pytest.mark.parametrize("fn", [cosine, linear])
def test_cosine_and_linear_go_from_start_to_end(fn):
    assert fn(0, 20, 0.04, 0.4) == pytest.approx(0.04)
    assert fn(10, 20, 0.04, 0.4) == pytest.approx(0.22)  # both pass the midpoint at half time
    assert fn(20, 20, 0.04, 0.4) == pytest.approx(0.4)
    assert fn(99, 20, 0.04, 0.4) == pytest.approx(0.4)
    assert fn(-5, 20, 0.04, 0.4) == pytest.approx(0.04)
    assert fn(3, 0, 1.0, 2.0) == 2.0  # zero-length schedule is already done
    up = [fn(s, 20, 0.04, 0.4) for s in range(21)]
    down = [fn(s, 20, 1.0, 0.0) for s in range(21)]
    assert all(a < b for a, b in zip(up, up[1:]))
    assert all(a > b for a, b in zip(down, down[1:]))


def test_cosine_shape_differs_from_linear():
    assert cosine(5, 20, 0.0, 1.0) == pytest.approx((1 - math.cos(math.pi / 4)) / 2)
    assert linear(5, 20, 0.0, 1.0) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        linear(0, -1, 0.0, 1.0)
