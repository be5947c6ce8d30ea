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


# Sizes around the kernel's blocks: tiles of 3 vectors of tokens (48 f32 / 24 f64 on AVX-512,
# 32 / 16 on AVX2), landmark blocks of 7 (3), column blocks of 2 vectors, expansion blocks of 12
# (6) tokens, transposes of LANES x LANES.
EDGE_N = [1, 2, 5, 6, 7, 8, 11, 12, 13, 15, 16, 17, 23, 24, 25, 31, 32, 33, 47, 48, 49, 97, 130]
EDGE_D = [1, 3, 4, 7, 8, 9, 15, 16, 17, 32, 33]
EDGE_DV = [1, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 65]
EDGE_L = [1, 2, 3, 4, 6, 7, 8, 13, 14, 15, 21, 22, 49, 50]


@given(
    st.sampled_from(EDGE_N),
    st.sampled_from(EDGE_D),
    st.sampled_from(EDGE_DV),
    st.sampled_from(EDGE_L),
    st.sampled_from([np.float32, np.float64]),
    st.booleans(),
    st.integers(0, 2**31),
)
def test_soft_block_edges(n, d, dv, nl, dtype, normalize, seed):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n, d)) * 0.5
    v = rng.standard_normal((n, dv))
    lm = rng.standard_normal((nl, d)) * 0.5
    # A ridge keeps K(L, L) well conditioned whatever the draw (the kernel is under test here,
    # not the pseudo-inverse of near-singular matrices).
    want = ref.soft_attention(q, v, lm, ridge=0.1, normalize=normalize)
    got = softcore.soft_attention(
        q.astype(dtype), v.astype(dtype), lm.astype(dtype), ridge=0.1, normalize=normalize
    )
    assert got.shape == (n, dv) and got.dtype == dtype
    assert rel(got, want) < (2e-4 if dtype == np.float32 else 1e-9)


@pytest.mark.parametrize("where", ["q", "v"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("pos", [(0, 0), (48, 31), (96, 5), (99, 0), (99, 31)])
def test_soft_non_finite_anywhere(where, value, pos):
    # The kernel detects bad input from row norms (q) and from K^T v (v), not a separate scan:
    # every position, including the last token of a partial tile, must still be caught.
    rng = np.random.default_rng(2)
    for dtype in (np.float32, np.float64):
        q = (rng.standard_normal((100, 32)) * 0.3).astype(dtype)
        v = rng.standard_normal((100, 32)).astype(dtype)
        (q if where == "q" else v)[pos] = value
        with pytest.raises(ValueError, match="NaN or infinity"):
            softcore.soft_attention(q, v, num_landmarks=7)


def test_soft_far_values_are_not_errors():
    # Finite but large inputs: the kernel underflows to 0 (no false "NaN" error), v of 1e30
    # stays finite through K^T v.
    q = np.zeros((50, 4))
    q[10] = 1e3
    v = np.full((50, 3), 1e30)
    out = softcore.soft_attention(q, v, landmarks=np.zeros((2, 4)), ridge=0.1)
    assert np.isfinite(out).all()


def test_soft_layouts_and_threads():
    rng = np.random.default_rng(3)
    q = rng.standard_normal((3, 130, 33)).astype(np.float32) * 0.4
    v = rng.standard_normal((3, 130, 17)).astype(np.float32)
    want = softcore.soft_attention(q, v, num_landmarks=9)
    qf = np.asfortranarray(q)
    vr = np.ascontiguousarray(v[:, ::-1])[:, ::-1]  # negative strides
    np.testing.assert_array_equal(softcore.soft_attention(qf, vr, num_landmarks=9), want)
    wide = np.zeros((3, 260, 66), np.float32)
    wide[:, ::2, ::2] = q
    np.testing.assert_array_equal(
        softcore.soft_attention(wide[:, ::2, ::2], v, num_landmarks=9), want
    )
    before = softcore.get_num_threads()
    try:
        for t in (1, 2, 3):
            softcore.set_num_threads(t)
            np.testing.assert_array_equal(softcore.soft_attention(q, v, num_landmarks=9), want)
    finally:
        softcore.set_num_threads(before)


def test_soft_f32_segment_means_at_model_scale():
    # Segment-mean landmarks make K(L, L) ill-conditioned (~1e4 here); its inverse is formed
    # in float64, so float32 output keeps float32 accuracy rather than cond * eps32.
    rng = np.random.default_rng(5)
    q = (rng.standard_normal((2, 2048, 32)) * 32**-0.25).astype(np.float32)
    v = rng.standard_normal((2, 2048, 32)).astype(np.float32)
    got = softcore.soft_attention(q, v, num_landmarks=49)
    lm = ref.segment_means(q, 49).astype(np.float32)  # the landmarks softcore forms in f32
    want = ref.soft_attention(q, v, lm)
    assert rel(got, want) < 1e-4


def test_soft_singular_landmark_matrix():
    # Duplicated landmarks: K(L, L) is singular and its pseudo-inverse comes from Newton-Schulz.
    rng = np.random.default_rng(6)
    q = rng.standard_normal((50, 8)) * 0.5
    v = rng.standard_normal((50, 3))
    lm = rng.standard_normal((6, 8)) * 0.3
    lm[3] = lm[1]
    got = softcore.soft_attention(q, v, lm)
    want = ref.soft_attention(q, v, lm)
    assert rel(got, want) < 1e-6


def test_soft_fixed_iterations():
    # SOFT's 20 Newton-Schulz steps from the scaled-transpose start converge for these
    # condition numbers (~1e2), so the result matches the exact pseudo-inverse.
    rng = np.random.default_rng(7)
    q = rng.standard_normal((3, 64, 8)) * 0.5
    v = rng.standard_normal((3, 64, 4))
    lm = rng.standard_normal((3, 5, 8)) * 0.25
    got = softcore.soft_attention(q, v, lm, iters=20)
    want = ref.soft_attention(q, v, lm)
    assert rel(got, want) < 1e-6
