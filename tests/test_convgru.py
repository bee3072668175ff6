"""The recurrent next-map predictor: its shapes, its causality, and the memory it exists for."""

from __future__ import annotations

import pytest
import torch

from monde.nn.convgru import RecurrentConvPredictor
from monde.nn.convnet import HistoryConvPredictor


def test_forward_is_the_first_step_of_a_rollout_and_rollouts_extend_each_other():
    torch.manual_seed(0)
    net = RecurrentConvPredictor(channels=4, side=6, history=3, hidden=8, layers=2)
    hist = torch.randn(2, 3, 4, 6, 6)
    roll = net.rollout(hist, 4)
    assert roll.shape == (2, 4, 4, 6, 6)
    torch.testing.assert_close(net(hist), roll[:, 0])
    torch.testing.assert_close(net.rollout(hist, 2), roll[:, :2])
    # Every map of the history reaches the forecast, the oldest included.
    other = hist.clone()
    other[:, 0] += 1.0
    assert not torch.allclose(net(other), net(hist))
    with pytest.raises(ValueError, match=r"\[N, 3, 4, 6, 6\]"):
        net(torch.randn(2, 2, 4, 6, 6))
    with pytest.raises(ValueError, match="head layers"):
        RecurrentConvPredictor(4, 6, 3, layers=1)


def test_history_predictor_rollout_feeds_its_forecasts_back():
    torch.manual_seed(0)
    net = HistoryConvPredictor(channels=2, side=5, history=3, hidden=8, layers=2)
    hist = torch.randn(1, 3, 2, 5, 5)
    roll = net.rollout(hist, 2)
    torch.testing.assert_close(roll[:, 0], net(hist))
    torch.testing.assert_close(roll[:, 1], net(torch.cat([hist[:, 1:], roll[:, :1]], 1)))


def _hidden_dot(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A dot moving one cell right per frame along a random row of an 8×8 map; columns 3–5 are
    behind a screen (the map is empty there). History: columns 0–2; the next 4 frames: hidden,
    hidden, hidden, out again at column 6. Returns ``(hist [n, 3, 1, 8, 8], future [n, 4, 1,
    8, 8])``."""
    rows = torch.randint(0, 8, (n,), generator=gen)
    maps = torch.zeros(n, 7, 1, 8, 8)
    for t in range(7):
        col = t if t < 3 else (6 if t == 6 else None)
        if col is not None:
            maps[torch.arange(n), t, 0, rows, col] = 1.0
    return maps[:, :3], maps[:, 3:]


def test_the_state_carries_a_dot_behind_a_screen_past_the_history_window():
    """After three forecasts of an empty screen, the history predictor's window holds nothing
    but those forecasts; the recurrent state still knows the row, and brings the dot back out
    in the right cell."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    net = RecurrentConvPredictor(channels=1, side=8, history=3, hidden=16, layers=2)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(300):
        hist, future = _hidden_dot(64, gen)
        loss = (net.rollout(hist, 4) - future).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    hist, future = _hidden_dot(200, torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = net.rollout(hist, 4)[:, 3, 0].flatten(1)  # the frame where the dot is out again
    hit = (out.argmax(1) == future[:, 3, 0].flatten(1).argmax(1)).float().mean()
    assert hit > 0.95, hit


def test_a_streamed_state_brings_a_dot_back_after_a_screen_longer_than_any_window():
    """Teacher forcing through a whole stream: the dot is in view for 3 frames, behind the
    screen for 5 (the maps show nothing), then out again. Forecasting that last frame from the
    true maps before it needs a memory 6 frames long, longer than the 3-map windows of the
    other test; the state that has run through the stream has it."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)

    def stream(n: int, g: torch.Generator) -> torch.Tensor:
        rows = torch.randint(0, 8, (n,), generator=g)
        maps = torch.zeros(n, 9, 1, 8, 8)
        for t, col in ((0, 0), (1, 1), (2, 2), (8, 8 - 1)):  # columns 3-6 are the screen
            maps[torch.arange(n), t, 0, rows, col] = 1.0
        return maps

    net = RecurrentConvPredictor(channels=1, side=8, history=3, hidden=16, layers=2)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(300):
        maps = stream(64, gen)
        hs = net.states(maps)
        pred = net.predict(hs[:, :-1].flatten(0, 1), maps[:, :-1].flatten(0, 1))
        loss = (pred.reshape(64, 8, 1, 8, 8)[:, 1:] - maps[:, 2:]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    maps = stream(200, torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = net.predict(net.states(maps[:, :8])[:, -1], maps[:, 7])[:, 0].flatten(1)
        window = net(maps[:, 5:8])[:, 0].flatten(1)  # the last 3 maps only: all empty
    want = maps[:, 8, 0].flatten(1).argmax(1)
    assert (out.argmax(1) == want).float().mean() > 0.95
    assert (window.argmax(1) == want).float().mean() < 0.5  # a window cannot know the row
