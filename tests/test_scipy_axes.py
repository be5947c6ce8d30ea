"""SciPy's axis forms for the softmax family: axis=None and tuples of axes, logsumexp's
keepdims and weights b with return_sign, against scipy.special on every layout and dtype."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sp
import softcore
from helpers import arrays
from hypothesis import given
from hypothesis import strategies as st


@st.composite
def axis_forms(draw, ndim):
    """None, an int, or a tuple of distinct axes (any order, negative allowed, maybe empty)."""
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    axes = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    return tuple(a - ndim if draw(st.booleans()) else a for a in axes)


def tol(dtype):
    return {np.float16: 3e-3, np.float32: 3e-6, np.float64: 1e-12}[np.dtype(dtype).type]


def close(got, want, dtype):
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape
    fin = np.isfinite(want)
    np.testing.assert_array_equal(np.isfinite(got), fin)
    np.testing.assert_allclose(got[fin], want[fin], rtol=tol(dtype), atol=tol(dtype))


@given(st.data())
def test_softmax_and_log_softmax_over_axis_forms(data):
    x = data.draw(arrays(magnitude=3.0, max_dims=4, max_side=8))
    axis = data.draw(axis_forms(x.ndim))
    x64 = x.astype(np.float64)
    if x.size == 0:  # SciPy's max has no identity; softcore returns the empty shape
        assert softcore.softmax(x, axis=axis).shape == x.shape
        return
    close(softcore.softmax(x, axis=axis), sp.softmax(x64, axis=axis), x.dtype)
    close(softcore.log_softmax(x, axis=axis), sp.log_softmax(x64, axis=axis), x.dtype)
    assert softcore.softmax(x, axis=axis).dtype == x.dtype


@given(st.data())
def test_logsumexp_over_axis_forms_with_keepdims(data):
    x = data.draw(arrays(magnitude=3.0, max_dims=4, max_side=8))
    axis = data.draw(axis_forms(x.ndim))
    keepdims = data.draw(st.booleans())
    if x.size == 0:
        return  # SciPy raises on empty inputs; test_edges_and_errors covers softcore's -inf
    want = sp.logsumexp(x.astype(np.float64), axis=axis, keepdims=keepdims)
    got = softcore.logsumexp(x, axis=axis, keepdims=keepdims)
    close(got, want, x.dtype)


@given(st.data())
def test_logsumexp_weights_and_sign(data):
    x = data.draw(arrays(dtype=np.float64, magnitude=3.0, max_dims=3, max_side=6))
    axis = data.draw(axis_forms(x.ndim))
    if x.size == 0:
        return
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    b = rng.standard_normal(x.shape)
    b[rng.random(x.shape) < 0.2] = 0.0
    if data.draw(st.booleans()) and x.ndim:
        b = b[..., :1]  # broadcast along the last axis
    want, wsign = sp.logsumexp(x, axis=axis, b=b, return_sign=True)
    got, sign = softcore.logsumexp(x, axis=axis, b=b, return_sign=True)
    close(got, want, x.dtype)
    np.testing.assert_array_equal(sign, wsign)
    # Without return_sign a negative sum is NaN, as SciPy.
    plain = softcore.logsumexp(x, axis=axis, b=b)
    np.testing.assert_array_equal(np.isnan(plain), np.isnan(np.where(wsign < 0, np.nan, want)))


def test_edges_and_errors():
    x = np.arange(6.0).reshape(2, 3)
    assert softcore.softmax(np.float64(3.0), axis=None) == 1.0
    assert softcore.logsumexp(np.zeros((0, 3)), axis=None) == -np.inf
    _, sign = softcore.logsumexp(np.zeros((0, 3)), axis=None, return_sign=True)
    assert sign == 0
    r, s = softcore.logsumexp(x, axis=1, return_sign=True)
    np.testing.assert_array_equal(s, [1.0, 1.0])
    big = softcore.softmax(x.astype(">f4"), axis=None)  # big-endian input, native result
    np.testing.assert_allclose(big, sp.softmax(x, axis=None), rtol=3e-6)
    o = np.empty_like(x)
    assert softcore.softmax(x, axis=(0, 1), out=o) is o
    np.testing.assert_allclose(o, sp.softmax(x, axis=None), rtol=1e-12)
    np.testing.assert_allclose(
        softcore.logsumexp(x, axis=(0, 1), where=x > 1), sp.logsumexp(x[x > 1]), rtol=1e-12
    )
    with pytest.raises(ValueError, match="axis 2 is out of bounds"):
        softcore.softmax(x, axis=(0, 2))
    with pytest.raises(ValueError, match="axis: repeated axis 1"):
        softcore.log_softmax(x, axis=(1, -1))
    with pytest.raises(ValueError, match="axis .* is out of bounds"):
        softcore.logsumexp(x, axis=2**70)
    for bad in (1.5, [0, 1], "0", True):
        with pytest.raises(TypeError, match="axis must be an int, a tuple of ints or None"):
            softcore.softmax(x, axis=bad)
    with pytest.raises(TypeError, match="b has unsupported dtype"):
        softcore.logsumexp(x, b=np.ones(3, complex))
    with pytest.raises(ValueError, match="b has shape"):
        softcore.logsumexp(x, b=np.ones(4))
