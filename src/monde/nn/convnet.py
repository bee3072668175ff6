"""A small convolutional image encoder, for worlds where a CNN is the cheapest good encoder.

Top-down navigation images hold one small object: a ViT would spend most of its tokens on
empty floor, while a few strided convolutions find the object in a fraction of the FLOPs.
This is the role of PLDM's and eb_jepa's Impala-style CNNs.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvEncoder(nn.Module):
    """Images ``[N, C, H, W]`` (float, ~[0, 1]) → vectors ``[N, out_dim]``.

    An optional stride-1 stem (``stem`` channels; off by default: at 64×64 it costs 5× the
    rest of the network), then one stride-2 3×3 convolution per entry of ``widths`` (each halves
    the resolution), GELU activations, and a linear head on the flattened feature map. No
    batch norm: its batch statistics would make an embedding depend on the rest of the batch,
    which breaks planning (one state, thousands of candidates) and DDP equivalence.
    """

    def __init__(self, channels: int, size: int, out_dim: int,
                 widths: tuple[int, ...] = (16, 32, 64, 64), stem: int = 0,
                 head: str = "linear", keypoints: int = 16, map_channels: int = 8):
        """``head="keypoints"``: instead of flattening, a 1×1 convolution makes ``keypoints``
        heat maps whose spatial soft-argmax gives ``[keypoints, 2]`` image coordinates, and an
        MLP maps those to the output. Coordinates vary continuously with an object's position
        anywhere in the image (convolutions are translation-equivariant), so the latent of a
        place never visited in training still sits where its neighbours put it.

        ``head="spatial"``: a 1×1 convolution to ``map_channels`` channels, and the feature map
        itself, flattened channel-major, is the output (``out_dim`` is ignored; the size is
        ``map_channels × side²``, see :func:`feature_side`). A distance between such latents weighs each object by the area it
        covers, as DINO-WM's patch features do, rather than by how much a global vector
        happened to dedicate to it."""
        super().__init__()
        layers: list[nn.Module] = []
        prev, side = channels, size
        if stem:
            layers += [nn.Conv2d(channels, stem, 3, padding=1), nn.GELU()]
            prev = stem
        for w in widths:
            layers += [nn.Conv2d(prev, w, 3, stride=2, padding=1), nn.GELU()]
            prev, side = w, (side + 1) // 2
        self.features = nn.Sequential(*layers)
        self.in_shape = (channels, size, size)
        self.head_kind = head
        if head == "linear":
            self.head = nn.Linear(prev * side * side, out_dim)
        elif head == "keypoints":
            self.to_maps = nn.Conv2d(prev, keypoints, 1)
            self.register_buffer("coords", cell_centres(side), persistent=False)
            self.head = mlp(2 * keypoints, 128, out_dim, 2)
        elif head == "spatial":
            self.head = nn.Conv2d(prev, map_channels, 1)
        else:
            raise ValueError(f"unknown head {head!r}; choose linear, keypoints or spatial")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"expected images [N, {', '.join(map(str, self.in_shape))}], got "
                             f"{tuple(x.shape)}")
        f = self.features(x)
        if self.head_kind == "linear":
            return self.head(f.flatten(1))
        if self.head_kind == "spatial":
            return self.head(f).flatten(1)
        maps = self.to_maps(f).float()  # [N, K, h, w]
        p = torch.softmax(maps.flatten(2), dim=-1).view_as(maps)
        ex = (p.sum(2) * self.coords).sum(-1)  # [N, K] expected x
        ey = (p.sum(3) * self.coords).sum(-1)  # [N, K] expected y
        return self.head(torch.cat([ex, ey], dim=1))


def feature_side(size: int, strides: int) -> int:
    """Side of the feature map after ``strides`` stride-2 convolutions of a ``size`` image."""
    for _ in range(strides):
        size = (size + 1) // 2
    return size


def cell_centres(side: int) -> torch.Tensor:
    """Centres of ``side`` cells along one axis, in ``[-1, 1]``: ``[side]`` float32."""
    return (torch.arange(side, dtype=torch.float32) + 0.5) / side * 2 - 1


class ConvPredictor(nn.Module):
    """Change of a feature map under an action: a stack of 3×3 convolutions (the caller adds
    it to the map, so the predictor as a whole is residual).

    Latents are flattened maps ``[N, C*h*w]`` (:class:`ConvEncoder` with ``head="spatial"``).
    The action is broadcast to every cell as extra channels, next to two coordinate channels
    (so walls and table edges can act where they are). Convolutions make a push act where the
    pusher is: the same contact rule applies anywhere on the table, which an MLP on the
    flattened map would have to learn once per place.
    """

    def __init__(self, channels: int, side: int, action_dim: int, hidden: int = 64,
                 layers: int = 4):
        super().__init__()
        self.channels, self.side = channels, side
        coords = cell_centres(side)
        yy, xx = torch.meshgrid(coords, coords, indexing="ij")
        self.register_buffer("coords", torch.stack([xx, yy]), persistent=False)  # [2, h, w]
        mods: list[nn.Module] = [nn.Conv2d(channels + action_dim + 2, hidden, 3, padding=1)]
        for _ in range(layers - 2):
            mods += [nn.GELU(), nn.Conv2d(hidden, hidden, 3, padding=1)]
        mods += [nn.GELU(), nn.Conv2d(hidden, channels, 3, padding=1)]
        self.net = nn.Sequential(*mods)

    def forward(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``z [N, C*h*w]``, ``action [N, A]`` → the change of ``z``, ``[N, C*h*w]``."""
        n, s = z.shape[0], self.side
        maps = z.reshape(n, self.channels, s, s)
        x = torch.cat([maps, action[:, :, None, None].expand(-1, -1, s, s).to(z.dtype),
                       self.coords.to(z.dtype).expand(n, -1, -1, -1)], dim=1)
        return self.net(x).flatten(1)


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 2) -> nn.Sequential:
    """``layers`` linear layers with LayerNorm + GELU between them."""
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden), nn.LayerNorm(hidden), nn.GELU()]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


class HistoryConvPredictor(nn.Module):
    """Next feature map from the ``history`` maps before it: a stack of 3×3 convolutions.

    Input ``[N, K, C, h, w]`` (oldest first); the K maps are stacked as channels next to two
    coordinate channels, and the output is added to the newest map (residual). Several past
    maps let the network read velocity (2) and acceleration (3) as differences, and remember
    an object for a few frames after it went behind something. Every other hidden layer is
    dilated by 2, which widens the receptive field (≈ 13 cells with 5 layers) so that a
    fast object's next position is in reach at no extra cost.
    """

    def __init__(self, channels: int, side: int, history: int, hidden: int = 64,
                 layers: int = 5):
        super().__init__()
        if layers < 2:
            raise ValueError(f"HistoryConvPredictor needs at least 2 layers, got {layers}")
        self.channels, self.side, self.history = channels, side, history
        coords = cell_centres(side)
        yy, xx = torch.meshgrid(coords, coords, indexing="ij")
        self.register_buffer("coords", torch.stack([xx, yy]), persistent=False)
        self.net = dilated_conv_stack(nn.Conv2d, channels * history + 2, hidden, channels, layers)

    def forward(self, hist: torch.Tensor) -> torch.Tensor:
        """``hist [N, K, C, h, w]`` → the next map ``[N, C, h, w]``."""
        n = check_history(hist, self.history, self.channels, self.side)
        x = torch.cat([hist.flatten(1, 2), self.coords.to(hist.dtype).expand(n, -1, -1, -1)], 1)
        return hist[:, -1] + self.net(x)

    def rollout(self, hist: torch.Tensor, steps: int) -> torch.Tensor:
        """``steps`` maps ``[N, steps, C, h, w]`` imagined after ``hist [N, K, C, h, w]``, each
        forecast fed back as the newest map of the next one's history."""
        window = list(hist.unbind(1))
        out = []
        for _ in range(steps):
            nxt = self(torch.stack(window[-self.history:], 1))
            out.append(nxt)
            window.append(nxt)
        return torch.stack(out, 1)


def check_history(hist: torch.Tensor, history: int, channels: int, side: int) -> int:
    """Raise ValueError unless ``hist`` is ``[N, history, channels, side, side]``; return N."""
    want = (history, channels, side, side)
    if tuple(hist.shape[1:]) != want:
        raise ValueError(f"expected history maps [N, {', '.join(map(str, want))}], got "
                         f"{tuple(hist.shape)}")
    return hist.shape[0]


class ConvDecoder(nn.Module):
    """Feature map ``[N, C, h, w]`` → image ``[N, out_channels, H, W]`` in (0, 1).

    The mirror of :class:`ConvEncoder`: one stride-2 transposed convolution per entry of
    ``widths`` (reversed), each doubling the resolution. It exists for the pixel-predicting
    baseline of a JEPA, which must share everything but its target with the latent model.
    """

    def __init__(self, channels: int, out_channels: int, widths: tuple[int, ...]):
        super().__init__()
        mods: list[nn.Module] = []
        prev = channels
        for w in reversed(widths):
            mods += [nn.ConvTranspose2d(prev, w, 4, stride=2, padding=1), nn.GELU()]
            prev = w
        mods.append(nn.Conv2d(prev, out_channels, 3, padding=1))
        self.net = nn.Sequential(*mods)

    def logits(self, maps: torch.Tensor) -> torch.Tensor:
        """The image before the sigmoid, ``[N, out_channels, H, W]``."""
        return self.net(maps)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(maps))


def dilated_conv_stack(conv: type[nn.Conv1d] | type[nn.Conv2d], cin: int, hidden: int,
                       cout: int, layers: int) -> nn.Sequential:
    """``layers`` 3-wide convolutions ``cin → hidden → … → cout`` (``conv``: 1-D or 2-D), same
    size out as in, GELU between; every other hidden layer dilated by 2, which widens the
    receptive field at no cost (≈ 13 cells with 5 layers)."""
    mods: list[nn.Module] = [conv(cin, hidden, 3, padding=1)]
    for i in range(layers - 2):
        d = 1 + i % 2
        mods += [nn.GELU(), conv(hidden, hidden, 3, padding=d, dilation=d)]
    mods += [nn.GELU(), conv(hidden, cout, 3, padding=1)]
    return nn.Sequential(*mods)



class ResidualConv1d(nn.Module):
    """``x + conv1x1(GELU(conv3(GroupNorm(x))))`` over ``[N, C, L]``, the 3-wide convolution
    dilated by ``dilation``. GroupNorm (per sample, never per batch) keeps deep stacks trainable
    without making one sample's output depend on the others."""

    def __init__(self, channels: int, dilation: int = 1, groups: int = 8):
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(groups, channels),
            nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation), nn.GELU(),
            nn.Conv1d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def residual_stack(channels: int, dilations: tuple[int, ...]) -> nn.Sequential:
    """One :class:`ResidualConv1d` per entry of ``dilations`` (receptive field ``1 + 2 Σ d``)."""
    return nn.Sequential(*(ResidualConv1d(channels, d) for d in dilations))
