"""pinv / pinv_backward against float64 SVD and finite differences."""

import numpy as np
import pytest
import softcore
from hypothesis import given
from hypothesis import strategies as st
from softcore import reference as ref


def rel(a, b):
    nb = np.linalg.norm(b)
    return np.linalg.norm(np.asarray(a, np.float64) - b) / (nb if nb else 1.0)


def gaussian_landmarks(rng, batch, m, d=32, scale=0.25):
    lm = scale * rng.standard_normal((batch, m, d))
    sq = ((lm[:, :, None, :] - lm[:, None, :, :]) ** 2).sum(-1)
    return np.exp(-np.maximum(sq, 0) / 2)


def matrices(rng):
    """Named test matrices: SOFT-like, softmax (Nyström), rectangular, rank-deficient, ..."""
    out = {
        "gaussian": gaussian_landmarks(rng, 4, 49),
        "gaussian_wide": gaussian_landmarks(rng, 2, 64, scale=0.15),
        "random_tall": rng.standard_normal((3, 9, 5)),
        "random_wide": rng.standard_normal((3, 5, 9)),
        "diagonal": np.diag(rng.uniform(0.5, 3.0, 7))[None],
        "identity": np.eye(6)[None],
    }
    q = rng.standard_normal((3, 16, 8))
    s = q @ np.swapaxes(q, -1, -2) / np.sqrt(8)
    e = np.exp(s - s.max(-1, keepdims=True))
    out["softmax"] = e / e.sum(-1, keepdims=True)
    dup = rng.standard_normal((2, 6, 6))
    dup[:, 5] = dup[:, 4]
    out["duplicated_rows"] = dup
    return out


@pytest.mark.parametrize("order", [2, 3])
def test_pinv_matches_svd(order):
    rng = np.random.default_rng(0)
    for name, a in matrices(rng).items():
        cond = np.linalg.cond(a).max()
        want = ref.pinv(a)
        got64, info = softcore.pinv(a, order=order, return_info=True)
        assert got64.dtype == np.float64 and got64.shape == want.shape
        assert rel(got64, want) <= max(1e-10, 1e-14 * cond**2), (name, rel(got64, want), cond)
        assert np.all(info.converged), name
        if cond < 1e4:
            got32 = softcore.pinv(a.astype(np.float32), order=order)
            assert got32.dtype == np.float32
            assert rel(got32, want) <= max(1e-4, 1e-7 * cond**2), (name, rel(got32, want), cond)


def test_pinv_condition_range_soft_like():
    rng = np.random.default_rng(1)
    for scale in [0.1, 0.25, 0.5, 1.0]:
        a = gaussian_landmarks(rng, 8, 49, scale=scale)
        cond = np.linalg.cond(a).max()
        if cond > 1e3:
            continue
        got = softcore.pinv(a.astype(np.float32))
        assert rel(got, ref.pinv(a)) <= 1e-4, (scale, cond)


def spd_with_condition(rng, n, cond, dtype):
    """Exactly symmetric SPD matrix with the given condition number."""
    qm, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = (qm * np.geomspace(1.0, 1.0 / cond, n)) @ qm.T
    a = ((a + a.T) / 2).astype(dtype)
    return np.triu(a) + np.triu(a, 1).T


@pytest.mark.parametrize("order", [2, 3])
def test_pinv_spd_direct_start(order):
    """SPD input starts from the Cholesky inverse: one or two steps, same accuracy."""
    rng = np.random.default_rng(5)
    for cond in [1.0, 1e2, 1e4, 1e6]:
        a = spd_with_condition(rng, 40, cond, np.float64)
        got, info = softcore.pinv(a[None], order=order, return_info=True)
        assert info.converged[0] and info.iterations[0] <= 2, (cond, info.iterations)
        assert rel(got[0], ref.pinv(a)) <= max(1e-10, 1e-15 * cond), cond
    a32 = spd_with_condition(rng, 40, 1e3, np.float32)
    got, info = softcore.pinv(a32, order=order, return_info=True)
    assert info.converged and info.iterations <= 2
    assert rel(got, ref.pinv(a32.astype(np.float64))) <= 1e-4


def test_pinv_spd_near_singular_falls_back():
    """Condition ~1/eps: the rounded Cholesky inverse is outside the region of convergence,
    so the iteration restarts from I/||A||_inf; the result stays finite and a stable iterate."""
    rng = np.random.default_rng(6)
    a = spd_with_condition(rng, 30, 1e9, np.float32)
    got, info = softcore.pinv(a, return_info=True)
    assert np.all(np.isfinite(got))
    assert info.iterations > 2
    # The large singular directions are inverted: A P A ~ A in the leading part.
    apa = a.astype(np.float64) @ got @ a.astype(np.float64)
    assert np.linalg.norm(apa - a) <= 1e-2 * np.linalg.norm(a)


@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 3), st.integers(0, 2**31))
def test_pinv_property_random(m, n, batch, seed):
    a = np.random.default_rng(seed).standard_normal((batch, m, n))
    p = softcore.pinv(a)
    assert p.shape == (batch, n, m)
    if batch:
        # Penrose conditions hold to rounding (no condition-number assumption on A A^+ A = A).
        assert np.allclose(
            a @ p @ a, a, atol=1e-8 * max(1.0, np.abs(a).max()) * np.linalg.cond(a).max()
        )


def test_pinv_fixed_iterations_and_info():
    a = gaussian_landmarks(np.random.default_rng(2), 3, 20)
    p, info = softcore.pinv(a, iters=20, return_info=True)
    assert np.all(info.iterations == 20) and info.step.shape == (3,)
    p0 = softcore.pinv(a, iters=0)
    scale = np.abs(a).sum(-2).max(-1) * np.abs(a).sum(-1).max(-1)
    np.testing.assert_allclose(p0, np.swapaxes(a, -1, -2) / scale[:, None, None])


def test_pinv_ridge_zero_empty_errors():
    rng = np.random.default_rng(3)
    a = gaussian_landmarks(rng, 2, 10)
    assert rel(softcore.pinv(a, ridge=0.01), ref.pinv(a, ridge=0.01)) < 1e-10
    np.testing.assert_array_equal(softcore.pinv(np.zeros((2, 3, 4))), np.zeros((2, 4, 3)))
    assert softcore.pinv(np.zeros((0, 3, 3))).shape == (0, 3, 3)
    bad = a.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        softcore.pinv(bad)
    with pytest.raises(ValueError, match="order"):
        softcore.pinv(a, order=4)
    with pytest.raises(ValueError, match="iters"):
        softcore.pinv(a, iters=-1)
    with pytest.raises(ValueError, match="tol"):
        softcore.pinv(a, tol=0.0)
    with pytest.raises(ValueError, match="dimensions"):
        softcore.pinv(np.ones(3))
    with pytest.raises(TypeError, match="int64"):
        softcore.pinv(np.ones((2, 2), dtype=np.int64))


def test_pinv_any_layout():
    a = np.asfortranarray(np.random.default_rng(4).standard_normal((5, 7)))
    assert rel(softcore.pinv(a), ref.pinv(a)) < 1e-12
    assert rel(softcore.pinv(a[::-1, ::2]), ref.pinv(a[::-1, ::2])) < 1e-12


@pytest.mark.parametrize(
    "shape,rankdef",
    [((5, 5), False), ((6, 4), False), ((4, 6), False), ((5, 5), True), ((6, 4), True)],
)
def test_pinv_backward_matches_finite_differences(shape, rankdef):
    rng = np.random.default_rng(5)
    m, n = shape
    if rankdef:
        # pinv is differentiable only along paths of constant rank: A(t) = (u + t du)(v + t dv)
        # stays rank 2, and its derivative at 0 is du v + u dv.
        u, v = rng.standard_normal((m, 2)), rng.standard_normal((2, n))
        a = u @ v
    else:
        a = rng.standard_normal(shape)
    p = ref.pinv(a)
    g = rng.standard_normal((n, m))
    grad = softcore.pinv_backward(a, p, g)
    np.testing.assert_allclose(grad, ref.pinv_backward(a, p, g), rtol=1e-10, atol=1e-10)
    h = 1e-6
    for _ in range(6):
        if rankdef:
            du, dv = rng.standard_normal((m, 2)), rng.standard_normal((2, n))
            d = du @ v + u @ dv
            plus, minus = (u + h * du) @ (v + h * dv), (u - h * du) @ (v - h * dv)
        else:
            d = rng.standard_normal(shape)
            plus, minus = a + h * d, a - h * d
        fd = (np.sum(g * ref.pinv(plus)) - np.sum(g * ref.pinv(minus))) / (2 * h)
        assert abs(np.sum(grad * d) - fd) <= 1e-5 * max(1.0, abs(fd)), (np.sum(grad * d), fd)


def test_pinv_backward_errors_and_dtypes():
    a = np.random.default_rng(6).standard_normal((2, 4, 3))
    p = ref.pinv(a)
    with pytest.raises(ValueError, match="grad"):
        softcore.pinv_backward(a, p, np.ones((2, 4, 3)))
    with pytest.raises(TypeError, match="dtype"):
        softcore.pinv_backward(a, p.astype(np.float32), p)
    g32 = softcore.pinv_backward(*(x.astype(np.float32) for x in (a, p, p)))
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, ref.pinv_backward(a, p, p), rtol=1e-4, atol=1e-4)
