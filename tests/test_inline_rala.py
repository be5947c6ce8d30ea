"""inline_attention and rala_attention against their float64 references."""

import numpy as np
import pytest
import softcore
from hypothesis import given
from hypothesis import strategies as st
from softcore import reference as ref

TOL = {np.float32: 1e-5, np.float64: 1e-12}


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def qkv(rng, n, s, d, dv, dtype, heads=(2, 2)):
    q = rng.standard_normal((2, heads[0], n, d)).astype(dtype)
    k = rng.standard_normal((2, heads[1], s, d)).astype(dtype)
    v = rng.standard_normal((2, heads[1], s, dv)).astype(dtype)
    return q, k, v


shapes = dict(
    n=st.integers(1, 300),
    s=st.integers(1, 600),
    d=st.integers(1, 70),
    dv=st.integers(1, 40),
    heads=st.sampled_from([(1, 1), (2, 2), (4, 2), (3, 1)]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)


@given(
    fmap=st.sampled_from(["identity", "relu", "elu1"]), scale=st.sampled_from([None, 0.3]), **shapes
)
def test_inline_matches_reference(n, s, d, dv, heads, dtype, seed, fmap, scale):
    rng = np.random.default_rng(seed)
    q, k, v = qkv(rng, n, s, d, dv, dtype, heads)
    out = softcore.inline_attention(q, k, v, feature_map=fmap, scale=scale)
    want = ref.inline_attention(q, k, v, feature_map=fmap, scale=scale)
    assert out.dtype == dtype and out.shape == want.shape
    assert rel(out, want) <= TOL[dtype]


def test_inline_rows_sum_to_one_and_may_be_negative():
    rng = np.random.default_rng(0)
    q, k, _ = qkv(rng, 50, 70, 8, 1, np.float64)
    # With V = I (one value per key), the output rows are the weights themselves.
    eye = np.broadcast_to(np.eye(70), (2, 2, 70, 70))
    w = softcore.inline_attention(q * 4, k * 4, eye, scale=0.2)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=0, atol=1e-12)
    assert (w < 0).any()


@given(scale=st.sampled_from([None, 0.05, 3.0]), eps=st.sampled_from([1e-6, 0.0, 0.5]), **shapes)
def test_rala_matches_official_formula(n, s, d, dv, heads, dtype, seed, scale, eps):
    rng = np.random.default_rng(seed)
    q, k, v = qkv(rng, n, s, d, dv, dtype, heads)
    out = softcore.rala_attention(q, k, v, scale=scale, eps=eps)
    want = ref.rala_attention(q, k, v, scale=scale, eps=eps)
    assert out.dtype == dtype and out.shape == want.shape
    # The key softmax's logits s mean(phi(q)) . phi(k) reach ~170 at scale 3 and d ~ 60: in f32
    # their rounding alone (ulp 1.5e-5 there) moves the weights by that much relative.
    elu1 = lambda x: np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))  # noqa: E731
    s_ = d**-0.5 if scale is None else scale
    logits = s_ * d * elu1(q.astype(np.float64)).mean(-2).max() * elu1(k.astype(np.float64)).max()
    ulp = float(np.finfo(dtype).eps) * max(logits, 1.0)
    assert rel(out, want) <= TOL[dtype] + 2 * ulp


def test_rala_online_softmax_over_many_blocks_and_large_logits():
    rng = np.random.default_rng(1)
    q, k, v = qkv(rng, 64, 3000, 16, 8, np.float64)
    # Large logits: the softmax over keys rescales many times across blocks.
    out = softcore.rala_attention(q * 3, k * 3, v, scale=2.0)
    assert rel(out, ref.rala_attention(q * 3, k * 3, v, scale=2.0)) <= 1e-12


def test_float16_and_layouts():
    rng = np.random.default_rng(2)
    q, k, v = qkv(rng, 40, 90, 16, 8, np.float32)
    for f in (softcore.inline_attention, softcore.rala_attention):
        want = f(q, k, v)
        h = f(q.astype(np.float16), k.astype(np.float16), v.astype(np.float16))
        assert h.dtype == np.float16
        assert rel(h, want) < 5e-3
        # Transposed views (not C-contiguous) give the same result.
        kt = np.ascontiguousarray(np.swapaxes(k, -1, -2)).swapaxes(-1, -2)
        assert np.array_equal(f(q, kt, v), want)


@pytest.mark.parametrize("f", [softcore.inline_attention, softcore.rala_attention])
def test_errors(f):
    q = np.ones((2, 4))
    with pytest.raises(ValueError, match="at least one key"):
        f(q, np.ones((0, 4)), np.ones((0, 3)))
    with pytest.raises(ValueError, match="k's last dim"):
        f(q, np.ones((3, 5)), np.ones((3, 3)))
    for bad in ("q", "k", "v"):
        x = {"q": q.copy(), "k": np.ones((3, 4)), "v": np.ones((3, 3))}
        x[bad][0, 0] = np.nan
        with pytest.raises(ValueError, match=f"{bad} contains NaN"):
            f(x["q"], x["k"], x["v"])
    with pytest.raises(TypeError):
        f(q.astype(int), np.ones((3, 4)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="scale"):
        f(q, np.ones((3, 4)), np.ones((3, 3)), scale=float("nan"))
    assert f(np.ones((0, 4)), np.ones((3, 4)), np.ones((3, 3))).shape == (0, 3)


def test_inline_bad_feature_map_and_rala_bad_eps():
    q = np.ones((2, 4))
    with pytest.raises(ValueError, match="feature_map"):
        softcore.inline_attention(q, q, q, feature_map="exp")
    with pytest.raises(ValueError, match="feature_map"):
        softcore.inline_attention(q, q, q, feature_map="softmax")
    with pytest.raises(ValueError, match="eps"):
        softcore.rala_attention(q, q, q, eps=-1.0)


def test_many_blocks_of_keys_and_queries():
    # Longer than the passes' 2048-row blocks on both sides, with ragged ends.
    rng = np.random.default_rng(5)
    q, k, v = qkv(rng, 4200, 4500, 24, 16, np.float32)
    for f, r in [
        (softcore.inline_attention, ref.inline_attention),
        (softcore.rala_attention, ref.rala_attention),
    ]:
        assert rel(f(q, k, v), r(q, k, v)) <= 1e-5
    out = softcore.linear_attention(q, k, v)
    assert rel(out, ref.linear_attention(q, k, v)[0]) <= 1e-5
