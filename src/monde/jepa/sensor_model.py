"""A JEPA world model of a plant: sensor windows → channel-group × time-patch latents.

Training (reward-free, label-free, normal operation only) hides parts of a window of ``L``
steps and predicts the hidden tokens' latents from the rest, in latent space:

* **future** masks — predict the last ``k`` time patches of every group from the earlier
  ones (forecasting; control inputs of the whole window, future moves included, go to the
  predictor as action tokens, so it learns what the controls do);
* **channel** masks — predict a set of channel groups over a time span from the other
  groups (the plant's cross-sensor structure, what PCA's residual checks linearly);
* **time** masks — contiguous spans across all groups.

Targets are the layer-normed latents of an EMA copy of the encoder (V-JEPA); SIGReg or
VICReg on the context embeddings are the alternatives. Raw readings enter the model, which
z-scores them with statistics fitted on the training data and stored as buffers, so a saved
model carries its own normalisation (``instance_norm`` adds a per-window re-normalisation for
forecasting series that wander). Missing readings (NaN) are masked in the tokenizer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from monde.jepa import masks as M
from monde.jepa.ema import ema_update, momentum_schedule
from monde.jepa.model import LossOutput, latent_targets
from monde.jepa.plant_masks import ChannelBlocks, FutureSteps, WeightedMasks
from monde.jepa.regularizers import SIGReg, VICReg
from monde.nn import PlantTokenizer, Transformer

SCORE_QUANTILES = 2001
"""Levels ``0, 0.0005, …, 1`` at which the normal-data surprise distribution is stored."""


@dataclass
class SensorModelConfig:
    """Shape, masks and objective of a sensor world model. ``channels``/``actions`` come from
    the data at fit time."""

    kind: str = "sensors"
    """Marks the model family in saved configs (do not change)."""
    channels: int = 0
    """Sensor channels (set from the data's schema)."""
    actions: int = 0
    """Control inputs (set from the data's schema; 0 = none)."""
    groups: int = 16
    """At most this many channel groups (tokens per time patch); ``>= channels`` gives one
    token per sensor (on TEP: 7.5× slower to train and no better, see docs/results.md)."""
    window: int = 32
    """Time steps per window."""
    patch: int = 4
    """Time steps per token."""
    dim: int = 64
    """Encoder width."""
    depth: int = 3
    """Encoder blocks."""
    heads: int = 4
    """Encoder attention heads."""
    predictor_dim: int = 64
    """Predictor width."""
    predictor_depth: int = 2
    """Predictor blocks."""
    predictor_heads: int = 4
    """Predictor attention heads."""
    future_patches: int = 2
    """Largest number of future patches a forecast mask hides in training (and the future a
    forecast predicts latents for)."""
    forecast_horizon: int = 0
    """Rows the forecast read-out predicts in one step (0: ``future_patches × patch``)."""
    mask_weights: tuple[float, float, float] = (0.5, 0.25, 0.25)
    """How often each mask family is drawn: (future, channel, time)."""
    loss: Literal["l1", "mse"] = "l1"
    """Latent prediction loss against layer-normed targets."""
    anti_collapse: Literal["ema", "sigreg", "vicreg"] = "ema"
    """EMA target encoder, or the online encoder under stop-gradient with a regulariser."""
    ema_start: float = 0.996
    """EMA momentum at step 0 (rises linearly to ``ema_end``)."""
    ema_end: float = 1.0
    """EMA momentum at the last step."""
    target_layers: int = 1
    """Targets (and the latents surprise and forecasts read) from the last ``k`` encoder
    blocks, each layer-normed, averaged, layer-normed again (data2vec's targets; see
    ``ObjectiveConfig.target_layers``). 1 = the final output only."""
    reg_weight: float = 0.05
    """Weight of SIGReg/VICReg (ignored for ``ema``)."""
    surprise: Literal["both", "prediction", "novelty"] = "prediction"
    """What the surprise score measures (see ``SensorWorldModel``): prediction residual,
    latent novelty, or their mean."""
    aggregate: Literal["max", "mean"] = "max"
    """How group scores combine: the most surprised group (a fault in a few sensors is not
    diluted by hundreds of normal ones), or their mean."""
    instance_norm: bool = False
    """Also z-score every window per channel by the mean and standard deviation of its
    context span (the first ``window − future_patches·patch`` rows, observed readings only),
    as RevIN / PatchTST do. Latents then describe a window's *shape*, not its level: what a
    forecaster needs when the series wanders to levels training never saw (ETTh1's test
    months), and what a fault detector must not have (a level shift is a fault), so it is
    off by default and on in the ``etth`` recipe."""
    roughness: bool = False
    """Also give the tokenizer each channel's patch roughness (log mean squared step, see
    :class:`~monde.nn.tokenizers.PlantTokenizer`), so a change in a sensor's noise level —
    which the latent otherwise learns to ignore — can be predicted and missed."""
    lead: int = 0
    """Far-future targets (0 = off). With ``lead > 0`` every training window is paired with a
    later window of the same run, ``d`` rows on (``d`` drawn in ``[1, lead]``, cut to what the
    run has left), and the predictor also forecasts that window's latent, per channel group
    and averaged over its patches, from this window's context and ``d``. Masked patches ask
    only for the next few steps; this asks where the plant is heading, so the latent has to
    carry slow state (wear, degradation, drift) too."""
    lead_weight: float = 0.5
    """Weight of the far-future loss beside the masked-latent loss."""
    smoothing: float = 0.2
    """Weight of the newest step in a causal exponential moving average of the score
    (1 = no smoothing). Faults persist, noise does not: averaging trades a little delay for
    far fewer false alarms at the same threshold."""

    @property
    def patches(self) -> int:
        return self.window // self.patch


class SensorPredictor(nn.Module):
    """Context latents + action tokens + mask tokens at target (group, time) → target latents.

    A mask token carries the identity of the group it stands for (a learned embedding) and its
    time patch (rotary position): with time-only positions, a shared mask token alone could not
    tell two sensors apart.
    """

    def __init__(self, cfg: SensorModelConfig, groups: int):
        super().__init__()
        d = cfg.predictor_dim
        self.patches = cfg.patches
        self.embed = nn.Linear(cfg.dim, d)
        self.mask_token = nn.Parameter(torch.zeros(d))
        self.target_group = nn.Parameter(torch.zeros(groups, d))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.target_group, std=0.02)
        self.action_proj = nn.Linear(2 * cfg.actions * cfg.patch, d) if cfg.actions else None
        # Tells a far-future query (a later window's pooled latent) from a masked patch's.
        self.far_token = nn.Parameter(torch.zeros(d)) if cfg.lead > 0 else None
        self.backbone = Transformer(d, cfg.predictor_depth, cfg.predictor_heads, 1)
        self.head = nn.Linear(d, cfg.dim)

    def forward(self, context: torch.Tensor, context_idx: torch.Tensor, target_idx: torch.Tensor,
                positions: torch.Tensor, actions: torch.Tensor | None = None,
                far_pos: torch.Tensor | None = None) -> torch.Tensor:
        """Predict target latents.

        Args:
            context: ``[B, Nc, D]`` encoder latents of the context tokens.
            context_idx, target_idx: ``long [B, Nc]`` / ``[B, Nt]`` token indices on the grid.
            positions: ``[N, 1]`` time patch of every grid token.
            actions: ``[B, P, 2·A·patch]`` control inputs per time patch (values, observed mask).
            far_pos: ``[B]`` time (in patches of this window) of a later window's centre, to
                also predict that window's pooled latent of every group (needs ``cfg.lead``).

        Returns:
            ``[B, Nt, D]``, followed by ``G`` far-future latents ``[B, G, D]`` (group order)
            when ``far_pos`` is given: ``[B, Nt + G, D]``.
        """
        b, nt = target_idx.shape
        ctx = self.embed(context)
        queries = (self.mask_token + self.target_group[target_idx // self.patches]).to(ctx.dtype)
        parts, pos = [ctx, queries], [positions[context_idx], positions[target_idx]]
        if self.action_proj is not None and actions is not None:
            time = torch.arange(self.patches, dtype=positions.dtype, device=positions.device)
            parts.insert(1, self.action_proj(actions))
            pos.insert(1, time.view(1, -1, 1).expand(b, -1, -1))
        if far_pos is not None:
            if self.far_token is None:
                raise ValueError("far-future queries need a model built with lead > 0")
            g = self.target_group.shape[0]
            parts.append((self.far_token + self.target_group).to(ctx.dtype).expand(b, g, -1))
            pos.append(far_pos.to(positions.dtype).view(b, 1, 1).expand(b, g, 1))
            nt += g
        y = self.backbone(torch.cat(parts, 1), torch.cat(pos, 1))
        return self.head(y[:, -nt:])


class SensorJEPA(nn.Module):
    """Encoder (plant tokenizer + transformer), predictor, EMA target, and the stored
    normalisation (``mean``/``std`` of sensors and actions, fitted on training data)."""

    def __init__(self, cfg: SensorModelConfig, seed: int = 0):
        super().__init__()
        if cfg.channels < 1:
            raise ValueError("SensorModelConfig.channels must be set (>= 1) from the data")
        if cfg.window % cfg.patch or cfg.patches < 2:
            raise ValueError(f"window={cfg.window} must be a multiple of patch={cfg.patch} "
                             "with at least 2 patches")
        if not 1 <= cfg.target_layers <= max(cfg.depth, 1):
            raise ValueError(f"target_layers must be in 1..{max(cfg.depth, 1)} (the encoder's "
                             f"depth), got {cfg.target_layers}")
        self.cfg = cfg
        self.tokenizer = PlantTokenizer(cfg.channels, min(cfg.groups, cfg.channels), cfg.dim,
                                        cfg.patch, roughness=cfg.roughness)
        self.groups = self.tokenizer.groups
        self.encoder = Transformer(cfg.dim, cfg.depth, cfg.heads, 1)
        self.predictor = SensorPredictor(cfg, self.groups)
        self.target: nn.ModuleDict | None = None
        if cfg.anti_collapse == "ema":
            self.target = nn.ModuleDict({"tokenizer": copy.deepcopy(self.tokenizer),
                                         "encoder": copy.deepcopy(self.encoder)})
            self.target.requires_grad_(False)
        self.regularizer = {"sigreg": SIGReg(seed=seed), "vicreg": VICReg(),
                            "ema": None}[cfg.anti_collapse]
        for name, n in (("mean", cfg.channels), ("action_mean", cfg.actions)):
            self.register_buffer(name, torch.zeros(n))
        for name, n in (("std", cfg.channels), ("action_std", cfg.actions)):
            self.register_buffer(name, torch.ones(n))
        # Calibration on held-out normal data (set after training, see SensorWorldModel):
        # per group, the mean and shrunk inverse covariance of the last-patch prediction
        # residual and of the latent itself, and quantiles of the surprise score (thresholds).
        g, d = self.groups, cfg.dim
        for name in ("res_mean", "lat_mean"):
            self.register_buffer(name, torch.zeros(g, d))
        for name in ("res_prec", "lat_prec"):
            self.register_buffer(name, torch.eye(d).repeat(g, 1, 1))
        self.register_buffer("score_quantiles", torch.full((SCORE_QUANTILES,), float("nan")))
        # Forecast read-out (see sensor_forecast): per group, a linear map from the group's
        # context and predicted future latents, last readings and a bias to its readings over
        # the horizon.
        horizon = cfg.forecast_horizon or cfg.future_patches * cfg.patch
        self.register_buffer("decoder", torch.zeros(
            g, cfg.patches * d + self.tokenizer.group_size + 1,
            self.tokenizer.group_size * horizon))
        self.register_buffer("decoder_ready", torch.zeros(()))
        self._masks: M.MaskGenerator | None = None

    # ------------------------------------------------------------------ inputs

    def set_normalization(self, mean, std, action_mean=None, action_std=None) -> None:
        """Store z-score statistics (``[C]``, ``[A]``) fitted on the training data."""
        self.mean.copy_(torch.as_tensor(mean))
        self.std.copy_(torch.as_tensor(std))
        if self.cfg.actions:
            self.action_mean.copy_(torch.as_tensor(action_mean))
            self.action_std.copy_(torch.as_tensor(action_std))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Raw readings ``[B, C, L]`` → z-scores (NaN stays NaN)."""
        return (x - self.mean[:, None]) / self.std[:, None]

    def context_stats(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)``, each ``[B, C, 1]``, of every channel's observed readings in the
        context span of z-scored windows ``z [B, C, L]`` (the first ``window −
        future_patches·patch`` rows): what ``instance_norm`` divides out. The std is at least
        0.01 training standard deviations, so a flat channel does not blow up."""
        span = z[:, :, :self.cfg.window - self.cfg.future_patches * self.cfg.patch]
        obs = torch.isfinite(span)
        n = obs.sum(-1, keepdim=True).clamp_min(1)
        zero = torch.zeros((), dtype=z.dtype, device=z.device)
        mu = torch.where(obs, span, zero).sum(-1, keepdim=True) / n
        var = torch.where(obs, (span - mu) ** 2, zero).sum(-1, keepdim=True) / n
        return mu, var.sqrt().clamp_min(1e-2)

    def model_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Raw readings ``[B, C, L]`` → what the tokenizer reads: z-scores, per window and
        channel re-centred and re-scaled when ``instance_norm`` is on (NaN stays NaN)."""
        z = self.normalize(x)
        if self.cfg.instance_norm:
            mu, sd = self.context_stats(z)
            z = (z - mu) / sd
        return z

    def action_tokens(self, a: torch.Tensor | None) -> torch.Tensor | None:
        """Raw control inputs ``[B, L, A]`` → per-patch ``[B, P, 2·A·patch]`` (values, mask)."""
        if a is None or not self.cfg.actions:
            return None
        z = (a - self.action_mean) / self.action_std
        obs = torch.isfinite(z)
        z = torch.where(obs, z, torch.zeros((), dtype=z.dtype, device=z.device))
        b, length, _ = a.shape
        p = length // self.cfg.patch
        return torch.cat([z.reshape(b, p, -1), obs.to(z.dtype).reshape(b, p, -1)], -1)

    # ------------------------------------------------------------------ encoders

    def encode(self, x: torch.Tensor, keep_idx: torch.Tensor | None = None):
        """Online encoder on raw readings ``[B, C, L]`` → ``([B, N or K, D], positions [N, 1])``."""
        tok = self.tokenizer(self.model_inputs(x))
        v, pos = tok.values, tok.positions
        if keep_idx is not None:
            v, kpos = M.gather_tokens(v, keep_idx), pos[keep_idx]
            return self.encoder(v, kpos), pos
        return self.encoder(v, pos), pos

    @torch.no_grad()
    def encode_target(self, x: torch.Tensor) -> torch.Tensor:
        """Layer-normed target latents ``[B, N, D]`` (EMA encoder, or the online one)."""
        tok_net = self.target["tokenizer"] if self.target is not None else self.tokenizer
        enc = self.target["encoder"] if self.target is not None else self.encoder
        tok = tok_net(self.model_inputs(x))
        k = self.cfg.target_layers
        if k <= 1:
            return latent_targets([enc(tok.values, tok.positions)])
        return latent_targets(enc.block_outputs(tok.values, tok.positions)[-k:])

    def predict(self, x: torch.Tensor, ctx_idx: torch.Tensor, tgt_idx: torch.Tensor,
                actions: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted latents ``[B, Nt, D]`` of ``tgt_idx`` from the context tokens of ``x``."""
        z, pos = self.encode(x, keep_idx=ctx_idx)
        return self.predictor(z, ctx_idx, tgt_idx, pos, self.action_tokens(actions)).float()

    # ------------------------------------------------------------------ training

    def masks(self) -> M.MaskGenerator:
        if self._masks is None:
            grid = (self.groups, self.cfg.patches)
            gens = [FutureSteps(grid, max_steps=self.cfg.future_patches),
                    ChannelBlocks(grid) if self.groups >= 2 else None,
                    M.TimeBlocks(grid, n_blocks=1, mask_ratio=0.3)]
            weights = [w if g is not None else 0.0 for g, w in zip(gens, self.cfg.mask_weights)]
            self._masks = WeightedMasks(gens, weights)
        return self._masks

    def forward(self, batch: dict, step: int = 0,
                generator: torch.Generator | None = None) -> LossOutput:
        """One loss on ``batch = {"x": [B, C, L] raw readings, "actions": [B, L, A]}``."""
        x, a = batch["x"], batch.get("actions")
        mp = self.masks()(x.shape[0], generator)
        ctx_idx, tgt_idx = mp.context_idx.to(x.device), mp.target_idx.to(x.device)
        h = self.encode_target(x)
        z, pos = self.encode(x, keep_idx=ctx_idx)
        far = self.cfg.lead > 0 and "x_future" in batch
        far_pos = self.far_position(batch["lead"]) if far else None
        pred = self.predictor(z, ctx_idx, tgt_idx, pos, self.action_tokens(a), far_pos).float()
        target = M.gather_tokens(h, tgt_idx)
        if far:
            pred, pred_far = pred[:, :tgt_idx.shape[1]], pred[:, tgt_idx.shape[1]:]
        loss = self._latent_loss(pred, target)
        parts = {"pred": loss.detach()}
        if far:
            far_loss = self._latent_loss(pred_far, self.pooled_target(batch["x_future"]))
            loss = loss + self.cfg.lead_weight * far_loss
            parts["far"] = far_loss.detach()
        if self.regularizer is not None:
            reg = self.regularizer(z.float().mean(1), step=step)
            loss = loss + self.cfg.reg_weight * reg.loss
            parts[self.cfg.anti_collapse] = reg.loss.detach()
        return LossOutput(loss=loss, parts=parts, embeddings=h.mean(1))

    def _latent_loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (pred - target).abs().mean() if self.cfg.loss == "l1" else F.mse_loss(pred, target)

    def far_position(self, lead: torch.Tensor) -> torch.Tensor:
        """Rows ahead ``lead [B]`` → the later window's centre in this window's patch
        coordinates ``[B]`` (patch ``p`` covers rows ``p·patch … (p+1)·patch − 1``)."""
        c = self.cfg
        return (lead.float() + c.window / 2) / c.patch - 0.5

    @torch.no_grad()
    def pooled_target(self, x: torch.Tensor) -> torch.Tensor:
        """Far-future targets: raw windows ``[B, C, L]`` → every group's target latent averaged
        over the window's patches and layer-normed again, ``[B, G, D]``."""
        h = self.encode_target(x)
        h = h.view(h.shape[0], self.groups, self.cfg.patches, -1).mean(2)
        return F.layer_norm(h, h.shape[-1:])

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        """Moves the EMA target after each optimizer step."""
        if self.target is not None:
            m = momentum_schedule(step, total_steps, self.cfg.ema_start, self.cfg.ema_end)
            ema_update(self.target["tokenizer"], self.tokenizer, m)
            ema_update(self.target["encoder"], self.encoder, m)

