"""Which floating-point precision a run computes in, chosen for the hardware it runs on.

bf16 autocast is a large win only where the hardware computes in bf16: CUDA GPUs from Ampere
on, and CPUs with AVX-512 BF16 or AMX (Zen 4/5, Sapphire Rapids and later). Elsewhere PyTorch
emulates it, and on an AVX2-only CPU (most laptops) a bf16 matmul ran at 0.9 GFLOP/s against
144 GFLOP/s in fp32 (docs/results.md), and a bf16 training run was ~13× slower than fp32.
``precision="auto"`` (the default) therefore takes bf16 where it is native and fp32 elsewhere.
"""

from __future__ import annotations

import contextlib
import warnings
from functools import cache

import torch

PRECISIONS = ("auto", "bf16", "fp32")


def bf16_native(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes bf16 matmuls in hardware (not emulated)."""
    return _bf16_native(str(torch.device(device)))


@cache
def _bf16_native(name: str) -> bool:
    """The hardware probe, once per device (it is asked on every evaluation batch)."""
    device = torch.device(name)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False  # MPS and others: fp32 is the safe default
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(cpu, probe, None)
        try:
            if check is not None and check():
                return True
        except RuntimeError:  # a build without the probe's backend
            continue
    return False


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """``"bf16"`` or ``"fp32"`` for a requested precision on ``device``.

    ``auto`` picks bf16 where it is native. An explicit ``bf16`` is honoured, with a warning
    where it is emulated (it is then much slower than fp32).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    native = bf16_native(device)
    if precision == "auto":
        return "bf16" if native else "fp32"
    if precision == "bf16" and not native:
        warnings.warn(f"bf16 is emulated on this {torch.device(device).type} (no AVX-512 BF16, "
                      "AMX or bf16-capable GPU) and runs far slower than fp32; use "
                      "precision=auto or fp32", RuntimeWarning, stacklevel=2)
    return precision


def autocast(precision: str, device: torch.device | str = "cpu"):
    """A context that computes in ``precision`` (resolved for ``device``): bf16 autocast or nothing."""
    device = torch.device(device)
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
