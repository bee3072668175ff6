"""Fit an action model's goal-conditioned policy on its frozen latents (hindsight relabelling).

Every episode is encoded once at its transition boundaries, ``z_0 … z_T`` (``T`` = steps /
frameskip). Each pair ``t < j`` with ``j − t ≤ horizon`` is a goal that the logged actions of
transition ``t`` led toward, so ``π(z_t, z_j)`` regresses them (mean squared error, in the
model's action units). The latents are fitted after training, not during it: while the encoder
still moves, a policy trained beside it lags behind the final latents (on PushT validation
tasks that cost 6/30 against 17/30 for the same head fitted afterwards, docs/results.md).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
import torch.nn.functional as F

from monde.data.episodes import EpisodeDataset
from monde.jepa.action_model import ActionJEPA
from monde.train.schedule import cosine


@torch.no_grad()
def encode_episodes(net: ActionJEPA, data: EpisodeDataset, batch: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents ``[E, T+1, D]`` at every transition boundary and transition actions ``[E, T, k*A]``."""
    c, k = net.cfg, net.cfg.frameskip
    t = data.steps // k
    idx = np.arange(0, t * k + 1, k)
    zs, acts = [], []
    for start in range(0, len(data), batch):
        eps = [data.episode(e) for e in range(start, min(start + batch, len(data)))]
        obs = torch.stack([torch.tensor(e["obs"][idx]) for e in eps])
        proprio = (torch.stack([torch.tensor(e["proprio"][idx]) for e in eps])
                   if c.use_proprio else None)
        zs.append(net.encode(obs, proprio).float())
        acts.append(torch.stack([torch.tensor(e["actions"][: t * k]).reshape(t, -1)
                                 for e in eps]).float())
    return torch.cat(zs), torch.cat(acts)


def fit_policy(net: ActionJEPA, data: EpisodeDataset, *, steps: int, horizon: int,
               batch: int = 512, lr: float = 1e-3, seed: int = 0) -> dict:
    """Train ``net.policy`` in place (nothing else moves); returns ``{"policy_loss", "mean_action_loss"}``.

    ``mean_action_loss`` is the error of always answering the mean action: what a policy that
    ignores its inputs would score, for comparison.
    """
    if net.policy is None:
        raise ValueError("the model has no policy to fit (model.policy_steps = 0)")
    z, a = encode_episodes(net, data)
    a = a / net.cfg.action_scale
    n = z.shape[1]
    pairs = torch.tensor([(t, j) for t in range(n - 1) for j in range(t + 1, min(t + horizon, n - 1) + 1)])
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(net.policy.parameters(), lr=lr, weight_decay=1e-4)
    net.policy.train()
    recent: deque[float] = deque(maxlen=100)  # the last steps' losses, for the report
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = cosine(step, steps, lr, 0.0)
        e = torch.randint(len(z), (batch,), generator=g)
        p = pairs[torch.randint(len(pairs), (batch,), generator=g)]
        guess = net.policy(torch.cat([z[e, p[:, 0]], z[e, p[:, 1]]], dim=-1))
        loss = F.mse_loss(guess, a[e, p[:, 0]])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        recent.append(loss.item())
    net.policy.eval()
    flat = a.reshape(-1, a.shape[-1])
    return {"policy_loss": sum(recent) / len(recent),
            "mean_action_loss": float((flat - flat.mean(0)).pow(2).mean())}
