"""power_softmax and softmax_regression against their float64 references."""

import numpy as np
import pytest
import softcore
from helpers import RTOL, arrays, axes
from hypothesis import given
from hypothesis import strategies as st
from softcore import reference as ref


@given(st.data(), st.sampled_from([2, 4, 8]), st.sampled_from([0.0, 1e-3]))
def test_power_softmax_matches_reference(data, p, eps):
    x = data.draw(arrays())
    axis = data.draw(axes(x))
    masked = data.draw(st.booleans())
    where = None
    if masked:
        rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
        where = rng.random(x.shape) < 0.7
    got = softcore.power_softmax(x, p, axis, eps=eps, where=where)
    want = ref.power_softmax(x.astype(np.float64), p, axis, eps=eps, where=where)
    assert got.dtype == x.dtype and got.shape == x.shape and got.flags.c_contiguous
    rtol = RTOL[x.dtype.type]
    np.testing.assert_allclose(got, want.astype(x.dtype), rtol=rtol * 4, atol=rtol * 1e-3)


def test_power_softmax_scale_invariant_and_large():
    x = np.array([[1.0, -2.0, 3.0], [1e30, -2e30, 3e30]], np.float32)
    y = softcore.power_softmax(x, 4)
    np.testing.assert_allclose(y[0], y[1], rtol=1e-6)
    np.testing.assert_allclose(y[0], np.array([1, 16, 81]) / 98, rtol=1e-6)
    # eps: x^p / (eps + sum x^p) even when the powers overflow float32 on their own.
    z = softcore.power_softmax(np.array([1e20, 2e20], np.float32), 2, eps=1e40)
    np.testing.assert_allclose(z, [1e40 / (1e40 + 5e40), 4e40 / (1e40 + 5e40)], rtol=1e-6)


def test_power_softmax_special_rows():
    y = softcore.power_softmax(np.array([[0.0, 0.0], [1.0, np.nan], [np.inf, 1.0]]), 2)
    assert np.all(np.isnan(y))  # 0/0, NaN, inf/inf
    np.testing.assert_array_equal(softcore.power_softmax(np.zeros(3), 2, eps=0.5), 0.0)
    m = softcore.power_softmax(
        np.array([[1.0, 2.0], [3.0, 4.0]]), 2, where=[[True, False], [False, False]]
    )
    np.testing.assert_array_equal(m, [[1.0, 0.0], [0.0, 0.0]])
    assert softcore.power_softmax(np.zeros((2, 0)), 2).shape == (2, 0)


@pytest.mark.parametrize("p", [0, 3, -2, 1025])
def test_power_softmax_bad_p(p):
    with pytest.raises(ValueError, match="positive even"):
        softcore.power_softmax(np.ones(3), p)


def test_power_softmax_errors():
    with pytest.raises(ValueError, match="eps"):
        softcore.power_softmax(np.ones(3), 2, eps=-1.0)
    with pytest.raises(ValueError, match="axis"):
        softcore.power_softmax(np.ones(3), 2, axis=1)
    with pytest.raises(TypeError, match="int64"):
        softcore.power_softmax(np.ones(3, np.int64), 2)


def loss_of(a, b, x):
    return softcore.softmax_regression(a, b, x)[0]


@given(st.integers(1, 12), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_softmax_regression_matches_reference(n, d, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, d))
    b = rng.random(n)
    x = rng.standard_normal(d)
    loss, grad, hess = softcore.softmax_regression(a, b, x, hessian=True)
    rl, rg, rh = ref.softmax_regression(a, b, x, hessian=True)
    assert loss == pytest.approx(rl, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(grad, rg, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hess, rh, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(hess, hess.T, atol=1e-14)


def test_softmax_regression_finite_differences():
    rng = np.random.default_rng(7)
    a, b, x = rng.standard_normal((9, 4)), rng.random(9), rng.standard_normal(4)
    _, grad, hess = softcore.softmax_regression(a, b, x, hessian=True)
    h = 1e-5
    fd = np.array(
        [(loss_of(a, b, x + h * e) - loss_of(a, b, x - h * e)) / (2 * h) for e in np.eye(4)]
    )
    np.testing.assert_allclose(grad, fd, rtol=1e-7, atol=1e-9)
    g_of = lambda z: softcore.softmax_regression(a, b, z)[1]  # noqa: E731
    fdh = np.array([(g_of(x + h * e) - g_of(x - h * e)) / (2 * h) for e in np.eye(4)])
    np.testing.assert_allclose(hess, fdh, rtol=1e-6, atol=1e-8)


def test_softmax_regression_dtypes_and_errors():
    rng = np.random.default_rng(8)
    a, b, x = rng.standard_normal((5, 3)), rng.random(5), rng.standard_normal(3)
    r32 = softcore.softmax_regression(a.astype(np.float32), b, x, hessian=True)
    assert r32[1].dtype == np.float32 and r32[2].dtype == np.float32 and len(r32) == 3
    assert isinstance(r32[0], float) and len(softcore.softmax_regression(a, b, x)) == 2
    with pytest.raises(ValueError, match="b has shape"):
        softcore.softmax_regression(a, b[:4], x)
    with pytest.raises(ValueError, match="2-D"):
        softcore.softmax_regression(a[0], b, x)
    with pytest.raises(ValueError, match="NaN"):
        softcore.softmax_regression(a, b, np.array([np.nan, 0, 0]))
    with pytest.raises(TypeError, match="int64"):
        softcore.softmax_regression(a.astype(np.int64), b, x)


def test_power_softmax_extreme_powers_and_scales():
    r = 0.75**1024  # (0.3 / 0.4)^1024 ~ 1e-128: (1/m)^p overflows, the result does not
    got = softcore.power_softmax(np.array([0.4, 0.3]), 1024)
    np.testing.assert_allclose(got, [1 / (1 + r), r / (1 + r)], rtol=1e-12)
    y = softcore.power_softmax(np.array([1e-80, 2e-80]), 4)
    np.testing.assert_allclose(y, [1 / 17, 16 / 17])
    y32 = softcore.power_softmax(np.array([1e-30, 2e-30], np.float32), 8)
    np.testing.assert_allclose(y32, [1 / 257, 256 / 257], rtol=1e-6)
