"""Blocks: rotary embeddings, attention, tokenizers."""

import pytest
import torch

from monde.nn import (
    PatchTokenizer,
    SeriesTokenizer,
    Transformer,
    TubeletTokenizer,
    VectorEmbedder,
    apply_rope,
    attention,
    grid_positions,
    rope_angles,
    rope_frequencies,
)


@pytest.mark.parametrize("axes", [1, 2, 3])
def test_rope_scores_depend_only_on_relative_offsets(axes):
    torch.manual_seed(0)
    dh = 24
    freqs = rope_frequencies(dh, axes)
    q, k = torch.randn(1, 1, 1, dh), torch.randn(1, 1, 1, dh)
    a, b = torch.rand(axes) * 10, torch.rand(axes) * 10
    shift = torch.rand(axes) * 7

    def score(pq, pk):
        rq = apply_rope(q, rope_angles(pq[None], freqs))
        rk = apply_rope(k, rope_angles(pk[None], freqs))
        return (rq * rk).sum()

    assert torch.allclose(score(a, b), score(a + shift, b + shift), atol=1e-4)
    assert not torch.allclose(score(a, b), score(a + shift, b), atol=1e-3)


def test_rope_preserves_norm_and_identity_at_zero():
    x = torch.randn(2, 3, 5, 16)
    ang = rope_angles(torch.rand(5, 2) * 20, rope_frequencies(16, 2))
    assert torch.allclose(apply_rope(x, ang).norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    zero = rope_angles(torch.zeros(5, 2), rope_frequencies(16, 2))
    assert torch.allclose(apply_rope(x, zero), x)


def test_attention_math_matches_sdpa():
    q, k, v = (torch.randn(2, 3, 10, 8) for _ in range(3))
    assert torch.allclose(attention(q, k, v, "math"), attention(q, k, v, "sdpa"), atol=1e-5)


@pytest.mark.parametrize("keys,grad,fused", [(256, False, False), (384, True, False),
                                             (384, False, True), (640, True, True)])
def test_auto_attention_picks_the_faster_cpu_bf16_kernel(monkeypatch, keys, grad, fused):
    """On CPU in bf16, "auto" runs matmul-softmax up to 256 keys, or 512 when a gradient is
    needed, and the fused SDPA kernel otherwise; both give the same attention."""
    import torch.nn.functional as F

    calls = []
    sdpa = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention",
                        lambda *a, **k: calls.append(1) or sdpa(*a, **k))
    q, k, v = (torch.randn(1, 2, keys, 8).bfloat16().requires_grad_(grad) for _ in range(3))
    out = attention(q, k, v, "auto")
    assert bool(calls) == fused
    ref = attention(q.float(), k.float(), v.float(), "sdpa")
    assert torch.allclose(out.float(), ref, atol=3e-2)
    if grad:
        out.float().sum().backward()
        assert q.grad is not None and torch.isfinite(q.grad).all()


def test_tubelet_tokenizer_grid_and_positions():
    tok = TubeletTokenizer(3, 32, patch=8, tubelet=2)
    t = tok(torch.randn(2, 8, 3, 32, 48))
    assert t.values.shape == (2, 4 * 4 * 6, 32) and t.grid == (4, 4, 6)
    assert t.positions.shape == (96, 3)
    assert t.positions[6 + 1].tolist() == [0.0, 1.0, 1.0]  # row-major (t, h, w)
    with pytest.raises(ValueError, match="tubelets"):
        tok(torch.randn(1, 7, 3, 32, 32))


def test_patch_tokenizer_is_local():
    tok = PatchTokenizer(3, 16, patch=4)
    x = torch.zeros(1, 3, 16, 16)
    base = tok(x).values
    x[..., 0:4, 4:8] = 1.0  # change one patch: (row 0, col 1) → token 1
    changed = (tok(x).values - base).abs().sum(-1)[0]
    assert changed.nonzero().flatten().tolist() == [1]


def test_series_tokenizer_channel_embedding_distinguishes_channels():
    tok = SeriesTokenizer(channels=5, dim=16, patch=4)
    t = tok(torch.zeros(2, 5, 12))
    assert t.values.shape == (2, 15, 16) and t.grid == (5, 3) and t.positions.shape == (15, 1)
    v = t.values[0].view(5, 3, 16)
    assert not torch.allclose(v[0, 0], v[1, 0])  # same input, different channel → different token
    assert torch.allclose(v[0, 0], v[0, 1])      # same channel, same input → same token
    with pytest.raises(ValueError):
        tok(torch.zeros(2, 4, 12))


def test_vector_embedder_checks_dimension():
    emb = VectorEmbedder(2, 8)
    assert emb(torch.randn(3, 5, 2)).shape == (3, 5, 8)
    with pytest.raises(ValueError, match="action"):
        emb(torch.randn(3, 5, 3))


def test_transformer_shapes_and_grid_positions():
    tr = Transformer(dim=24, depth=2, heads=2, pos_axes=2)
    pos = grid_positions((3, 4))
    assert tr(torch.randn(2, 12, 24), pos).shape == (2, 12, 24)
    batched = pos.expand(2, -1, -1)
    x = torch.randn(2, 12, 24)
    assert torch.allclose(tr(x, pos), tr(x, batched), atol=1e-6)


def test_sincos_embedding_distinguishes_positions():
    from monde.nn.posembed import sincos_embedding

    pos = grid_positions((2, 3, 4))
    e = sincos_embedding(pos, 32)
    assert e.shape == (24, 32)
    assert torch.allclose(e[:, 30:], torch.zeros(24, 2))  # 3 axes × 10 channels, 2 left over
    d = torch.cdist(e, e) + torch.eye(24)
    assert d.min() > 1e-3  # every grid cell gets its own code
