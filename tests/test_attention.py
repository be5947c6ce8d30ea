"""Exact softmax attention against the float64 reference."""

import numpy as np
import pytest
import softcore
from hypothesis import given
from hypothesis import strategies as st
from softcore import reference as ref


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


TOL = {np.float32: 1e-5, np.float64: 1e-12}


def qkv(rng, batch, n, s, d, dv, dtype=np.float64, hkv=None):
    kb = batch if hkv is None else batch[:-1] + (hkv,)
    q = rng.standard_normal(batch + (n, d)).astype(dtype)
    k = rng.standard_normal(kb + (s, d)).astype(dtype)
    v = rng.standard_normal(kb + (s, dv)).astype(dtype)
    return q, k, v


@given(
    n=st.integers(1, 300),
    s=st.integers(1, 300),
    d=st.integers(1, 70),
    dv=st.integers(1, 40),
    causal=st.booleans(),
    window=st.one_of(st.none(), st.integers(1, 80)),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_exact_matches_reference(n, s, d, dv, causal, window, dtype, seed):
    rng = np.random.default_rng(seed)
    q, k, v = qkv(rng, (2,), n, s, d, dv, dtype)
    out, lse = softcore.softmax_attention(q, k, v, causal=causal, window=window, return_lse=True)
    want, wlse = ref.softmax_attention(q, k, v, causal=causal, window=window)
    assert out.dtype == dtype and out.shape == (2, n, dv) and lse.shape == (2, n)
    assert rel(out, want) <= TOL[dtype]
    fin = np.isfinite(wlse)
    assert np.array_equal(np.isfinite(lse), fin)
    np.testing.assert_allclose(lse[fin], wlse[fin], rtol=TOL[dtype] * 10, atol=TOL[dtype] * 10)
    assert np.all(out[~fin] == 0)


@given(
    n=st.integers(1, 150),
    s=st.integers(1, 150),
    groups=st.sampled_from([1, 2, 4]),
    seed=st.integers(0, 2**31),
    scale=st.one_of(st.none(), st.floats(0.01, 2.0)),
)
def test_grouped_heads_and_masks(n, s, groups, seed, scale):
    rng = np.random.default_rng(seed)
    q, k, v = qkv(rng, (2, 2 * groups), n, s, 16, 8, hkv=2)
    # A mask broadcast over the batch, with some rows fully masked.
    mask = rng.random((1, 2 * groups, n, s)) < 0.7
    mask[..., : max(1, n // 5), :] = False
    out, lse = softcore.softmax_attention(q, k, v, mask=mask, scale=scale, return_lse=True)
    want, wlse = ref.softmax_attention(q, k, v, mask=mask, scale=scale)
    assert rel(out, want) <= 1e-12
    assert np.all(np.isneginf(lse[..., : max(1, n // 5)]))
    assert np.all(out[..., : max(1, n // 5), :] == 0)
    # lse's error is absolute (a score's rounding), so near lse = 0 it needs an atol.
    fin = np.isfinite(wlse)
    np.testing.assert_allclose(lse[fin], wlse[fin], rtol=1e-12, atol=1e-12)


def test_float16_strides_and_layouts():
    rng = np.random.default_rng(3)
    q, k, v = qkv(rng, (3,), 70, 90, 24, 12)
    want, _ = ref.softmax_attention(q, k, v, causal=True)
    got = softcore.softmax_attention(q.astype(np.float16), k, v, causal=True)
    assert got.dtype == np.float16 and rel(got, want) < 2e-3
    qf = np.asfortranarray(q)
    kr = k[:, ::-1][:, ::-1]
    vs = np.repeat(v, 2, axis=-1)[..., ::2]
    assert rel(softcore.softmax_attention(qf, kr, vs, causal=True), want) < 1e-12


def test_causal_more_queries_than_keys_and_empty():
    rng = np.random.default_rng(4)
    q, k, v = qkv(rng, (), 10, 4, 8, 3)
    out, lse = softcore.softmax_attention(q, k, v, causal=True, return_lse=True)
    want, wlse = ref.softmax_attention(q, k, v, causal=True)
    # Rows 0..5 see nothing (j <= i - 6): zeros and -inf.
    assert np.all(out[:6] == 0) and np.all(np.isneginf(lse[:6]))
    assert rel(out, want) < 1e-12
    e = softcore.softmax_attention(np.zeros((0, 8)), np.zeros((5, 8)), np.zeros((5, 2)))
    assert e.shape == (0, 2)
    z, zl = softcore.softmax_attention(q, np.zeros((0, 8)), np.zeros((0, 3)), return_lse=True)
    assert np.all(z == 0) and np.all(np.isneginf(zl))


def test_thread_count_is_bitwise_invisible():
    rng = np.random.default_rng(5)
    q, k, v = qkv(rng, (2, 3), 300, 260, 32, 16, np.float32)
    before = softcore.get_num_threads()
    try:
        softcore.set_num_threads(1)
        one = softcore.softmax_attention(q, k, v, causal=True)
        softcore.set_num_threads(2)
        two = softcore.softmax_attention(q, k, v, causal=True)
    finally:
        softcore.set_num_threads(before)
    assert np.array_equal(one, two)


def test_errors():
    q = np.zeros((2, 4, 5, 8))
    k = np.zeros((2, 3, 6, 8))
    with pytest.raises(ValueError, match="multiple"):
        softcore.softmax_attention(q, k, np.zeros((2, 3, 6, 4)))
    with pytest.raises(ValueError, match="d = 8"):
        softcore.softmax_attention(q, np.zeros((2, 4, 6, 7)), np.zeros((2, 4, 6, 4)))
    with pytest.raises(ValueError, match="window"):
        softcore.softmax_attention(q, q, q, window=0)
    with pytest.raises(ValueError, match="window"):
        softcore.softmax_attention(q, q, q, window=-(2**70))
    with pytest.raises(TypeError, match="window"):
        softcore.softmax_attention(q, q, q, window=2.5)
    # A window beyond any length is the causal bound alone (no OverflowError).
    huge = softcore.softmax_attention(q, q, q, window=2**70)
    assert np.array_equal(huge, softcore.softmax_attention(q, q, q, causal=True))
    assert np.array_equal(
        softcore.softmax_attention(q, q, q, window=np.int64(3)),
        softcore.softmax_attention(q, q, q, window=3),
    )
    with pytest.raises(ValueError, match="broadcast"):
        softcore.softmax_attention(q, q, q, mask=np.ones((3, 5), bool))
    with pytest.raises(TypeError, match="mask"):
        softcore.softmax_attention(q, q, q, mask=np.ones((5, 5)))
    with pytest.raises(TypeError, match="dtype"):
        softcore.softmax_attention(q.astype(int), q, q)
    bad = q.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        softcore.softmax_attention(q, bad, q)
    with pytest.raises(ValueError, match="dv must be >= 1"):
        softcore.softmax_attention(q, q, np.zeros((2, 4, 5, 0)))
