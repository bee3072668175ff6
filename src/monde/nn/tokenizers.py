"""Tokenizers: the only modality-aware pieces of a model.

Each turns raw input into :class:`~monde.nn.tokens.Tokens` (values ``[B, N, D]`` plus grid
positions); everything downstream is shared across modalities.
"""

from __future__ import annotations

import torch
from torch import nn

from monde.nn.tokens import Tokens, grid_positions


def _series_shape(x: torch.Tensor, channels: int, patch: int) -> tuple[int, int, int]:
    """``(B, C, P)`` of a series ``[B, C, L]`` cut into ``P = L / patch`` patches, or a clear error."""
    if x.dim() != 3 or x.shape[1] != channels or x.shape[2] % patch:
        raise ValueError(f"expected series [B, {channels}, L] with L divisible by {patch}, "
                         f"got {tuple(x.shape)}")
    return x.shape[0], x.shape[1], x.shape[2] // patch


class PatchTokenizer(nn.Module):
    """Images ``[B, C, H, W]`` → non-overlapping ``patch × patch`` tokens on an ``(H/p, W/p)`` grid."""

    def __init__(self, channels: int, dim: int, patch: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(channels, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> Tokens:
        if x.dim() != 4 or x.shape[-1] % self.patch or x.shape[-2] % self.patch:
            raise ValueError(f"expected images [B, C, H, W] divisible by patch={self.patch}, "
                             f"got {tuple(x.shape)}")
        y = self.proj(x)  # [B, D, H', W']
        grid = tuple(y.shape[2:])
        return Tokens(y.flatten(2).transpose(1, 2), grid_positions(grid, x.device), grid)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """The raw pixels of every token: ``[B, C, H, W]`` → ``[B, N, C·p·p]`` in token order."""
        b, c, h, w = x.shape
        p = self.patch
        y = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        return y.reshape(b, (h // p) * (w // p), c * p * p)


class TubeletTokenizer(nn.Module):
    """Video ``[B, T, C, H, W]`` → ``tubelet × patch × patch`` tokens on a ``(T/t, H/p, W/p)`` grid."""

    def __init__(self, channels: int, dim: int, patch: int, tubelet: int):
        super().__init__()
        self.patch, self.tubelet = patch, tubelet
        self.proj = nn.Conv3d(channels, dim, kernel_size=(tubelet, patch, patch),
                              stride=(tubelet, patch, patch))

    def forward(self, x: torch.Tensor) -> Tokens:
        if x.dim() != 5:
            raise ValueError(f"expected video [B, T, C, H, W], got {tuple(x.shape)}")
        b, t, c, h, w = x.shape
        if t % self.tubelet or h % self.patch or w % self.patch:
            raise ValueError(f"video of {t} frames of {h}x{w} is not divisible into tubelets "
                             f"of {self.tubelet}x{self.patch}x{self.patch}")
        y = self.proj(x.transpose(1, 2))  # [B, D, T', H', W']
        grid = tuple(y.shape[2:])
        return Tokens(y.flatten(2).transpose(1, 2), grid_positions(grid, x.device), grid)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """The raw pixels of every token: ``[B, T, C, H, W]`` → ``[B, N, t·C·p·p]`` in token order.

        Used as regression targets by the pixel-predicting baseline (``objective.target=pixels``).
        """
        b, t, c, h, w = x.shape
        k, p = self.tubelet, self.patch
        y = x.reshape(b, t // k, k, c, h // p, p, w // p, p).permute(0, 1, 4, 6, 2, 3, 5, 7)
        return y.reshape(b, (t // k) * (h // p) * (w // p), k * c * p * p)


def standardised_spectrogram(frontend: nn.Module, x: torch.Tensor, frames: int) -> torch.Tensor:
    """``frontend``'s log spectrogram of sound ``[B, N]`` / ``[B, 1, N]``, cut or padded (with
    its quietest value) to ``frames`` frames and standardised per clip: ``[B, 1, M, frames]``.

    Per clip, so that loudness, which a microphone's gain sets, does not dominate.
    """
    if x.dim() == 3 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 2:
        raise ValueError(f"expected mono sound [B, N] or [B, 1, N], got {tuple(x.shape)}")
    s = frontend(x)[:, :, :frames]
    if s.shape[-1] < frames:
        s = torch.nn.functional.pad(s, (0, frames - s.shape[-1]), value=float(s.min()))
    mu = s.mean(dim=(1, 2), keepdim=True)
    sd = s.std(dim=(1, 2), keepdim=True).clamp_min(1e-5)
    return ((s - mu) / sd).unsqueeze(1)


class SpectrogramTokenizer(nn.Module):
    """Sound ``[B, N]`` (or ``[B, 1, N]``) → time–frequency patches of its log-mel spectrogram.

    ``frontend`` turns samples into a log spectrogram ``[B, M, F]`` (injected, so this block
    stays free of signal-processing code). The spectrogram is cut or zero-padded to ``frames``
    frames, standardised per clip (so loudness, which a microphone's gain sets, does not
    dominate), and cut into ``patch × patch`` tokens on an ``(M/p, frames/p)`` grid: axis 0 is
    frequency, axis 1 is time, each with its rotary position.
    """

    def __init__(self, frontend: nn.Module, dim: int, patch: int, frames: int):
        super().__init__()
        self.frontend, self.patch, self.frames = frontend, patch, frames
        self.proj = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised log-mel ``[B, 1, M, frames]`` of sound ``[B, N]`` / ``[B, 1, N]``."""
        return standardised_spectrogram(self.frontend, x, self.frames)

    def forward(self, x: torch.Tensor) -> Tokens:
        s = self.spectrogram(x)
        if s.shape[-2] % self.patch or self.frames % self.patch:
            raise ValueError(f"{s.shape[-2]} mel bands x {self.frames} frames are not divisible "
                             f"into {self.patch}x{self.patch} patches")
        y = self.proj(s.to(self.proj.weight.dtype))  # [B, D, M/p, F/p]
        grid = tuple(y.shape[2:])
        return Tokens(y.flatten(2).transpose(1, 2), grid_positions(grid, x.device), grid)


class SeriesTokenizer(nn.Module):
    """Multichannel series ``[B, C, L]`` → per-channel patches of ``patch`` steps.

    Every channel is cut into ``L / patch`` patches embedded by one shared linear map (so a
    plant with thousands of sensors costs no more parameters per channel than a few), plus a
    learned embedding per channel so the model knows which sensor a token comes from. Tokens
    lie on a ``(C, L/patch)`` grid; the rotary position is time only (``P = 1``), since the
    channel order carries no geometry.
    """

    def __init__(self, channels: int, dim: int, patch: int):
        super().__init__()
        self.patch, self.channels = patch, channels
        self.proj = nn.Linear(patch, dim)
        self.channel_embed = nn.Parameter(torch.zeros(channels, dim))
        nn.init.trunc_normal_(self.channel_embed, std=0.02)

    def forward(self, x: torch.Tensor) -> Tokens:
        b, c, p = _series_shape(x, self.channels, self.patch)
        y = self.proj(x.reshape(b, c, p, self.patch)) + self.channel_embed[None, :, None, :]
        time = torch.arange(p, dtype=torch.float32, device=x.device).repeat(c).unsqueeze(-1)
        return Tokens(y.reshape(b, c * p, -1), time, (c, p))


class PlantTokenizer(nn.Module):
    """A plant's sensor window ``[B, C, L]`` (with missing values) → ``(groups × time patches)`` tokens.

    Each channel's patch of ``patch`` steps is embedded by one shared linear map of
    ``[values, observed-mask]`` (so a missing reading is *said* to be missing, never read as
    zero), plus a learned embedding of the channel's identity. Channels are then pooled into
    ``groups`` contiguous groups of ``ceil(C / groups)`` channels, averaging only the observed
    ones, and a group embedding is added. Attention cost then depends on ``groups × patches``,
    not on the number of sensors, which is what lets thousands of channels train on a CPU;
    with ``groups == channels`` every sensor is its own token.

    Tokens lie on a ``(G, P)`` grid, row-major (``n = g * P + t``); the rotary position is the
    time patch only (``positions [N, 1]``), since channel order carries no geometry.

    With ``roughness``, each channel's patch also enters as the log of its mean squared step
    (first difference) — the sensor analogue of a spectrogram's energy: the values of sensor
    noise cannot be predicted, so a latent predictor learns to ignore them, but the noise
    *level* can, and a sensor whose noise grows (a sticky valve) changes it.
    """

    ROUGHNESS_FLOOR = 1e-3
    """Added to the mean squared step before the log (readings are z-scored), so a flat
    patch does not give −inf."""

    def __init__(self, channels: int, groups: int, dim: int, patch: int,
                 roughness: bool = False):
        super().__init__()
        if not 1 <= groups <= channels:
            raise ValueError(f"groups must be in [1, channels={channels}], got {groups}")
        if roughness and patch < 2:
            raise ValueError("roughness needs patches of at least 2 steps")
        self.channels, self.patch, self.roughness = channels, patch, roughness
        self.group_size = -(-channels // groups)
        self.groups = -(-channels // self.group_size)  # no empty group at the end
        self.proj = nn.Linear(2 * patch + (2 if roughness else 0), dim)
        self.channel_embed = nn.Parameter(torch.zeros(channels, dim))
        self.group_embed = nn.Parameter(torch.zeros(self.groups, dim))
        nn.init.trunc_normal_(self.channel_embed, std=0.02)
        nn.init.trunc_normal_(self.group_embed, std=0.02)

    def group_of(self) -> torch.Tensor:
        """``long [C]``: the group of every channel."""
        return torch.arange(self.channels) // self.group_size

    def forward(self, x: torch.Tensor) -> Tokens:
        """x: ``[B, C, L]`` z-scored readings, NaN where missing; ``L`` a multiple of ``patch``."""
        b, c, p = _series_shape(x, self.channels, self.patch)
        obs = torch.isfinite(x)
        vals = torch.where(obs, x, torch.zeros((), dtype=x.dtype, device=x.device))
        m = obs.to(vals.dtype)
        v, mk = vals.reshape(b, c, p, self.patch), m.reshape(b, c, p, self.patch)
        parts = [v, mk]
        if self.roughness:  # steps between two observed readings only; none → 0, flagged
            both = mk[..., 1:] * mk[..., :-1]
            n = both.sum(-1, keepdim=True)
            ms = ((v[..., 1:] - v[..., :-1]).pow(2) * both).sum(-1, keepdim=True)
            has = (n > 0).to(v.dtype)
            parts += [torch.log(ms / n.clamp_min(1) + self.ROUGHNESS_FLOOR) * has, has]
        inp = torch.cat(parts, -1)
        e = self.proj(inp) + self.channel_embed[None, :, None, :]          # [B, C, P, D]
        w = m.reshape(b, c, p, self.patch).mean(-1, keepdim=True)          # observed fraction
        pad = self.groups * self.group_size - c
        if pad:  # padded channels have weight 0, so they never count
            e = torch.nn.functional.pad(e, (0, 0, 0, 0, 0, pad))
            w = torch.nn.functional.pad(w, (0, 0, 0, 0, 0, pad))
        e = e.reshape(b, self.groups, self.group_size, p, -1)
        w = w.reshape(b, self.groups, self.group_size, p, 1).to(e.dtype)
        pooled = (e * w).sum(2) / w.sum(2).clamp_min(1e-6)                 # [B, G, P, D]
        y = pooled + self.group_embed[None, :, None, :].to(pooled.dtype)
        time = torch.arange(p, dtype=torch.float32, device=x.device).repeat(self.groups)
        return Tokens(y.reshape(b, self.groups * p, -1), time.unsqueeze(-1), (self.groups, p))


class VectorEmbedder(nn.Module):
    """Actions or proprioception ``[B, T, A]`` → ``[B, T, D]`` with a small MLP."""

    def __init__(self, in_dim: int, dim: int, hidden: int | None = None):
        super().__init__()
        self.in_dim = in_dim
        hidden = hidden or dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        if a.shape[-1] != self.in_dim:
            raise ValueError(f"expected vectors with {self.in_dim} values in the last dimension "
                             f"(the model's action/proprio size), got {a.shape[-1]}")
        return self.net(a)
