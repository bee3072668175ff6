"""A next-map predictor with a memory: a convolutional GRU state carried from frame to frame.

:class:`~monde.nn.convnet.HistoryConvPredictor` reads the K most recent maps stacked as
channels and must work out, in one pass, where an object that went behind something a few
frames ago is *now*. A recurrent state makes that a local rule applied once per frame — "what
moved here last frame keeps moving" — which 3×3 convolutions express directly, and it keeps
carrying a hidden object while the predicted frames (where it is, correctly, invisible) are
fed back during a rollout. The price is a sequential loop over frames (cheap at 8×8 cells).
"""

from __future__ import annotations

import torch
from torch import nn

from monde.nn.convnet import cell_centres, check_history, dilated_conv_stack


class RecurrentConvPredictor(nn.Module):
    """Next feature map from a ConvGRU state over the maps before it.

    The same call as :class:`~monde.nn.convnet.HistoryConvPredictor`: ``forward(hist)`` with
    ``hist [N, K, C, h, w]`` (oldest first) returns the next map ``[N, C, h, w]``. The state
    starts at zero and takes in the K maps one by one (each with its change since the previous
    map, so motion is an input rather than something the gates must difference out, and two
    coordinate channels); a head of 3×3 convolutions on ``[state, newest map, coordinates]``
    gives the change of the newest map (residual, as in the history predictor).
    :meth:`rollout` keeps the state running through the forecasts it feeds back.
    """

    def __init__(self, channels: int, side: int, history: int, hidden: int = 64,
                 layers: int = 3):
        super().__init__()
        if layers < 2:
            raise ValueError(f"RecurrentConvPredictor needs at least 2 head layers, got {layers}")
        self.channels, self.side, self.history, self.hidden = channels, side, history, hidden
        coords = cell_centres(side)
        yy, xx = torch.meshgrid(coords, coords, indexing="ij")
        self.register_buffer("coords", torch.stack([xx, yy]), persistent=False)
        self.inp = nn.Conv2d(2 * channels + 2, hidden, 3, padding=1)
        self.gates = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1)  # update, reset
        self.cand = nn.Conv2d(2 * hidden, hidden, 3, padding=1)
        self.head = dilated_conv_stack(nn.Conv2d, hidden + channels + 2, hidden, channels, layers)

    def _coords(self, x: torch.Tensor) -> torch.Tensor:
        return self.coords.to(x.dtype).expand(x.shape[0], -1, -1, -1)

    def step(self, h: torch.Tensor, x: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        """State after seeing map ``x [N, C, h, w]`` (``prev``: the map before it), from ``h
        [N, hidden, h, w]``."""
        u = nn.functional.gelu(self.inp(torch.cat([x, x - prev, self._coords(x)], 1)))
        update, reset = torch.sigmoid(self.gates(torch.cat([u, h], 1))).chunk(2, 1)
        cand = torch.tanh(self.cand(torch.cat([u, reset * h], 1)))
        return h + update * (cand - h)

    def predict(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The map after ``x [N, C, h, w]`` given the state that has seen it."""
        return x + self.head(torch.cat([h, x, self._coords(x)], 1))

    def states(self, maps: torch.Tensor, h: torch.Tensor | None = None,
               prev: torch.Tensor | None = None) -> torch.Tensor:
        """States ``[N, T, hidden, h, w]`` after each of the maps ``[N, T, C, h, w]``: entry
        ``t`` has seen maps 0…t. ``h`` / ``prev``: the state and the map before ``maps[:, 0]``
        when a stream continues (default: a fresh state, no motion into the first map)."""
        n = maps.shape[0]
        if h is None:
            h = maps.new_zeros(n, self.hidden, self.side, self.side)
        prev = maps[:, 0] if prev is None else prev
        out = []
        for x in maps.unbind(1):
            h, prev = self.step(h, x, prev), x
            out.append(h)
        return torch.stack(out, 1)

    def burn_in(self, hist: torch.Tensor) -> torch.Tensor:
        """State ``[N, hidden, h, w]`` after the maps ``hist [N, K, C, h, w]``."""
        check_history(hist, self.history, self.channels, self.side)
        return self.states(hist)[:, -1]

    def forward(self, hist: torch.Tensor) -> torch.Tensor:
        """``hist [N, K, C, h, w]`` → the next map ``[N, C, h, w]``."""
        return self.predict(self.burn_in(hist), hist[:, -1])

    def roll(self, h: torch.Tensor, x: torch.Tensor, steps: int) -> torch.Tensor:
        """``steps`` maps ``[N, steps, C, h, w]`` after the map ``x [N, C, h, w]`` from the state
        ``h`` that has seen it, each forecast fed back as the next input while the state runs
        on."""
        out = []
        for i in range(steps):
            nxt = self.predict(h, x)
            out.append(nxt)
            if i + 1 < steps:
                h, x = self.step(h, nxt, x), nxt
        return torch.stack(out, 1)

    def rollout(self, hist: torch.Tensor, steps: int) -> torch.Tensor:
        """``steps`` maps ``[N, steps, C, h, w]`` after ``hist [N, K, C, h, w]``."""
        return self.roll(self.burn_in(hist), hist[:, -1], steps)
