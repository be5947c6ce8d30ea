"""SOFT attention against the float64 reference."""

import numpy as np
import pytest
import softcore
from hypothesis import given
from hypothesis import strategies as st
from softcore import reference as ref


def rel(a, b):
    return np.linalg.norm(np.asarray(a, np.float64) - b) / max(np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("normalize", [False, True])
def test_soft_matches_reference(normalize):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 3, 100, 16)) * 16**-0.25
    v = rng.standard_normal((2, 3, 100, 8))
    for lm in (None, rng.standard_normal((10, 16)) * 0.3, rng.standard_normal((2, 3, 7, 16)) * 0.3):
        got = softcore.soft_attention(q, v, lm, num_landmarks=12, normalize=normalize)
        want = ref.soft_attention(q, v, lm, num_landmarks=12, normalize=normalize)
        assert got.shape == (2, 3, 100, 8)
        assert rel(got, want) < 1e-8
        got32 = softcore.soft_attention(
            q.astype(np.float32),
            v.astype(np.float32),
            None if lm is None else lm.astype(np.float32),
            num_landmarks=12,
            normalize=normalize,
        )
        assert got32.dtype == np.float32 and rel(got32, want) < 2e-3


def test_landmarks_equal_tokens_is_exact():
    # K pinv(K) K v = K v when the landmarks are the tokens themselves.
    rng = np.random.default_rng(1)
    q = rng.standard_normal((20, 4)) * 0.8
    v = rng.standard_normal((20, 3))
    got = softcore.soft_attention(q, v, landmarks=q)
    want = ref.gaussian_kernel(q, q) @ v
    assert rel(got, want) < 1e-6


@given(st.integers(1, 40), st.integers(1, 8), st.integers(1, 60), st.integers(0, 2**31))
def test_soft_property(n, d, num_landmarks, seed):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n, d)) * 0.5
    v = rng.standard_normal((n, 2))
    got = softcore.soft_attention(q, v, num_landmarks=num_landmarks, ridge=0.01)
    want = ref.soft_attention(q, v, num_landmarks=num_landmarks, ridge=0.01)
    assert rel(got, want) < 1e-6


def test_soft_errors():
    q = np.zeros((5, 4))
    with pytest.raises(ValueError, match="num_landmarks"):
        softcore.soft_attention(q, q, num_landmarks=0)
    with pytest.raises(ValueError):
        softcore.soft_attention(q, np.zeros((6, 4)))
    with pytest.raises(ValueError, match="landmarks"):
        softcore.soft_attention(q, q, landmarks=np.zeros((3, 5)))
    with pytest.raises(TypeError, match="dtype"):
        softcore.soft_attention(q, q.astype(np.float32))
    bad = q.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN"):
        softcore.soft_attention(bad, q)
    assert softcore.soft_attention(np.zeros((0, 4)), np.zeros((0, 2))).shape == (0, 2)
