"""The trainer: a run learns, checkpoints, is killed, resumes exactly; bad folders are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from monde.config import apply_overrides
from monde.errors import ConfigError
from monde.recipes import get_recipe, run_recipe
from monde.train.metrics import read_metrics


def _cfg(overrides):
    return apply_overrides(get_recipe("video-physics-tiny").build(), overrides)


def _cli(args, env=None):
    return subprocess.run([sys.executable, "-m", "monde", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_short_run_learns_and_exports(tmp_path, micro_overrides):
    cfg = _cfg(micro_overrides + ["train.steps=24", "train.precision=fp32"])
    s = run_recipe(cfg, tmp_path / "run", quiet=True)
    assert s["steps"] == 24 and not s["interrupted"]
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(2, 25, 2))
    assert rows[-1]["loss"] < rows[0]["loss"]  # the latent prediction loss falls
    assert rows[-1]["effective_rank"] > 2       # and the embeddings have not collapsed
    assert (tmp_path / "run" / "model.safetensors").exists()
    again = run_recipe(cfg, tmp_path / "run", quiet=True)  # a finished run, rerun: no new steps
    assert again["steps"] == 24 and again["resumed_from"] == 24
    assert again["final_loss"] == pytest.approx(rows[-1]["loss"], abs=1e-5)


@pytest.mark.parametrize("objective", ["sigreg", "vicreg"])
def test_regularised_objectives_train(tmp_path, micro_overrides, objective):
    cfg = _cfg(micro_overrides + ["train.steps=4", f"model.objective.anti_collapse={objective}"])
    s = run_recipe(cfg, tmp_path / objective, quiet=True)
    rows = read_metrics(tmp_path / objective / "metrics.jsonl")
    assert objective in rows[-1] and s["steps"] == 4


def test_killed_run_resumes_exactly(tmp_path, micro_overrides):
    args = ["train", "video-physics-tiny", *micro_overrides, "train.steps=12",
            "train.precision=fp32", "--quiet"]
    full = _cli([*args, "--out", str(tmp_path / "full")])
    assert full.returncode == 0, full.stderr

    # SIGKILL right after step 6: the last checkpoint is step 4, so steps 5-6 are lost.
    killed = _cli([*args, "--out", str(tmp_path / "cut")], env={"MONDE_TEST_KILL_AT_STEP": "6"})
    assert killed.returncode == -9
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    resumed = _cli([*args, "--out", str(tmp_path / "cut"), "--json"])
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary["resumed_from"] == 4 and summary["steps"] == 12

    a = load_file(tmp_path / "full" / "model.safetensors")
    b = load_file(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    # The metrics file reads as if the run had never stopped.
    la = read_metrics(tmp_path / "full" / "metrics.jsonl")
    lb = read_metrics(tmp_path / "cut" / "metrics.jsonl")
    assert [r["step"] for r in la] == [r["step"] for r in lb]
    assert la[-1]["loss"] == pytest.approx(lb[-1]["loss"], rel=1e-5)


def test_out_folder_with_another_run_is_refused(tmp_path, micro_overrides):
    run_recipe(_cfg(micro_overrides + ["train.steps=2"]), tmp_path / "run", quiet=True)
    with pytest.raises(ConfigError, match="holds another run"):
        run_recipe(_cfg(micro_overrides + ["train.steps=3", "train.lr=0.01"]), tmp_path / "run",
                   quiet=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a monde run folder"):
        run_recipe(_cfg(micro_overrides + ["train.steps=2"]), tmp_path / "other", quiet=True)


def test_mismatched_world_and_encoder_sizes_are_refused(tmp_path, micro_overrides):
    with pytest.raises(ConfigError, match="model.encoder.frames"):
        run_recipe(_cfg(micro_overrides + ["data.balls.frames=6"]), tmp_path / "r", quiet=True)


def test_multi_layer_targets_average_the_last_blocks(micro_overrides):
    from monde.jepa.model import JEPA

    cfg = _cfg(micro_overrides + ["model.encoder.depth=3", "model.objective.target_layers=2"])
    torch.manual_seed(0)
    model = JEPA(cfg.model)
    for p in model.target_encoder.parameters():   # the EMA copy starts equal: make it differ
        p.data.add_(0.1 * torch.randn_like(p))
    x = torch.rand(2, 4, 3, 32, 32)
    tokens = model.target_encoder.tokenize(x)
    outs, pos = [], tokens.positions
    h = tokens.values
    rotation = model.target_encoder.backbone.blocks[0].attn.rotation(pos, h.dtype)
    for block in model.target_encoder.backbone.blocks:
        h = block(h, pos, rotation)
        outs.append(torch.nn.functional.layer_norm(h, h.shape[-1:]))
    want = (outs[1] + outs[2]) / 2
    want = torch.nn.functional.layer_norm(want, want.shape[-1:])
    torch.testing.assert_close(model.targets(x), want)
    # One layer: the final (normed) output, layer-normed, as in I-/V-JEPA.
    model.cfg.objective.target_layers = 1
    final = model.target_encoder.encode(x)
    torch.testing.assert_close(model.targets(x), torch.nn.functional.layer_norm(final, final.shape[-1:]))
    # The online encoder is not the target: the loss trains it toward the averaged targets.
    model.cfg.objective.target_layers = 2
    out = model(x)
    out.loss.backward()
    assert torch.isfinite(out.loss) and model.encoder.backbone.blocks[0].mlp[0].weight.grad is not None


def test_more_target_layers_than_blocks_is_refused(micro_overrides):
    from monde.jepa.model import JEPA

    cfg = _cfg(micro_overrides + ["model.objective.target_layers=5"])   # depth 1
    with pytest.raises(ValueError, match="target_layers must be in 1..1"):
        JEPA(cfg.model)
