"""Finite inputs whose intermediate values leave the dtype's range: an answer that is right, or
a ValueError naming the arguments, never NaN or a row that looks masked."""

import numpy as np
import pytest
import softcore
from numpy.lib.stride_tricks import as_strided


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_exact_attention_overflowing_scores_raise(dt, sign):
    big = 1e20 if dt == np.float32 else 1e160
    q = np.full((1, 3, 4), big, dt)
    k = np.full((1, 5, 4), sign * big, dt)
    v = np.ones((1, 5, 2), dt)
    with pytest.raises(ValueError, match=r"softmax_attention: scale \* q\.k overflows .* q and k"):
        softcore.softmax_attention(q, k, v)


def test_exact_attention_masked_rows_with_large_inputs_are_not_overflow():
    # Rows with nothing visible keep 0 / -inf even when the inputs are large; the visible
    # rows' scores fit.
    q = np.full((1, 2, 4), 1e18, np.float32)
    k = np.full((1, 3, 4), 1e-18, np.float32)
    mask = np.array([[False] * 3, [True] * 3])
    out, lse = softcore.softmax_attention(q, k, np.ones((1, 3, 2), np.float32), mask=mask,
                                          return_lse=True)  # fmt: skip
    assert lse[0, 0] == -np.inf and np.isfinite(lse[0, 1])
    np.testing.assert_array_equal(out[0, 0], 0.0)
    np.testing.assert_allclose(out[0, 1], 1.0)


@pytest.mark.parametrize("num_splits", [1, 3])
def test_decode_overflowing_scores_raise(num_splits):
    q = np.full((2, 4), 1e20, np.float32)
    k = np.full((2, 6, 4), -1e20, np.float32)
    with pytest.raises(ValueError, match="decode_attention: scale \\* q.k overflows float32"):
        softcore.decode_attention(q, k, np.ones((2, 6, 3), np.float32), num_splits=num_splits)


@pytest.mark.parametrize("num_splits", [1, 2, 5])
@pytest.mark.parametrize("at", [0, 3, 8])
def test_decode_nan_key_gives_a_nan_row(num_splits, at):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 4)).astype(np.float32)
    k = rng.standard_normal((2, 9, 4)).astype(np.float32)
    v = rng.standard_normal((2, 9, 3)).astype(np.float32)
    k[0, at, 1] = np.nan
    out, lse = softcore.decode_attention(q, k, v, num_splits=num_splits)
    assert np.isnan(out[0]).all() and np.isnan(lse[0])
    assert np.isfinite(out[1]).all() and np.isfinite(lse[1])
    # Beyond kv_len the NaN is never read.
    out, lse = softcore.decode_attention(q, k, v, num_splits=num_splits, kv_len=at)
    assert np.isfinite(out).all()


def test_agent_and_tensor_attention_refuse_overflowing_scores():
    q = np.full((8, 4), 1e20, np.float32)
    with pytest.raises(ValueError, match="agent_attention: .* overflows float32 .* q, k and"):
        softcore.agent_attention(q, q, q, num_agents=2)
    with pytest.raises(ValueError, match="tensor_attention: .* overflows float32 .* q, k1 and"):
        softcore.tensor_attention(q, q, q, q, q)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("which", ["agent_bias", "query_bias"])
def test_agent_bias_nan_or_plus_inf_is_refused(bad, which):
    q = np.ones((6, 4))
    shape = (2, 6) if which == "agent_bias" else (6, 2)
    b = np.zeros(shape)
    b[1, 1] = bad
    with pytest.raises(ValueError, match=f"agent_attention: {which} contains NaN or \\+inf"):
        softcore.agent_attention(q, q, q, num_agents=2, **{which: b})
    b[1, 1] = -np.inf  # masks one entry out
    assert np.isfinite(softcore.agent_attention(q, q, q, num_agents=2, **{which: b})).all()


def test_agent_pool_mean_of_values_near_float64_max():
    x = np.full((4, 2), 1.5e308)
    np.testing.assert_allclose(softcore.agent_pool(x, 1), [[1.5e308, 1.5e308]], rtol=1e-15)


def test_softmax_regression_scores_beyond_float64():
    rng = np.random.default_rng(1)
    a0, x0 = rng.standard_normal((5, 3)), rng.standard_normal(3)
    b = rng.random(5)
    a, x = a0 * 2.0**600, x0 * 2.0**500  # a @ x = (a0 @ x0) 2**1100: a one-hot softmax
    loss, grad, hess = softcore.softmax_regression(a, b, x, hessian=True)
    f = np.eye(5)[np.argmax(a0 @ x0)]
    assert loss == pytest.approx(0.5 * np.sum((f - b) ** 2), rel=1e-12)
    np.testing.assert_array_equal(grad, 0.0)  # f one-hot: f o c - <f, c> f = 0
    assert not np.isnan(hess).any()


def test_softmax_regression_reads_a_broadcast_a_without_copying_it():
    # 2**24 x 64 float64 is 8 GiB as a copy; read row by row it needs only the (n,) scores.
    n, d = 2**24, 64
    a = as_strided(np.full(1, 0.5), (n, d), (0, 0))
    loss, grad = softcore.softmax_regression(a, np.zeros(n), np.ones(d))
    assert loss == pytest.approx(0.5 / n, rel=1e-9)
    assert np.isfinite(grad).all()


@pytest.mark.parametrize("t", [1e-300, 1e-30])
def test_top_k_gating_small_temperature_with_large_logits(t):
    logits = np.array([[1e308, -1e308, 5e307, 1e308]])
    w, idx = softcore.top_k_gating(logits, 2, temperature=t)
    assert np.isfinite(w).all() and w.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(np.sort(idx[0]), [0, 3])
