"""Mask generators: disjoint, non-empty, rectangular, seeded, and shaped as their recipe says."""

from __future__ import annotations

import math

import pytest
import torch

from monde.errors import ConfigError
from monde.jepa.masks import (
    VJEPA_MASKS,
    CausalFuture,
    MaskMixture,
    MaskPair,
    MultiBlock2D,
    RandomTokens,
    TimeBlocks,
    TubeMultiBlock3D,
    gather_tokens,
    vjepa_masks,
)

GENERATORS = [
    MultiBlock2D(grid=(14, 14)),
    MultiBlock2D(grid=(3, 3), min_context=2),  # tiny: forces the fallback path sometimes
    TubeMultiBlock3D(grid=(4, 8, 8)),
    TubeMultiBlock3D(grid=(2, 4, 4), n_blocks=2, block_scale=(0.7, 0.7)),
    MaskMixture(vjepa_masks((4, 6, 6))),
    TimeBlocks(grid=(3, 20), n_blocks=3),
    TimeBlocks(grid=(10, 2), time_axis=0, mask_ratio=0.3),
    CausalFuture(grid=(6, 2, 3), context_steps=2, horizon=3),
]


def _check_pair(mp: MaskPair, batch: int, n_tokens: int) -> None:
    for idx in (mp.context_idx, mp.target_idx):
        assert idx.dtype == torch.long and idx.dim() == 2 and idx.shape[0] == batch
        assert idx.shape[1] >= 1  # non-empty, and the same count for every sample
        assert (idx[:, 1:] > idx[:, :-1]).all()  # sorted, no duplicates
        assert idx.min() >= 0 and idx.max() < n_tokens
    for c, t in zip(mp.context_idx, mp.target_idx):
        assert not set(c.tolist()) & set(t.tolist())


@pytest.mark.parametrize("gen", GENERATORS, ids=lambda g: f"{type(g).__name__}{g.grid}")
def test_masks_are_valid_and_seeded(gen):
    n = math.prod(gen.grid)
    for seed in range(5):
        mp = gen(6, torch.Generator().manual_seed(seed))
        _check_pair(mp, 6, n)
        again = gen(6, torch.Generator().manual_seed(seed))
        assert torch.equal(mp.context_idx, again.context_idx)
        assert torch.equal(mp.target_idx, again.target_idx)


@pytest.mark.parametrize("gen", GENERATORS[:6], ids=lambda g: f"{type(g).__name__}{g.grid}")
def test_random_masks_vary_with_seed_and_sample(gen):
    a = gen(8, torch.Generator().manual_seed(0))
    b = gen(8, torch.Generator().manual_seed(1))
    assert not (a.target_idx.shape == b.target_idx.shape and torch.equal(a.target_idx, b.target_idx))
    rows = {tuple(r.tolist()) for r in a.target_idx}
    assert len(rows) > 1  # positions are drawn per sample


def test_multiblock_scale_and_structure():
    gen = MultiBlock2D(grid=(16, 16), n_targets=1, target_scale=(0.15, 0.2), min_context=1)
    for seed in range(10):
        g = torch.Generator().manual_seed(seed)
        mp = gen(1, g)  # one sample: nothing truncated, so the target is exactly one block
        tgt = torch.zeros(256, dtype=torch.bool)
        tgt[mp.target_idx[0]] = True
        rows, cols = tgt.view(16, 16).nonzero().unbind(1)
        bh, bw = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert bh * bw == tgt.sum()  # a filled rectangle
        assert 0.1 <= tgt.sum() / 256 <= 0.25  # about the requested area (rounding)
        assert 0.5 <= bh / bw <= 2.0
    # Four targets cover more than one, context is the rest of a large block.
    mp = MultiBlock2D(grid=(16, 16))(16, torch.Generator().manual_seed(0))
    assert 0.2 * 256 < mp.target_idx.shape[1] < 0.8 * 256
    assert mp.context_idx.shape[1] + mp.target_idx.shape[1] <= 256


def test_tubes_span_all_frames():
    t, h, w = 4, 8, 8
    gen = TubeMultiBlock3D(grid=(t, h, w), n_blocks=3)
    mp = gen(5, torch.Generator().manual_seed(3))  # counts differ before truncation
    for idx in (mp.target_idx, mp.context_idx):
        for row in idx:
            frame, spatial = row // (h * w), row % (h * w)
            per_t = [set(spatial[frame == f].tolist()) for f in range(t)]
            assert all(s == per_t[0] and s for s in per_t)  # the same spatial set at every t
    # Without truncation, target and context tile the clip.
    one = gen(1, torch.Generator().manual_seed(4))
    assert one.context_idx.shape[1] + one.target_idx.shape[1] == t * h * w


def test_tube_scale_and_vjepa_settings():
    assert VJEPA_MASKS[0]["n_blocks"] == 8 and VJEPA_MASKS[1]["block_scale"] == (0.7, 0.7)
    short, long = vjepa_masks((8, 16, 16))
    g = torch.Generator().manual_seed(0)
    one = TubeMultiBlock3D(grid=(8, 16, 16), n_blocks=1)(1, g)
    assert 0.1 <= one.target_idx.shape[1] / (8 * 256) <= 0.2
    fracs = [gen(4, g).target_idx.shape[1] / (8 * 256) for gen in (short, long)]
    # 8 small tubes overlap to ~70% coverage at most; 2 large ones cover most of the frame.
    assert 0.15 <= fracs[0] <= 0.8 and fracs[1] >= 0.7


def test_mixture_picks_with_generator():
    mix = MaskMixture([CausalFuture(grid=(4, 2), context_steps=1),
                       CausalFuture(grid=(4, 2), context_steps=3)])
    seen = {mix(2, torch.Generator().manual_seed(s)).context_idx.shape[1] for s in range(20)}
    assert seen == {2, 6}
    assert mix.grid == (4, 2)
    with pytest.raises(ConfigError):
        MaskMixture([CausalFuture(grid=(4, 2)), CausalFuture(grid=(4, 3))])


def test_time_blocks_exact_ratio_across_channels():
    c, p = 3, 20
    gen = TimeBlocks(grid=(c, p), n_blocks=3, mask_ratio=0.5)
    mp = gen(4, torch.Generator().manual_seed(0))
    assert mp.target_idx.shape[1] == c * 10 and mp.context_idx.shape[1] == c * 10
    for row in mp.target_idx:
        ch, step = row // p, row % p
        steps = [set(step[ch == i].tolist()) for i in range(c)]
        assert all(s == steps[0] for s in steps)  # every channel masked at the same steps
        runs = sum(1 for s in sorted(steps[0]) if s - 1 not in steps[0])
        assert runs == 3  # three separate contiguous spans


def test_causal_future_exact():
    gen = CausalFuture(grid=(5, 2, 2), context_steps=2, horizon=2)
    mp = gen(3)
    assert torch.equal(mp.context_idx, torch.arange(8).repeat(3, 1))
    assert torch.equal(mp.target_idx, torch.arange(8, 16).repeat(3, 1))
    rest = CausalFuture(grid=(5, 2, 2), context_ratio=0.4)(1)
    assert rest.target_idx.tolist() == [list(range(8, 20))]
    series = CausalFuture(grid=(2, 4), time_axis=1, context_steps=3)(1)  # channels × time
    assert series.context_idx.tolist() == [[0, 1, 2, 4, 5, 6]]
    assert series.target_idx.tolist() == [[3, 7]]
    with pytest.raises(ConfigError):
        CausalFuture(grid=(5, 2), context_steps=5)


def test_gather_tokens():
    x = torch.arange(2 * 5 * 3).view(2, 5, 3).float()
    idx = torch.tensor([[0, 4], [1, 2]])
    out = gather_tokens(x, idx)
    assert out.shape == (2, 2, 3)
    assert torch.equal(out[0], x[0, [0, 4]]) and torch.equal(out[1], x[1, [1, 2]])
    with pytest.raises(ValueError):
        gather_tokens(x, idx[0])


def test_invalid_configs():
    with pytest.raises(ConfigError):
        MultiBlock2D(grid=(4, 4, 4))
    with pytest.raises(ConfigError):
        TubeMultiBlock3D(grid=(1, 2, 2), min_context=4)
    with pytest.raises(ConfigError):
        TimeBlocks(grid=(3, 1))


def test_fallback_keeps_a_context_when_blocks_cover_everything():
    gen = TubeMultiBlock3D(grid=(2, 2, 2), n_blocks=4, block_scale=(1.0, 1.0), min_context=3)
    mp = gen(3, torch.Generator().manual_seed(0))
    _check_pair(mp, 3, 8)
    assert mp.context_idx.shape[1] == 4 and mp.target_idx.shape[1] == 4  # 2 tubes each
    img = MultiBlock2D(grid=(2, 2), target_scale=(1.0, 1.0), min_context=1, max_tries=1)
    _check_pair(img(4, torch.Generator().manual_seed(0)), 4, 4)


def test_random_tokens_masks_the_ratio_per_sample():
    gen = RandomTokens(grid=(4, 8, 8), mask_ratio=0.75)
    m = gen(16, torch.Generator().manual_seed(0))
    assert m.context_idx.shape == (16, 64) and m.target_idx.shape == (16, 192)
    both = torch.cat([m.context_idx, m.target_idx], 1).sort(1).values
    assert torch.equal(both, torch.arange(256).expand(16, -1))  # disjoint, covering every token
    assert torch.equal(m.context_idx, m.context_idx.sort(1).values)
    assert not torch.equal(m.target_idx[0], m.target_idx[1])  # drawn per sample
    with pytest.raises(ConfigError):
        RandomTokens(grid=(4, 8, 8), mask_ratio=1.0)
