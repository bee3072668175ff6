"""Data-parallel training equals single-process training on the concatenated batch.

Two gloo processes on the CPU each get half of a fixed batch; one process gets all of it. With
masks that are the same for every sample (causal "predict the future") and fp32, the only way
the two can differ is in how batch statistics (SIGReg, VICReg) and gradients are combined
across processes — which is exactly what this checks, through the real trainer.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from monde.config import apply_overrides
from monde.jepa.model import JEPA
from monde.recipes import get_recipe
from monde.train.checkpoint import save_model_folder
from monde.train.trainer import train

pytestmark = pytest.mark.distributed


class HalfBatches:
    """Rank r of R gets rows [r*B, (r+1)*B) of one fixed batch of R*B clips."""

    def __init__(self, video: torch.Tensor):
        self.video = video

    def batch(self, step: int, batch_size: int, rank: int = 0) -> torch.Tensor:
        return self.video[rank * batch_size:(rank + 1) * batch_size]


def _config(objective: str, overrides: list[str]):
    return apply_overrides(get_recipe("video-physics-tiny").build(), overrides + [
        "train.steps=3", "train.precision=fp32", "train.batch_size=8", "train.warmup_steps=1",
        "model.mask.kind=causal", f"model.objective.anti_collapse={objective}",
        "model.objective.reg_weight=1.0"])


def _run(rank: int, world: int, port: int, objective: str, overrides: list[str], out: str,
         video: torch.Tensor) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    cfg = _config(objective, overrides)
    torch.manual_seed(0)
    model = JEPA(cfg.model)

    def export(state, result):
        save_model_folder(out, model=state, config={}, meta={})

    train(model, HalfBatches(video), cfg.train, __import__("pathlib").Path(out), config={},
          meta={}, quiet=True, export=export)
    if world > 1:
        torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("objective", ["sigreg", "vicreg", "ema"])
def test_ddp_equals_single_process(tmp_path, micro_overrides, objective):
    torch.manual_seed(1)
    video = torch.rand(8, 4, 3, 32, 32)
    single, ddp = str(tmp_path / "single"), str(tmp_path / "ddp")
    _run(0, 1, 0, objective, micro_overrides, single, video)
    mp.spawn(_run, args=(2, _free_port(), objective, micro_overrides, ddp, video), nprocs=2)
    a, b = load_file(f"{single}/model.safetensors"), load_file(f"{ddp}/model.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)


def test_torchrun_cli_ddp_and_fsdp(tmp_path, micro_overrides):
    for strategy in ("ddp", "fsdp"):
        out = tmp_path / strategy
        r = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
             f"--master_port={_free_port()}", "-m", "monde", "train", "video-physics-tiny",
             "--out", str(out), *micro_overrides, "train.steps=4",
             f"train.parallel.strategy={strategy}", "--quiet", "--json"],
            capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-8000:]  # the ranks' own output, not only the launcher's
        assert r.stdout.count('"recipe"') == 1  # only rank 0 reports
        import monde

        assert monde.load(out).encode(torch.rand(1, 4, 3, 32, 32)).shape == (1, 32, 32)


def _cli_rank(rank: int, world: int, port: int, argv: list[str]) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    from monde.cli import main

    assert main(argv) == 0
    # A group left alive until interpreter shutdown can SIGABRT a rank (gloo's threads release
    # tensors after the interpreter is gone); the command must leave it before returning.
    assert not torch.distributed.is_initialized()


def test_cli_leaves_the_process_group_before_returning(tmp_path, micro_overrides):
    argv = ["train", "video-physics-tiny", "--out", str(tmp_path / "run"), *micro_overrides,
            "train.steps=2", "--quiet"]
    mp.spawn(_cli_rank, args=(2, _free_port(), argv), nprocs=2)
