"""Under DDP, SIGReg/VICReg give the loss *and gradients* of one process on the whole batch.

Two gloo CPU processes each take half of a fixed batch through a tiny ``nn.Linear`` wrapped in
``DistributedDataParallel``; their losses and (DDP-averaged) parameter gradients must equal a
single process on the concatenated batch. The naive per-rank regulariser must not.
"""

from __future__ import annotations

import datetime
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from monde.jepa.regularizers import SIGReg, VICReg, batch_mean

pytestmark = pytest.mark.distributed

WORLD, N, D_IN, D = 2, 16, 5, 4
CASES = ("sigreg", "vicreg", "vicreg_centred", "train")


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(N, D_IN, generator=g), torch.randn(N, D, generator=g)


def _model() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(D_IN, D)


def _run(model: nn.Module, params: list[nn.Parameter], x: torch.Tensor, y: torch.Tensor,
         case: str, distributed: bool) -> dict:
    """One forward/backward; returns the loss and the parameter gradients."""
    for p in params:
        p.grad = None
    z = model(x)
    sig = SIGReg(num_slices=32, seed=3, distributed=distributed)
    vic = VICReg(distributed=distributed)
    if case == "sigreg":
        loss = sig(z, step=7).loss
    elif case == "vicreg":
        loss = vic(z).loss
    elif case == "vicreg_centred":  # an action model's cell-centred VICReg: [N, 2 channels, 2 cells]
        cells = z.reshape(-1, 2, 2)
        cells = cells - batch_mean(cells)
        loss = vic(cells.transpose(1, 2).reshape(-1, 2)).loss
    else:  # like training: a per-sample mean prediction term plus regularisers
        loss = F.mse_loss(z, y) + 0.5 * sig(z, step=7).loss + 0.1 * vic(z).loss
    loss.backward()
    return {"loss": loss.detach(), "grads": [p.grad.clone() for p in params]}


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD, timeout=datetime.timedelta(seconds=60))
    try:
        x, y = _data()
        shard = slice(rank * N // WORLD, (rank + 1) * N // WORLD)
        net = _model()
        ddp = DistributedDataParallel(net)
        params = list(net.parameters())
        out = {}
        for case in CASES:
            out[case] = _run(ddp, params, x[shard], y[shard], case, distributed=True)
            out["naive_" + case] = _run(ddp, params, x[shard], y[shard], case, distributed=False)
        torch.save(out, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> tuple[list[dict], dict]:
    """Per-rank results of the 2-process run, and the single-process reference."""
    tmp = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(str(tmp / "init"), str(tmp)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp / f"rank{r}.pt") for r in range(WORLD)]
    x, y = _data()
    net = _model()
    ref = {case: _run(net, list(net.parameters()), x, y, case, distributed=True) for case in CASES}
    return ranks, ref


@pytest.mark.parametrize("case", CASES)
def test_ddp_matches_single_process(results, case):
    ranks, ref = results
    losses = torch.stack([r[case]["loss"] for r in ranks])
    if case == "train":
        # The prediction term is a per-rank mean: only its average over ranks (what DDP's
        # gradient averaging optimises) is the batch loss; the regularisers are global already.
        losses = losses.mean(0, keepdim=True)
    for loss in losses:
        torch.testing.assert_close(loss, ref[case]["loss"], atol=1e-5, rtol=1e-5)
    for r in ranks:
        for g, g_ref in zip(r[case]["grads"], ref[case]["grads"]):
            torch.testing.assert_close(g, g_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_naive_per_rank_regulariser_differs(results, case):
    """The check above can fail: per-shard statistics give other losses and gradients."""
    ranks, ref = results
    for r in ranks:
        assert not torch.allclose(r["naive_" + case]["loss"], ref[case]["loss"], atol=1e-3)
    # DDP makes the naive gradients equal across ranks, but they are not the batch gradients.
    naive = ranks[0]["naive_" + case]["grads"]
    assert any(not torch.allclose(g, g_ref, atol=1e-3) for g, g_ref in zip(naive, ref[case]["grads"]))
