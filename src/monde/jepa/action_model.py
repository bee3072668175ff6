"""Action-conditioned JEPA: an encoder and a predictor of the next latent given an action.

Trained end to end on reward-free windows ``(o_0, a_0, o_1, …, o_n)`` (PLDM's recipe):

* **prediction** — teacher forcing ``ẑ_{t+1} = f(z_t, a_t)`` from every encoded ``z_t``, plus a
  multi-step **rollout** ``ẑ_{t+1} = f(ẑ_t, a_t)`` from ``z_0`` alone, both regressed onto the
  encoded ``z_{t+1}`` (mean squared error in latent space, never in pixels);
* **VICReg** variance + covariance on the latents (all-reduced under DDP), against collapse;
* **inverse dynamics** ``g(z_t, z_{t+1}) → a_t``: the latent must keep what the actions move
  (PLDM finds this term matters most);
* **temporal smoothness** ``‖z_{t+1} − z_t‖²``: nearby states get nearby latents, which makes
  latent distance a usable planning cost.

Optionally, once trained, a **goal-conditioned policy** ``π(z_t, z_goal)`` is fitted on the
frozen latents (``policy_steps`` > 0; :mod:`monde.jepa.goal_policy`), which planners can follow
(``planner.name=policy``).

A transition spans ``frameskip`` environment steps whose actions are concatenated (DINO-WM's
frame-skip), so a short latent rollout covers a long stretch of time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from monde.jepa.model import LossOutput
from monde.jepa.regularizers import VICReg, batch_mean
from monde.nn.convnet import ConvEncoder, ConvPredictor, feature_side, mlp


@dataclass
class ActionModelConfig:
    """Sizes and loss weights of an action-conditioned world model."""

    kind: str = "action"
    """Marks the model family in saved configs (do not change)."""
    channels: int = 1
    """Image channels."""
    size: int = 64
    """Image side in pixels."""
    action_dim: int = 2
    """Action size of one environment step."""
    proprio_dim: int = 2
    """Proprioception size (used only when ``use_proprio``)."""
    proprio_scale: float = 64.0
    """Proprioception is divided by this before entering the networks (Two-Rooms: pixels)."""
    action_scale: float = 2.45
    """Actions are divided by this before entering the networks (the world's max speed)."""
    frameskip: int = 4
    """Environment steps per predicted transition."""
    latent_dim: int = 32
    """Size of the latent state (a ``spatial`` head sets it itself: see :attr:`state_dim`)."""
    widths: tuple[int, ...] = (16, 32, 64, 64)
    """Channels of the stride-2 convolutions of the encoder."""
    encoder_head: str = "linear"
    """``linear`` on the flattened feature map, ``keypoints`` (spatial soft-argmax), or
    ``spatial``: the latent is the feature map itself (``map_channels`` × h × w) and the
    predictor a convolution stack (``predictor_hidden`` channels, ``predictor_layers`` layers)."""
    map_channels: int = 8
    """Channels of a ``spatial`` latent map."""
    use_proprio: bool = False
    """Also feed proprioception to the encoder (off: the model sees pixels only)."""
    predictor_hidden: int = 256
    """Width of the predictor MLP."""
    predictor_layers: int = 3
    """Linear layers of the predictor MLP."""
    pred_weight: float = 1.0
    """Weight of the teacher-forced one-step prediction loss."""
    rollout_weight: float = 1.0
    """Weight of the multi-step rollout loss."""
    std_weight: float = 1.0
    """VICReg variance term."""
    cov_weight: float = 0.1
    """VICReg covariance term."""
    inverse_weight: float = 1.0
    """Inverse-dynamics loss."""
    smooth_weight: float = 0.1
    """Temporal smoothness ``‖z_{t+1} − z_t‖²``."""
    regularize: Literal["latent", "image"] = "latent"
    """What VICReg keeps from collapsing: ``latent`` (the whole latent) or ``image`` (the
    encoder's image map alone, before the proprioception offset is added). With ``latent`` a
    spatial map can meet the variance term through the proprioception offset, the same in every
    cell, instead of through what the image shows (the block, in PushT)."""
    cell_centred: bool = False
    """Spatial maps: subtract each cell's batch mean before VICReg, so that the variance it asks
    for comes from what differs between frames, not from a fixed pattern over the map (which
    meets the variance term while saying nothing about the scene)."""
    policy_steps: int = 0
    """Steps of fitting a goal-conditioned policy on the trained encoder's frozen latents, after
    training (0: no policy). It learns, from the reward-free episodes, which actions took one
    latent to a later one (hindsight goals up to ``data.chunks`` transitions ahead), so a
    planner can follow it instead of searching (``planner.name=policy``)."""
    ensemble: int = 1
    """Predictors trained side by side on the same latents from different initialisations.
    Where the data taught them the same thing they agree; where a plan strays from it they
    drift apart, and a planner can penalise that (``planner.uncertainty_weight``)."""

    @property
    def chunk_action_dim(self) -> int:
        return self.frameskip * self.action_dim

    @property
    def spatial(self) -> bool:
        return self.encoder_head == "spatial"

    @property
    def map_side(self) -> int:
        """Side of the encoder's last feature map."""
        return feature_side(self.size, len(self.widths))

    @property
    def state_dim(self) -> int:
        """Size of a latent vector: ``latent_dim``, or the flattened map of a spatial head."""
        return self.map_channels * self.map_side ** 2 if self.spatial else self.latent_dim


class ActionJEPA(nn.Module):
    """Encoder ``E``, predictor ``f`` and inverse model ``g`` with the training objective.

    ``forward(batch)`` takes ``{"obs": [B, n+1, C, H, W] uint8 or float, "actions": [B, n,
    k*A], "proprio": [B, n+1, P]}`` (see :class:`~monde.data.episodes.EpisodeWindows`).
    """

    def __init__(self, cfg: ActionModelConfig, seed: int = 0):
        super().__init__()
        self.cfg = cfg
        torch.manual_seed(seed)
        extra = cfg.proprio_dim if cfg.use_proprio else 0
        d = cfg.state_dim
        self.encoder = ConvEncoder(cfg.channels, cfg.size, cfg.latent_dim, cfg.widths,
                                   head=cfg.encoder_head, map_channels=cfg.map_channels)
        # A spatial map gets proprioception as a per-channel offset broadcast to every cell.
        self.proprio_in = (nn.Linear(extra, cfg.map_channels if cfg.spatial else d)
                           if extra else None)
        if cfg.ensemble < 1:
            raise ValueError(f"ensemble must be ≥ 1, got {cfg.ensemble}")
        if cfg.regularize not in ("latent", "image"):
            raise ValueError(f"regularize must be 'latent' or 'image', got {cfg.regularize!r}")
        self.predictor = self._new_predictor()
        # (a spatial head's predictor_hidden counts conv channels, too few for this MLP)
        self.inverse = mlp(2 * d, 256 if cfg.spatial else cfg.predictor_hidden,
                           cfg.chunk_action_dim, 2)
        # Reads proprioception off the latent (trained on detached latents, so it never shapes
        # them): planners may add a proprio cost, and plots show imagined trajectories with it.
        self.proprio_head = mlp(d, 128, cfg.proprio_dim, 2)
        self.vicreg = VICReg(std_coeff=cfg.std_weight, cov_coeff=cfg.cov_weight)
        # Members 1.. of the ensemble, built last so that member 0 and every other module
        # get the same initial weights as a single-predictor model of the same seed.
        self.ensemble_predictors = nn.ModuleList(self._new_predictor() for _ in range(cfg.ensemble - 1))
        # Fitted after training, on frozen latents (monde.jepa.goal_policy): no training loss.
        self.policy = mlp(2 * d, 512, cfg.chunk_action_dim, 3) if cfg.policy_steps > 0 else None

    def _new_predictor(self) -> nn.Module:
        c = self.cfg
        if c.spatial:
            return ConvPredictor(c.map_channels, c.map_side, c.chunk_action_dim,
                                 c.predictor_hidden, c.predictor_layers)
        return mlp(c.state_dim + c.chunk_action_dim, c.predictor_hidden, c.state_dim,
                   c.predictor_layers)

    @property
    def members(self) -> list[nn.Module]:
        """The ensemble's predictors (member 0 is :attr:`predictor`)."""
        return [self.predictor, *self.ensemble_predictors]

    # ------------------------------------------------------------------ inference pieces
    def encode(self, obs: torch.Tensor, proprio: torch.Tensor | None = None) -> torch.Tensor:
        """Latents ``[..., D]`` of images ``[..., C, H, W]`` (uint8 0–255 or float 0–1)."""
        image, offset = self.encode_parts(obs, proprio)
        return image if offset is None else image + offset

    def encode_parts(self, obs: torch.Tensor, proprio: torch.Tensor | None = None):
        """The image's latent ``[..., D]`` and the proprioception offset added to it
        (``[..., D]``, or ``None`` for a model without proprioception)."""
        lead = obs.shape[:-3]
        x = obs.reshape(-1, *obs.shape[-3:])
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        z = self.encoder(x)
        if self.proprio_in is None:
            return z.reshape(*lead, -1), None
        if proprio is None:
            raise ValueError("this model also encodes proprioception; pass proprio")
        p = self.proprio_in(proprio.reshape(-1, proprio.shape[-1]).float() / self.cfg.proprio_scale)
        if self.cfg.spatial:  # [N, C] → the same offset in every cell of the map
            p = p[:, :, None].expand(-1, -1, self.cfg.map_side ** 2).flatten(1)
        return z.reshape(*lead, -1), p.reshape(*lead, -1)

    def predict(self, z: torch.Tensor, action: torch.Tensor, member: int = 0) -> torch.Tensor:
        """Next latent ``[..., D]`` from ``z [..., D]`` and a transition's actions ``[..., k*A]``,
        by the ensemble's predictor number ``member``."""
        a = (action / self.cfg.action_scale).to(z.dtype)
        f = self.members[member]
        if self.cfg.spatial:
            lead = z.shape[:-1]
            dz = f(z.reshape(-1, z.shape[-1]), a.reshape(-1, a.shape[-1]))
            return z + dz.reshape(*lead, -1)
        return z + f(torch.cat([z, a], dim=-1))

    def act(self, z: torch.Tensor, z_goal: torch.Tensor) -> torch.Tensor:
        """The policy's transition actions ``[..., k*A]`` (world units, unclipped) from latents
        ``z [..., D]`` toward goal latents ``z_goal [..., D]``."""
        if self.policy is None:
            raise ValueError("this model has no goal-conditioned policy (train it with "
                             "model.policy_steps > 0)")
        return self.policy(torch.cat([z, z_goal.to(z.dtype).expand_as(z)], dim=-1)) * self.cfg.action_scale

    def decode_proprio(self, z: torch.Tensor) -> torch.Tensor:
        """Proprioception ``[..., P]`` read off latents ``[..., D]`` (in world units)."""
        return self.proprio_head(z) * self.cfg.proprio_scale

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor, member: int = 0) -> torch.Tensor:
        """Predicted latents ``[B, H, D]`` after each of ``actions [B, H, k*A]`` from ``z0 [B, D]``."""
        out, z = [], z0
        for t in range(actions.shape[1]):
            z = self.predict(z, actions[:, t], member)
            out.append(z)
        return torch.stack(out, dim=1)

    def rollout_ensemble(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Every member's rollout: ``[K, B, H, D]`` (``K`` = ``cfg.ensemble``)."""
        return torch.stack([self.rollout(z0, actions, k) for k in range(len(self.members))])

    # ------------------------------------------------------------------ training
    def forward(self, batch: dict[str, torch.Tensor], step: int = 0,
                generator: torch.Generator | None = None) -> LossOutput:
        c = self.cfg
        obs, actions = batch["obs"], batch["actions"].float()
        image, offset = self.encode_parts(obs, batch.get("proprio"))  # [B, n+1, D] each
        z = image if offset is None else image + offset
        kept = image if c.regularize == "image" else z  # what VICReg keeps from collapsing
        # Every member regresses the same encoded targets; their losses are averaged, so an
        # ensemble trains the encoder as strongly as one predictor does.
        k = len(self.members)
        pred = sum(F.mse_loss(self.predict(z[:, :-1], actions, m), z[:, 1:]) for m in range(k)) / k
        roll = sum(F.mse_loss(self.rollout(z[:, 0], actions, m), z[:, 1:]) for m in range(k)) / k
        if c.spatial:
            # Each cell's channel vector is a sample: channels must vary over (clips × cells),
            # not every cell over clips (an empty stretch of table has nothing to vary with,
            # and forcing it to vary fills the map with noise the predictor cannot follow).
            cells = kept.float().reshape(-1, c.map_channels, c.map_side ** 2)  # [N, C, cells]
            if c.cell_centred:
                cells = cells - batch_mean(cells)
            reg = self.vicreg(cells.transpose(1, 2).reshape(-1, c.map_channels))
        else:
            reg = self.vicreg(kept.reshape(-1, c.state_dim))
        inv = F.mse_loss(self.inverse(torch.cat([z[:, :-1], z[:, 1:]], dim=-1)),
                         actions / c.action_scale)
        smooth = (z[:, 1:] - z[:, :-1]).pow(2).sum(-1).mean()
        readout = F.mse_loss(self.proprio_head(z.detach()), batch["proprio"].float() / c.proprio_scale)
        loss = (c.pred_weight * pred + c.rollout_weight * roll + c.inverse_weight * inv
                + c.smooth_weight * smooth + reg.loss + readout)
        parts = {"pred": pred.detach(), "rollout": roll.detach(), "inverse": inv.detach(),
                 "smooth": smooth.detach(), "proprio_readout": readout.detach(), "std": reg.parts["vicreg_std"],
                 "cov": reg.parts["vicreg_cov"]}
        return LossOutput(loss=loss, parts=parts, embeddings=z[:, 0].detach().float())

    def after_step(self, step: int, total_steps: int) -> None:
        """Nothing to update between steps (no EMA target)."""
