"""Collapse diagnostics against known spectra."""

from __future__ import annotations

import pytest
import torch

from monde.jepa.diagnostics import CollapseStats, collapse_stats


def test_isotropic_gaussian_has_full_effective_rank():
    d = 32
    z = torch.randn(2000, d, generator=torch.Generator().manual_seed(0))
    s = collapse_stats(z)
    assert isinstance(s, CollapseStats)
    assert s.effective_rank > 0.8 * d and s.effective_rank <= d
    assert s.std_mean == pytest.approx(1.0, abs=0.05) and s.std_min > 0.9


def test_rank_one_and_constant():
    g = torch.Generator().manual_seed(1)
    rank1 = torch.randn(500, 1, generator=g) * torch.randn(1, 16, generator=g) + 3.0
    assert collapse_stats(rank1).effective_rank == pytest.approx(1.0, abs=1e-3)
    const = torch.full((100, 16), 0.1)
    s = collapse_stats(const)
    assert s.std_mean < 1e-6 and s.std_min < 1e-6
    assert s.effective_rank == 0.0
    assert s.as_dict().keys() == {"std_mean", "std_min", "effective_rank"}


def test_known_spectrum_and_bf16():
    # Two orthogonal directions with singular values 3:1 → exp(H([0.75, 0.25])).
    z = torch.zeros(4, 3)
    z[0, 0], z[1, 0], z[2, 1], z[3, 1] = 3, -3, 1, -1
    p = torch.tensor([0.75, 0.25])
    expected = float(torch.exp(-(p * p.log()).sum()))
    assert collapse_stats(z).effective_rank == pytest.approx(expected, rel=1e-5)
    s = collapse_stats(z.to(torch.bfloat16).view(2, 2, 3))  # any leading shape, any float dtype
    assert s.effective_rank == pytest.approx(expected, rel=1e-5)
    std = z.std(dim=0)
    assert s.std_mean == pytest.approx(std.mean().item()) and s.std_min == pytest.approx(0.0)
