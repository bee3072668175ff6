"""Convolutions over spectrograms that never look ahead in time (for frame-causal audio JEPAs).

A sound's world model forecasts what it will hear next from what it has heard. For the
forecast to be a real one, the latent of time step ``t`` must depend on no sample after
``t``'s frames: every convolution here pads on the past side of the time axis only, so output
step ``t`` of a layer sees input frames up to its own last one and none later.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from monde.nn.convnet import dilated_conv_stack


class _CausalConv2d(nn.Module):
    """3×3 convolution over ``[N, C, freq, time]``: frequency padded both sides, time on the
    past side only (two frames), with strides ``(freq_stride, time_stride)``."""

    def __init__(self, cin: int, cout: int, stride: tuple[int, int]):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (2, 0, 1, 1)))


class CausalSpecEncoder(nn.Module):
    """Spectrograms ``[N, 1, M, T]`` → latent maps ``[N, map_channels, M / 2^L, T / S]``.

    ``L = len(widths)`` stride-2-in-frequency 3×3 convolutions (GELU between), the i-th with
    time stride ``time_strides[i]`` (``S`` is their product: spectrogram frames per latent
    step), then a 1×1 convolution to ``map_channels``. No normalisation layers: a clip's
    latents must not depend on the rest of the batch. Time step ``t`` of the output summarises
    frames up to ``(t + 1) S - 1`` (and a few before its own ``S``), never later ones.
    """

    def __init__(self, widths: tuple[int, ...], time_strides: tuple[int, ...],
                 map_channels: int, in_channels: int = 1):
        super().__init__()
        if len(widths) != len(time_strides) or not widths:
            raise ValueError(f"widths {widths} and time_strides {time_strides} must be "
                             "non-empty and of the same length")
        layers: list[nn.Module] = []
        prev = in_channels
        for w, s in zip(widths, time_strides):
            layers += [_CausalConv2d(prev, w, (2, s)), nn.GELU()]
            prev = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(prev, map_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"expected spectrograms [N, C, M, T], got {tuple(x.shape)}")
        return self.head(self.features(x))


class HistoryConv1dPredictor(nn.Module):
    """The next latent map ``[N, C, F]`` from the ``history`` maps before it ``[N, K, C, F]``.

    The K maps are stacked as channels; 1-D convolutions over the F frequency cells (every
    other hidden layer dilated by 2, so a harmonic series or a formant a few cells away is in
    reach) produce a change that is added to the newest map (residual: "as before, unless").
    """

    def __init__(self, channels: int, history: int, hidden: int = 128, layers: int = 4):
        super().__init__()
        if layers < 2:
            raise ValueError(f"HistoryConv1dPredictor needs at least 2 layers, got {layers}")
        self.channels, self.history = channels, history
        self.net = dilated_conv_stack(nn.Conv1d, channels * history, hidden, channels, layers)

    def forward(self, hist: torch.Tensor) -> torch.Tensor:
        if hist.dim() != 4 or tuple(hist.shape[1:3]) != (self.history, self.channels):
            raise ValueError(f"expected history maps [N, {self.history}, {self.channels}, F], "
                             f"got {tuple(hist.shape)}")
        return hist[:, -1] + self.net(hist.flatten(1, 2))
