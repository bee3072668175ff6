"""The JEPA objective: predict masked latents of a target encoder from a context encoder."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from monde.jepa import masks as M
from monde.jepa.config import MaskConfig, ModelConfig
from monde.jepa.ema import ema_update, momentum_schedule
from monde.jepa.networks import POS_AXES, Encoder, Predictor
from monde.jepa.regularizers import SIGReg, VICReg
from monde.nn import Tokens


@dataclass
class LossOutput:
    """What one training forward returns.

    Attributes:
        loss: scalar to minimise.
        parts: named scalar terms (detached), e.g. ``{"pred": ..., "sigreg": ...}``.
        embeddings: ``[B, D]`` mean-pooled target latents (detached), for collapse diagnostics.
    """

    loss: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)
    embeddings: torch.Tensor | None = None


def build_masks(cfg: MaskConfig, grid: tuple[int, ...]):
    """A mask generator for a token grid (see :class:`MaskConfig`)."""
    if cfg.kind == "vjepa":
        return M.MaskMixture(M.vjepa_masks(grid))
    if cfg.kind == "vjepa+causal":
        causal = [M.CausalFuture(grid=grid, context_steps=c) for c in range(1, grid[0])]
        return M.MaskMixture([*M.vjepa_masks(grid), *causal])
    if cfg.kind == "tube":
        return M.TubeMultiBlock3D(grid=grid, n_blocks=cfg.n_blocks,
                                  block_scale=(cfg.block_scale, cfg.block_scale))
    if cfg.kind == "causal":
        return M.CausalFuture(grid=grid, context_ratio=cfg.context_ratio)
    if cfg.kind == "audio":
        return M.MaskMixture([
            M.MultiBlock2D(grid=grid, n_targets=4),
            M.TimeBlocks(grid=grid, n_blocks=2, mask_ratio=0.5, time_axis=1),
            M.TimeBlocks(grid=grid, n_blocks=1, mask_ratio=0.4, time_axis=0),   # frequency bands
            M.CausalFuture(grid=grid, context_ratio=0.5, time_axis=1)])
    if cfg.kind == "multiblock":
        return M.MultiBlock2D(grid=grid, n_targets=cfg.n_blocks)
    if cfg.kind == "random":
        return M.RandomTokens(grid=grid, mask_ratio=cfg.mask_ratio)
    if cfg.kind == "time":
        return M.TimeBlocks(grid=grid, n_blocks=cfg.n_blocks, mask_ratio=cfg.mask_ratio)
    raise ValueError(f"unknown mask kind {cfg.kind!r}")


class JEPA(nn.Module):
    """Context encoder, predictor and target encoder, composed into one training objective.

    With ``anti_collapse="ema"`` the target encoder is a momentum copy of the context encoder
    (V-JEPA). With ``sigreg``/``vicreg`` the target is the context encoder itself under
    stop-gradient, and the regulariser on the context embeddings keeps them from collapsing.
    """

    def __init__(self, cfg: ModelConfig, seed: int = 0):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg.encoder)
        obj = cfg.objective
        self.pixels = obj.target == "pixels"
        e = cfg.encoder
        out_dim = e.channels * e.patch * e.patch * (e.tubelet if e.modality == "video" else 1)
        if self.pixels and e.modality not in ("video", "image"):
            raise ValueError("objective.target=pixels needs a video or image encoder")
        if not 1 <= obj.target_layers <= max(e.depth, 1):
            raise ValueError(f"objective.target_layers must be in 1..{max(e.depth, 1)} (the "
                             f"encoder's depth), got {obj.target_layers}")
        self.predictor = Predictor(e.dim, cfg.predictor, POS_AXES[e.modality],
                                   out_dim=out_dim if self.pixels else None)
        self.target_encoder: Encoder | None = None
        if self.pixels:
            pass  # pixel targets cannot collapse: no target encoder, no regulariser
        elif obj.anti_collapse == "ema":
            self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.regularizer: nn.Module | None = None
        if self.pixels:
            pass
        elif obj.anti_collapse == "sigreg":
            self.regularizer = SIGReg(num_slices=obj.sigreg_slices, seed=seed)
        elif obj.anti_collapse == "vicreg":
            self.regularizer = VICReg(std_coeff=obj.vicreg_std, cov_coeff=obj.vicreg_cov)
        self._masks = None

    def masks(self, grid: tuple[int, ...]):
        if self._masks is None or self._masks.grid != grid:
            self._masks = build_masks(self.cfg.mask, grid)
        return self._masks

    def forward(self, x: torch.Tensor, step: int = 0,
                generator: torch.Generator | None = None) -> LossOutput:
        """One JEPA loss.

        Args:
            x: raw batch for the encoder's modality, e.g. video ``[B, T, C, H, W]`` in [0, 1].
            step: training step (seeds SIGReg's random directions identically on all ranks).
            generator: CPU generator for the masks, seeded by the trainer per step and rank.
        """
        obj = self.cfg.objective
        tokens = self.encoder.tokenize(x)
        mp = self.masks(tokens.grid)(x.shape[0], generator)
        ctx_idx, tgt_idx = mp.context_idx.to(x.device), mp.target_idx.to(x.device)

        h = self.targets(x, tokens)
        h_tgt = M.gather_tokens(h, tgt_idx)
        z = self.encoder(tokens, keep_idx=ctx_idx)
        pred = self.predictor(z, ctx_idx, tgt_idx, tokens.positions).float()
        pooled = z.detach().float().mean(dim=1) if self.pixels else h.mean(dim=1)
        if obj.loss == "l1":
            pred_loss = (pred - h_tgt).abs().mean()
        elif obj.loss == "smooth_l1":
            pred_loss = F.smooth_l1_loss(pred, h_tgt)
        else:
            pred_loss = F.mse_loss(pred, h_tgt)
        parts = {"pred": pred_loss.detach()}
        loss = pred_loss
        if self.regularizer is not None:
            # Regularise per-sample embeddings (mean over context tokens): SIGReg/VICReg
            # statistics are over samples, and pooling keeps them cheap with many tokens.
            reg = self.regularizer(z.float().mean(dim=1), step=step)
            loss = loss + obj.reg_weight * reg.loss
            parts.update({k: v.detach() for k, v in reg.parts.items()})
            parts[obj.anti_collapse] = reg.loss.detach()
        return LossOutput(loss=loss, parts=parts, embeddings=pooled)

    @torch.no_grad()
    def targets(self, x: torch.Tensor, tokens: Tokens | None = None) -> torch.Tensor:
        """What the predictor must match at every token, ``[B, N, Dt]`` (no gradient).

        Layer-normed target-encoder latents (``Dt = D``, as in I-/V-JEPA), or for the pixel
        baseline the raw pixels of each token (``Dt = t·C·p·p``). ``tokens`` are the online
        encoder's tokens of ``x`` when the caller has them already.
        """
        if self.pixels:
            return self.encoder.tokenizer.patchify(x).float()
        target_net = self.target_encoder if self.target_encoder is not None else self.encoder
        if tokens is None or target_net is not self.encoder:
            tokens = target_net.tokenize(x)
        k = self.cfg.objective.target_layers
        if k <= 1:
            return latent_targets([target_net(_detached(tokens))])
        return latent_targets(target_net.block_outputs(_detached(tokens))[-k:])

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        """Called by the trainer after each optimizer step: moves the EMA target."""
        if self.target_encoder is not None:
            m = momentum_schedule(step, total_steps, self.cfg.objective.ema_start,
                                  self.cfg.objective.ema_end)
            ema_update(self.target_encoder, self.encoder, m)

    def inference_encoder(self) -> Encoder:
        """The encoder users keep: the EMA target when there is one (smoother), else the online one."""
        return self.target_encoder if self.target_encoder is not None else self.encoder


def latent_targets(outputs: list[torch.Tensor]) -> torch.Tensor:
    """Regression targets ``[B, N, D]`` from target-encoder outputs (each ``[B, N, D]``).

    One output (the encoder's final, normed one) is layer-normed, as in I-/V-JEPA. Several
    (the last blocks' outputs, before the final norm) are each layer-normed, averaged and
    layer-normed again, as in data2vec: per-layer norms keep one layer's scale from
    dominating the average.
    """
    if len(outputs) == 1:
        h = outputs[0].float()
        return F.layer_norm(h, h.shape[-1:])
    h = torch.stack([F.layer_norm(o.float(), o.shape[-1:]) for o in outputs]).mean(0)
    return F.layer_norm(h, h.shape[-1:])


def _detached(tokens: Tokens) -> Tokens:
    return Tokens(tokens.values.detach(), tokens.positions, tokens.grid)
