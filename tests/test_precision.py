"""Precision: ``auto`` takes bf16 only where the hardware computes it; emulated bf16 warns."""

from __future__ import annotations

import warnings

import pytest
import torch

from monde.config import apply_overrides
from monde.recipes import get_recipe, run_recipe
from monde.train import precision as prec


@pytest.mark.parametrize("native", [True, False])
def test_auto_follows_the_hardware(monkeypatch, native):
    monkeypatch.setattr(prec, "bf16_native", lambda device="cpu": native)
    assert prec.resolve_precision("auto") == ("bf16" if native else "fp32")
    assert prec.resolve_precision("fp32") == "fp32"
    ctx = prec.autocast("auto")
    assert isinstance(ctx, torch.autocast) == native
    with ctx:
        y = torch.ones(4, 4) @ torch.ones(4, 4)
    assert y.dtype == (torch.bfloat16 if native else torch.float32)


def test_explicit_bf16_is_honoured_and_warns_where_emulated(monkeypatch):
    monkeypatch.setattr(prec, "bf16_native", lambda device="cpu": False)
    with pytest.warns(RuntimeWarning, match="emulated"):
        assert prec.resolve_precision("bf16") == "bf16"
    monkeypatch.setattr(prec, "bf16_native", lambda device="cpu": True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert prec.resolve_precision("bf16") == "bf16"


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="auto, bf16, fp32"):
        prec.resolve_precision("fp16")


def test_native_probe_matches_the_cpu_flags():
    """The probe agrees with what the kernel says the CPU has (Linux only)."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        pytest.skip("no /proc/cpuinfo")
    has = any(f" {f}" in flags for f in ("avx512_bf16", "amx_tile"))
    assert prec.bf16_native("cpu") == has
    assert prec.bf16_native("meta") is False


def test_a_run_reports_the_precision_it_used(tmp_path, micro_overrides):
    cfg = apply_overrides(get_recipe("video-physics-tiny").build(),
                          micro_overrides + ["train.steps=2", "train.precision=auto"])
    s = run_recipe(cfg, tmp_path / "run", quiet=True)
    assert s["precision"] == prec.resolve_precision("auto")
