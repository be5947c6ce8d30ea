"""moe_dispatch / moe_gather / moe_combine, the router losses and noisy_logits."""

import numpy as np
import pytest
import softcore
from hypothesis import given
from hypothesis import strategies as st
from softcore import reference as ref


@given(
    st.integers(0, 60),
    st.integers(1, 9),
    st.integers(1, 4),
    st.one_of(st.none(), st.integers(0, 20)),
    st.integers(0, 2**32 - 1),
)
def test_dispatch_invariants(t, e, k, capacity, seed):
    rng = np.random.default_rng(seed)
    k = min(k, e)
    idx = np.argsort(rng.random((t, e)), axis=-1)[:, :k]
    pos, counts = softcore.moe_dispatch(idx, e, capacity=capacity)
    rpos, rcounts = ref.moe_dispatch(idx, e, capacity=capacity)
    np.testing.assert_array_equal(pos, rpos)
    np.testing.assert_array_equal(counts, rcounts)
    assert pos.dtype == np.int64 and counts.dtype == np.int64
    np.testing.assert_array_equal(counts, np.bincount(idx.ravel(), minlength=e))
    for ex in range(e):
        kept = pos[(idx == ex) & (pos >= 0)]
        cap = counts[ex] if capacity is None else min(counts[ex], capacity)
        assert len(kept) == cap  # kept per expert = min(count, capacity)
        np.testing.assert_array_equal(np.sort(kept), np.arange(cap))  # unique slots 0..cap-1
    # Choice-major priority: a kept c-th choice means every earlier choice of that expert kept.
    if capacity is not None:
        order = [(c, r) for c in range(k) for r in range(t)]
        for ex in range(e):
            flags = [pos[r, c] >= 0 for c, r in order if idx[r, c] == ex]
            assert flags == sorted(flags, reverse=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_gather_combine_round_trip(dtype):
    rng = np.random.default_rng(0)
    t, e, k, d, cap = 50, 6, 2, 7, 12
    x = rng.standard_normal((t, d)).astype(dtype)
    w, idx = softcore.top_k_gating(rng.standard_normal((t, e)), k)
    pos, _ = softcore.moe_dispatch(idx, e, capacity=cap)
    buf = softcore.moe_gather(x, idx, pos, cap, num_experts=e)
    assert buf.shape == (e, cap, d) and buf.dtype == dtype
    np.testing.assert_array_equal(buf, ref.moe_gather(x, idx, pos, cap, num_experts=e))
    out = softcore.moe_combine(buf, idx, pos, w.astype(dtype))
    want = ref.moe_combine(buf, idx, pos, w)
    tol = {np.float64: 1e-13, np.float32: 1e-6, np.float16: 5e-3}[dtype]
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol)
    # Identity experts: combine(gather(x)) = x * (sum of kept weights).
    kept_w = np.where(pos >= 0, w, 0.0).sum(-1, keepdims=True)
    np.testing.assert_allclose(out, x * kept_w, rtol=tol * 10, atol=tol * 10)


def test_gather_default_experts_and_dropped():
    idx = np.array([[0, 2], [2, 0]])
    pos = np.array([[0, -1], [0, 1]])
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    buf = softcore.moe_gather(x, idx, pos, 2)
    assert buf.shape == (3, 2, 2)
    np.testing.assert_array_equal(buf[0], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(buf[2], [[3, 4], [0, 0]])
    out = softcore.moe_combine(buf, idx, pos, np.array([[0.5, 0.5], [0.25, 0.75]]))
    np.testing.assert_allclose(out, [[0.5, 1.0], [3.0, 4.0]])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: softcore.moe_dispatch(np.array([[3]]), 3), "0..num_experts = 3"),
        (lambda: softcore.moe_dispatch(np.array([[0]]), 3, capacity=-1), "capacity"),
        (lambda: softcore.moe_dispatch(np.array([0, 1]), 3), "2-D"),
        (lambda: softcore.moe_gather(np.zeros((1, 2)), [[0]], [[2]], 2), "positions holds 2"),
        (lambda: softcore.moe_gather(np.zeros((2, 2)), [[0], [0]], [[0], [0]], 2), "twice"),
        (lambda: softcore.moe_gather(np.zeros((2, 2)), [[0]], [[0]], 2), "rows"),
        (lambda: softcore.moe_combine(np.zeros((1, 2, 2)), [[0]], [[0]], [[1.0, 2.0]]), "weights"),
        (lambda: softcore.moe_combine(np.zeros((2, 2)), [[0]], [[0]], [[1.0]]), "3-D"),
        (lambda: softcore.load_balancing_loss(np.ones((2, 3)), [[0], [5]]), "outside"),
        (lambda: softcore.load_balancing_loss(np.ones((2, 3)), [[0]]), "indices"),
        (lambda: softcore.load_balancing_loss(np.ones((2, 3)), [[0], [1]], choices="x"), "choices"),
        (lambda: softcore.router_z_loss(np.array([[np.nan, 1.0]])), "NaN"),
        (lambda: softcore.noisy_logits(np.zeros(3), np.zeros(2), np.zeros(3)), "noise_logits"),
    ],
)
def test_routing_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_routing_type_errors():
    with pytest.raises(TypeError, match="integer"):
        softcore.moe_dispatch(np.zeros((2, 1)), 3)
    with pytest.raises(TypeError, match="integer"):
        softcore.moe_gather(np.zeros((1, 2)), [[0.0]], [[0]], 1)


@given(st.integers(1, 40), st.integers(1, 8), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_losses_match_reference(t, e, k, seed):
    rng = np.random.default_rng(seed)
    k = min(k, e)
    logits = 3 * rng.standard_normal((t, e))
    probs = softcore.softmax(logits)
    _, idx = softcore.top_k_gating(logits, k)
    for choices in ("first", "all"):
        got = softcore.load_balancing_loss(probs, idx, choices=choices)
        want = ref.load_balancing_loss(probs, idx, choices=choices)
        assert got == pytest.approx(want, rel=1e-12)
    assert softcore.router_z_loss(logits) == pytest.approx(ref.router_z_loss(logits), rel=1e-12)
    # float32 logsumexp is accurate to ~eps absolute (not relative near 0).
    assert softcore.router_z_loss(logits.astype(np.float32)) == pytest.approx(
        ref.router_z_loss(logits.astype(np.float32)), rel=1e-6, abs=1e-6
    )


def test_balanced_routing_gives_one():
    e = 4
    probs = np.full((8, e), 1 / e)
    idx = np.array([[i % e, (i + 1) % e] for i in range(8)])
    assert softcore.load_balancing_loss(probs, idx) == pytest.approx(1.0)
    assert softcore.load_balancing_loss(probs, idx, choices="all") == pytest.approx(1.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_noisy_logits(dtype):
    rng = np.random.default_rng(3)
    clean, noise, normal = (rng.standard_normal((5, 6)) * 30).astype(dtype), None, None
    noise = (rng.standard_normal((5, 6)) * 50).astype(dtype)
    normal = rng.standard_normal((5, 6)).astype(dtype)
    got = softcore.noisy_logits(clean, noise, normal)
    want = ref.noisy_logits(clean, noise, normal)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=1e-12 if dtype == np.float64 else 1e-6, atol=1e-5)
    # softplus of a large noise logit is the logit itself, of a very negative one ~0: no overflow.
    big = softcore.noisy_logits(np.zeros(2), np.array([800.0, -800.0]), np.ones(2))
    np.testing.assert_allclose(big, [800.0, 0.0], atol=1e-300)


def test_huge_sizes_are_errors_not_aborts():
    with pytest.raises(ValueError, match="too large"):
        softcore.moe_dispatch(np.array([[0]]), 2**62)
    with pytest.raises(ValueError, match="too large"):
        softcore.moe_gather(np.zeros((1, 4)), [[0]], [[0]], 2**62)
    with pytest.raises(ValueError, match="out of range"):
        softcore.moe_gather(np.zeros((1, 4)), [[2**63 - 1]], [[0]], 1)
    out = softcore.moe_combine(np.zeros((2**20, 2**20, 0)), [[0]], [[0]], [[1.0]])
    assert out.shape == (1, 0)


def test_empty_buffers_of_huge_extent_are_refused_as_numpy_does():
    # (0, 2**62, 1) has no elements, but its strides would overflow (NumPy: "array is too big");
    # it once reached NumPy and crashed the process.
    x = np.zeros((0, 1), np.float32)
    none = np.zeros((0, 1), np.int64)
    with pytest.raises(ValueError, match="too large"):
        softcore.moe_gather(x, none, none, 2**62)
    assert softcore.moe_gather(x, none, none, 2**20).shape == (0, 2**20, 1)


def test_sparse_buffers_cost_only_the_slots_tokens_fill():
    # Zeroed pages: a capacity far above the token count is a scatter into untouched zeros.
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    idx, pos = np.array([[0], [1], [0]]), np.array([[0], [0], [2**24 - 1]])
    buf = softcore.moe_gather(x, idx, pos, 2**24)
    want = np.zeros((2, 2**24, 2), np.float32)
    want[0, 0], want[1, 0], want[0, -1] = x[0], x[1], x[2]
    np.testing.assert_array_equal(buf, want)
    _, counts = softcore.moe_dispatch(idx, 2**24)
    assert counts.sum() == 3 and counts[:2].tolist() == [2, 1]
