"""SIGReg and VICReg against direct formulas, plus the EMA target update."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from monde.jepa.ema import ema_update, momentum_schedule
from monde.jepa.regularizers import SIGReg, VICReg, expected_gaussian_statistic


def _trapezoid(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    return ((y[..., 1:] + y[..., :-1]) * np.diff(x) / 2).sum(-1)


def _epps_pulley_reference(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per slice ``N ∫ |φ_N(t) − e^{−t²/2}|² e^{−t²/2} dt`` over the *full* symmetric grid ``t``,
    with the complex characteristic function: no cos/sin split, no symmetry trick.

    x: ``[N, M]`` float64 projections. Returns ``[M]``.
    """
    ecf = np.exp(1j * x[:, :, None] * t).mean(0)  # [M, T]
    gauss = np.exp(-(t**2) / 2)
    return x.shape[0] * _trapezoid(np.abs(ecf - gauss) ** 2 * gauss, t)


def _non_gaussian(n: int = 64, d: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # Skewed, shifted and anisotropic, so every slice's statistic is far from zero.
    return torch.rand(n, d, generator=g) ** 2 * torch.linspace(0.5, 2.0, d) + 0.3


def test_sigreg_matches_direct_integral():
    z = _non_gaussian()
    reg = SIGReg(num_slices=16, knots=17, distributed=False)
    x = (z.double() @ reg.directions(z.shape[1], step=3).double()).numpy()
    stats = reg.statistics(z, step=3).double().numpy()
    # The same 17-knot rule written over [−3, 3] (33 knots): checks the 2× symmetry factor.
    same_rule = _epps_pulley_reference(x, np.linspace(-3, 3, 33))
    np.testing.assert_allclose(stats, same_rule, rtol=1e-4)
    # A dense integral: the default quadrature is accurate for data of this scale.
    dense = _epps_pulley_reference(x, np.linspace(-3, 3, 6001))
    np.testing.assert_allclose(stats, dense, rtol=2e-2)
    fine = SIGReg(num_slices=16, knots=513, distributed=False).statistics(z, step=3).double()
    np.testing.assert_allclose(fine.numpy(), dense, rtol=1e-4)
    assert reg(z, step=3).loss.item() == pytest.approx(stats.mean(), rel=1e-5)


def test_gaussian_expectation_closed_form():
    t = np.linspace(-3, 3, 20001)
    numeric = _trapezoid((1 - np.exp(-(t**2))) * np.exp(-(t**2) / 2), t)
    assert expected_gaussian_statistic(3.0) == pytest.approx(numeric, rel=1e-6)


def test_sigreg_small_for_gaussian_large_otherwise():
    reg = SIGReg(num_slices=256, distributed=False)
    g = torch.Generator().manual_seed(0)
    gauss = [reg(torch.randn(1000, 128, generator=g), step=s).loss.item() for s in range(4)]
    # E = ∫(1 − e^{−t²}) e^{−t²/2} ≈ 1.05 at any N; a single step's mean has std ≈ 0.1.
    assert np.mean(gauss) == pytest.approx(expected_gaussian_statistic(), abs=0.25)
    z = torch.randn(1000, 128, generator=g)
    for bad in (z + 1.0, 3.0 * z, 0.2 * z, torch.full_like(z, 0.1), z.abs()):
        assert reg(bad, step=0).loss.item() > 50 * max(gauss)


def test_sigreg_gradient_reduces_loss():
    reg = SIGReg(num_slices=64, distributed=False)
    z = (_non_gaussian(n=256, d=16)).requires_grad_(True)
    opt = torch.optim.SGD([z], lr=0.5)
    first = None
    for step in range(30):
        loss = reg(z, step=step).loss
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
        opt.step()
    assert loss.item() < 0.2 * first


def test_sigreg_directions_seeded_by_seed_and_step():
    a, b = SIGReg(num_slices=32, seed=7), SIGReg(num_slices=32, seed=7)
    d0 = a.directions(16, step=5)
    assert d0.shape == (16, 32)
    torch.testing.assert_close(d0.norm(dim=0), torch.ones(32))
    assert torch.equal(d0, b.directions(16, step=5))
    assert not torch.allclose(d0, a.directions(16, step=6))
    assert not torch.allclose(d0, SIGReg(num_slices=32, seed=8).directions(16, step=5))
    z = _non_gaussian(d=16)
    assert a(z, step=5).loss.item() == b(z, step=5).loss.item()
    assert a(z, step=5).loss.item() != a(z, step=6).loss.item()


def _vicreg_reference(z: np.ndarray, gamma=1.0, eps=1e-4) -> tuple[float, float]:
    n, d = z.shape
    std = np.sqrt(z.var(axis=0, ddof=1) + eps)
    std_loss = np.maximum(0.0, gamma - std).mean()
    c = np.cov(z.T, ddof=1)
    cov_loss = (c**2).sum() - (np.diag(c) ** 2).sum()
    return std_loss, cov_loss / d


@pytest.mark.parametrize("scale", [0.3, 2.0])
def test_vicreg_matches_formula(scale):
    g = torch.Generator().manual_seed(1)
    z = scale * torch.randn(7, 4, generator=g) @ torch.randn(4, 4, generator=g)
    out = VICReg(std_coeff=25.0, cov_coeff=1.0, distributed=False)(z)
    std_ref, cov_ref = _vicreg_reference(z.double().numpy())
    assert out.parts["vicreg_std"].item() == pytest.approx(std_ref, rel=1e-5, abs=1e-7)
    assert out.parts["vicreg_cov"].item() == pytest.approx(cov_ref, rel=1e-5)
    assert out.loss.item() == pytest.approx(25 * std_ref + cov_ref, rel=1e-5)


def test_vicreg_gradient_and_large_offset():
    g = torch.Generator().manual_seed(2)
    z = 0.05 * torch.randn(64, 8, generator=g)
    reg = VICReg(distributed=False)
    # A large common offset must not change the loss: centring avoids float32 cancellation.
    torch.testing.assert_close(reg(z + 1000.0).loss, reg(z).loss, rtol=1e-4, atol=1e-4)
    z.requires_grad_(True)
    reg(z).loss.backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_ema_update_and_schedule():
    online, target = nn.Linear(3, 2), nn.Linear(3, 2)
    keep = [p.clone() for p in target.parameters()]
    ema_update(target, online, momentum=1.0)
    assert all(torch.equal(p, k) for p, k in zip(target.parameters(), keep))
    ema_update(target, online, momentum=0.75)
    for p, k, o in zip(target.parameters(), keep, online.parameters()):
        torch.testing.assert_close(p, 0.75 * k + 0.25 * o)
    ema_update(target, online, momentum=0.0)
    assert all(torch.equal(p, o) for p, o in zip(target.parameters(), online.parameters()))
    bn_o, bn_t = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    bn_o(torch.randn(8, 3))
    ema_update(bn_t, bn_o, momentum=0.9)
    assert torch.equal(bn_t.running_mean, bn_o.running_mean)
    with pytest.raises(ValueError):
        ema_update(nn.Linear(3, 2), nn.Sequential(nn.Linear(3, 2)), 0.5)

    assert momentum_schedule(0, 100) == pytest.approx(0.996)
    assert momentum_schedule(50, 100) == pytest.approx(0.998)
    assert momentum_schedule(100, 100) == 1.0
    assert momentum_schedule(500, 100, start=0.9, end=0.99) == pytest.approx(0.99)
