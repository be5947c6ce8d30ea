"""tensor_attention: the exact streaming path and the polynomial approximation."""

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


def inputs(rng, n, s1, s2, d, dv, dtype, heads=(1, 1), mag=1.0):
    q = (rng.standard_normal((heads[0], n, d)) * mag).astype(dtype)
    k1 = (rng.standard_normal((heads[1], s1, d)) * mag).astype(dtype)
    k2 = (rng.standard_normal((heads[1], s2, d)) * mag).astype(dtype)
    v1 = rng.standard_normal((heads[1], s1, dv)).astype(dtype)
    v2 = rng.standard_normal((heads[1], s2, dv)).astype(dtype)
    return q, k1, k2, v1, v2


@given(
    n=st.integers(1, 40),
    s1=st.integers(1, 80),
    s2=st.integers(1, 300),
    d=st.integers(1, 20),
    dv=st.integers(1, 12),
    heads=st.sampled_from([(1, 1), (2, 1), (2, 2)]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_exact_matches_reference(n, s1, s2, d, dv, heads, dtype, seed):
    x = inputs(np.random.default_rng(seed), n, s1, s2, d, dv, dtype, heads, mag=1.5)
    out = softcore.tensor_attention(*x)
    want = ref.tensor_attention(*x)
    assert out.dtype == dtype and out.shape == want.shape
    # Relative to the weighted sum of |v1 o v2|: where the output is a cancellation of O(1)
    # terms (n = 1, d = 1 draws), its own norm says nothing about the arithmetic. Plus the
    # rounding of the logits themselves (up to ~90 for d = 1 draws): eps |x| relative per weight.
    scale = ref.tensor_attention(*x[:3], np.abs(x[3]), np.abs(x[4]))
    q, k1, k2 = (np.asarray(a, np.float64) for a in x[:3])
    logit = d**-0.5 * np.abs(q).max() * np.abs(k1).max() * np.abs(k2).max() * d
    tol = TOL[dtype] + 2 * float(np.finfo(dtype).eps) * logit
    assert np.linalg.norm(out - want) <= tol * np.linalg.norm(scale)


@given(
    n=st.integers(1, 60),
    extra=st.integers(0, 20),
    w1=st.one_of(st.none(), st.integers(1, 30)),
    w2=st.integers(1, 30),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_causal_and_windows(n, extra, w1, w2, dtype, seed):
    s = n + extra
    x = inputs(np.random.default_rng(seed), n, s, s, 8, 5, dtype)
    windows = None if w1 is None else (w1, w2)
    out = softcore.tensor_attention(*x, causal=True, windows=windows)
    want = ref.tensor_attention(*x, causal=True, windows=windows)
    assert rel(out, want) <= TOL[dtype]


def test_polynomial_error_falls_with_degree_on_bounded_inputs():
    rng = np.random.default_rng(0)
    x = inputs(rng, 30, 40, 50, 4, 3, np.float64, mag=0.4)
    exact = softcore.tensor_attention(*x)
    np.testing.assert_allclose(exact, ref.tensor_attention(*x), rtol=1e-12, atol=1e-13)
    errs = [rel(softcore.tensor_attention(*x, degree=g), exact) for g in range(0, 9)]
    assert all(b < a for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 1e-8
    # The documented bound: B = max |x_ijl|.
    q, k1, k2, v1, v2 = x
    b = np.abs(np.einsum("hic,hjc,hlc->hijl", q, k1, k2)).max() / 2.0
    for g in range(len(errs)):
        eps = b ** (g + 1) * np.exp(b) / np.prod(np.arange(1, g + 2))
        got = softcore.tensor_attention(*x, degree=g)
        bound = 2 * eps / (1 - eps) * np.abs(np.einsum("hjc,hlc->hjlc", v1, v2)).max()
        if eps < 1:
            assert np.abs(got - exact).max() <= bound


def test_odd_degree_non_positive_normaliser_is_an_error():
    q = np.full((1, 1), -30.0)
    k = np.ones((2, 1))
    with pytest.raises(ValueError, match="normaliser is not positive"):
        softcore.tensor_attention(q, k, k, k, k, degree=1, scale=1.0)
    # Even degrees stay positive.
    assert np.isfinite(softcore.tensor_attention(q, k, k, k, k, degree=2, scale=1.0)).all()


def test_errors():
    q, k, v = np.ones((3, 4)), np.ones((5, 4)), np.ones((5, 2))
    f = softcore.tensor_attention
    with pytest.raises(ValueError, match="k2"):
        f(q, k, np.ones((5, 3)), v, v)
    with pytest.raises(ValueError, match="one length"):
        f(q, k, np.ones((6, 4)), v, np.ones((6, 2)), causal=True)
    with pytest.raises(ValueError, match="non-causal"):
        f(q, k, k, v, v, causal=True, degree=2)
    with pytest.raises(ValueError, match="windows"):
        f(q, k, k, v, v, windows=(0, 3))
    with pytest.raises(TypeError, match="windows"):
        f(q, k, k, v, v, windows=3)
    with pytest.raises(ValueError, match="features"):
        f(np.ones((3, 64)), np.ones((5, 64)), np.ones((5, 64)), v, v, degree=5)
    with pytest.raises(ValueError, match="v2 contains"):
        f(q, k, k, v, np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="degree"):
        f(q, k, k, v, v, degree=-1)
    for huge in (2**70, 2**21):
        with pytest.raises(ValueError, match="features"):
            f(np.ones((3, 1)), np.ones((5, 1)), np.ones((5, 1)), v, v, degree=huge)
    assert f(q.astype(np.float16), k, k, v, v).dtype == np.float16
    # Nothing visible (causal with n > s): rows of 0.
    out = f(np.ones((4, 4)), np.ones((2, 4)), np.ones((2, 4)), v[:2], v[:2], causal=True)
    assert np.all(out[:2] == 0) and np.allclose(out[2:], 1.0)
