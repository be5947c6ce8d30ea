"""decode_attention (split-KV, unified max) against the float64 reference."""

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


def cache(rng, b, hkv, g, s, d, dv, dtype):
    q = rng.standard_normal((b, hkv * g, d)).astype(dtype)
    k = rng.standard_normal((b, hkv, s, d)).astype(dtype)
    v = rng.standard_normal((b, hkv, s, dv)).astype(dtype)
    return q, k, v


def check(out, lse, want, wlse, dtype):
    assert out.dtype == dtype and out.shape == want.shape and lse.shape == wlse.shape
    assert rel(out, want) <= TOL[dtype]
    fin = np.isfinite(wlse)
    assert np.array_equal(np.isfinite(lse), fin)
    np.testing.assert_allclose(lse[fin], wlse[fin], rtol=TOL[dtype] * 10, atol=TOL[dtype] * 10)
    assert np.all(out[~fin] == 0) and np.all(lse[~fin] == -np.inf)


@given(
    b=st.integers(1, 3),
    hkv=st.integers(1, 3),
    g=st.sampled_from([1, 2, 4]),
    s=st.integers(0, 300),
    d=st.integers(1, 70),
    dv=st.integers(1, 40),
    lens=st.sampled_from(["none", "seq", "head", "int"]),
    splits=st.one_of(st.none(), st.integers(1, 320)),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_matches_reference(b, hkv, g, s, d, dv, lens, splits, dtype, seed):
    rng = np.random.default_rng(seed)
    q, k, v = cache(rng, b, hkv, g, s, d, dv, dtype)
    kv_len = {
        "none": None,
        "seq": rng.integers(0, s + 1, size=b),
        "head": rng.integers(0, s + 1, size=(b, hkv * g)),
        "int": int(rng.integers(0, s + 1)),
    }[lens]
    out, lse, info = softcore.decode_attention(
        q, k, v, kv_len=kv_len, num_splits=splits, return_info=True
    )
    want, wlse = ref.decode_attention(q, k, v, kv_len=kv_len)
    check(out, lse, want, wlse, dtype)
    assert info["fallback_rows"] == 0 and info["num_splits"] >= 1


@given(
    s=st.integers(1, 200),
    splits=st.integers(1, 210),
    offset=st.sampled_from([-200.0, -50.0, -3.0, 0.0, 2.0, 30.0, 50.0, 400.0]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_unified_max_any_phi(s, splits, offset, dtype, seed):
    rng = np.random.default_rng(seed)
    q, k, v = cache(rng, 2, 2, 2, s, 24, 16, dtype)
    q *= 3.0
    kv_len = rng.integers(0, s + 1, size=2)
    _, wlse = ref.decode_attention(q, k, v, kv_len=kv_len)
    sc = np.einsum("bhd,bhsd->bhs", q.astype(np.float64), np.repeat(k, 2, axis=1)) / np.sqrt(24)
    live = np.arange(s) < kv_len[:, None, None]
    top = np.where(live, sc, -np.inf).max(-1)
    phi = float(np.max(top[np.isfinite(top)], initial=0.0)) + offset
    sync = softcore.decode_attention(q, k, v, kv_len=kv_len, num_splits=splits)
    out, lse, info = softcore.decode_attention(
        q, k, v, kv_len=kv_len, num_splits=splits, unified_max=phi, return_info=True
    )
    want, wlse = ref.decode_attention(q, k, v, kv_len=kv_len)
    check(out, lse, want, wlse, dtype)
    safe = 0.5 * (88.72 if dtype == np.float32 else 709.78)
    off = np.isfinite(top) & (np.abs(top - phi) > safe + 1e-3)
    assert info["fallback_rows"] >= int(off.sum())
    if abs(offset) > 2 * safe:
        # Every visible row fell back: bitwise the synchronised answer.
        assert info["fallback_rows"] == int(np.isfinite(top).sum())
        assert np.array_equal(out, sync[0]) and np.array_equal(lse, sync[1])


def test_unified_in_range_never_falls_back_and_is_faithful():
    rng = np.random.default_rng(0)
    q, k, v = cache(rng, 1, 4, 2, 5000, 64, 64, np.float32)
    out, lse, info = softcore.decode_attention(
        q, k, v, unified_max=2.0, num_splits=7, return_info=True
    )
    assert info == {"num_splits": 7, "fallback_rows": 0}
    want, wlse = ref.decode_attention(q, k, v)
    check(out, lse, want, wlse, np.float32)


def test_thread_count_and_split_invariance():
    rng = np.random.default_rng(1)
    q, k, v = cache(rng, 2, 2, 4, 9000, 32, 48, np.float32)
    kv_len = np.array([9000, 4321])
    n0 = softcore.get_num_threads()
    try:
        softcore.set_num_threads(1)
        one = softcore.decode_attention(q, k, v, kv_len=kv_len)
        one_u = softcore.decode_attention(q, k, v, kv_len=kv_len, unified_max=4.0, num_splits=3)
        softcore.set_num_threads(2)
        two = softcore.decode_attention(q, k, v, kv_len=kv_len)
        two_u = softcore.decode_attention(q, k, v, kv_len=kv_len, unified_max=4.0, num_splits=3)
    finally:
        softcore.set_num_threads(n0)
    for a, b in zip(one + one_u, two + two_u):
        assert np.array_equal(a, b)


def test_keys_beyond_kv_len_are_never_read():
    rng = np.random.default_rng(2)
    q, k, v = cache(rng, 2, 1, 2, 100, 16, 8, np.float64)
    kv_len = np.array([37, 0])
    clean = softcore.decode_attention(q, k, v, kv_len=kv_len, num_splits=5)
    k[0, :, 37:] = np.nan
    v[0, :, 37:] = np.inf
    k[1], v[1] = np.nan, np.nan
    dirty = softcore.decode_attention(q, k, v, kv_len=kv_len, num_splits=5)
    assert np.array_equal(clean[0], dirty[0]) and np.array_equal(clean[1], dirty[1])
    assert np.all(dirty[0][1] == 0) and np.all(dirty[1][1] == -np.inf)


def test_shapes_layouts_and_dtypes():
    rng = np.random.default_rng(3)
    # q (..., d) with k (..., s, d): one head per batch entry.
    q = rng.standard_normal((3, 8))
    k = rng.standard_normal((3, 50, 8))
    v = rng.standard_normal((3, 50, 5))
    out, lse = softcore.decode_attention(q, k, v, kv_len=np.array([50, 1, 20]))
    want, wlse = ref.decode_attention(q, k, v, kv_len=np.array([50, 1, 20]))
    check(out, lse, want, wlse, np.float64)
    # A single query, 1-D.
    out, lse = softcore.decode_attention(q[0], k[0], v[0], scale=0.3)
    want, wlse = ref.decode_attention(q[0], k[0], v[0], scale=0.3)
    check(out, lse, want, wlse, np.float64)
    # Strided caches (a view into a larger buffer) and float16.
    big = rng.standard_normal((2, 3, 64, 16)).astype(np.float32)
    kk, vv = big[:, :, ::2], big[:, :, 1::2, ::2]
    qq = rng.standard_normal((2, 3, 16)).astype(np.float32)
    out, lse = softcore.decode_attention(qq, kk, vv)
    want, wlse = ref.decode_attention(qq, kk, vv)
    check(out, lse, want, wlse, np.float32)
    h = softcore.decode_attention(qq.astype(np.float16), kk.astype(np.float16), vv)
    assert h[0].dtype == np.float16 and h[1].dtype == np.float16
    assert rel(h[0], want) < 3e-3


def test_caches_sliced_along_s_broadcast_and_reversed_heads():
    rng = np.random.default_rng(6)
    cache_k = rng.standard_normal((2, 3, 100, 16))
    cache_v = rng.standard_normal((2, 3, 100, 8))
    q = rng.standard_normal((2, 6, 16))
    views = [
        (cache_k[:, :, :40], cache_v[:, :, :40]),  # each head's rows contiguous: borrowed
        (cache_k[:, ::-1, 10:50], cache_v[:, ::-1, 10:50]),  # heads reversed
        (np.broadcast_to(cache_k[:1], cache_k.shape), np.broadcast_to(cache_v[:1], cache_v.shape)),
        (cache_k[..., ::-1], cache_v[..., ::-1]),  # not contiguous rows: copied
    ]
    for k, v in views:
        out, lse = softcore.decode_attention(q, k, v, num_splits=3)
        want, wlse = ref.decode_attention(q, k, v)
        check(out, lse, want, wlse, np.float64)


def test_matches_softmax_attention_with_one_query():
    rng = np.random.default_rng(4)
    q, k, v = cache(rng, 2, 2, 2, 300, 32, 32, np.float32)
    out, lse = softcore.decode_attention(q, k, v, num_splits=4)
    o2, l2 = softcore.softmax_attention(q[..., None, :], k, v, return_lse=True)
    assert rel(out, o2[..., 0, :]) < 1e-6 and rel(lse, l2[..., 0]) < 1e-6


def test_errors_name_the_argument():
    q, k, v = np.ones((2, 4)), np.ones((2, 3, 4)), np.ones((2, 3, 5))
    cases = [
        (dict(q=np.ones((2, 4)), k=np.ones((3, 4)), v=np.ones((3, 5))), ValueError, "q must be"),
        (dict(q=q, k=np.ones((2, 3, 5)), v=v), ValueError, "k's last dim"),
        (dict(q=q, k=k, v=np.ones((2, 4, 5))), ValueError, "sequence length"),
        (dict(q=np.ones((3, 2, 4)), k=np.ones((3, 2, 3, 4)), v=np.ones((3, 2, 3, 5))), None, ""),
        (dict(q=np.ones((3, 4)), k=np.ones((2, 3, 4)), v=np.ones((2, 3, 5))), ValueError, "heads"),
        (dict(q=q, k=k, v=v, kv_len=4), ValueError, "kv_len"),
        (dict(q=q, k=k, v=v, kv_len=-1), ValueError, "kv_len"),
        (dict(q=q, k=k, v=v, kv_len=np.array([1, 2, 3])), ValueError, "kv_len"),
        (dict(q=q, k=k, v=v, kv_len=np.array([1.0, 2.0])), TypeError, "kv_len"),
        (dict(q=q, k=k, v=v, num_splits=0), ValueError, "num_splits"),
        (dict(q=q, k=k, v=v, num_splits=1.5), TypeError, "num_splits"),
        (dict(q=q, k=k, v=v, unified_max=float("nan")), ValueError, "unified_max"),
        (dict(q=q, k=k, v=v, scale=float("inf")), ValueError, "scale"),
        (dict(q=np.full((2, 4), np.nan), k=k, v=v), ValueError, "q contains"),
        (dict(q=q.astype(int), k=k, v=v), TypeError, "dtype"),
        (dict(q=q, k=k.astype(complex), v=v), TypeError, "k"),
    ]
    for kw, exc, msg in cases:
        if exc is None:
            softcore.decode_attention(**kw)
            continue
        with pytest.raises(exc, match=msg):
            softcore.decode_attention(**kw)
    # Splits beyond any size are empty splits, not an error.
    out, _ = softcore.decode_attention(q, k, v, num_splits=2**70)
    assert np.allclose(out, 1.0)
