"""top_k_gating against the float64 reference: every option, shapes, ties, extreme logits."""

import numpy as np
import pytest
import softcore
from hypothesis import given
from hypothesis import strategies as st
from softcore import reference as ref

OPTIONS = [
    {},
    {"order": "topk_softmax"},
    {"renormalize": False},
    {"temperature": 0.3},
    {"temperature": 2.0, "renormalize": False},
    {"score": "sigmoid"},
    {"score": "sigmoid", "renormalize": False, "temperature": 3.0},
    {"activation": "tanh", "temperature": 0.5},
    {"activation": "sigmoid", "temperature": 0.1},
    {"n_group": 4, "topk_group": 2},
    {"n_group": 4, "topk_group": 2, "group_score": "sum_top2"},
    {"score": "sigmoid", "bias": True, "n_group": 4, "topk_group": 3},
    {"bias": True},
    {"bias": True, "order": "topk_softmax"},
    {"bias": True, "renormalize": False},
]


def resolve(kw, e, rng):
    kw = dict(kw)
    if kw.get("bias") is True:
        kw["bias"] = 0.3 * rng.standard_normal(e)
    return kw


def check_order(w, idx):
    """Rows sorted by weight descending, equal weights by ascending id."""
    w2, i2 = w.reshape(-1, w.shape[-1]), idx.reshape(-1, idx.shape[-1])
    dw = np.diff(w2, axis=-1)
    assert np.all(dw <= 0)
    assert np.all((dw < 0) | (np.diff(i2, axis=-1) > 0))


def check(x, k, kw, rtol):
    w, idx = softcore.top_k_gating(x, k, **kw)
    bias = kw.get("bias")
    kw64 = dict(kw) if bias is None else dict(kw, bias=np.asarray(bias, np.float64))
    rw, ri = ref.top_k_gating(x.astype(np.float64), k, **kw64)
    assert w.dtype == x.dtype and idx.dtype == np.int64
    assert w.shape == x.shape[:-1] + (k,) and idx.shape == w.shape
    check_order(w, idx)
    if x.dtype == np.float64:
        np.testing.assert_array_equal(idx, ri)
    else:
        # float32 scores can round two experts' weights (or keys) equal: the selected weights
        # must still agree, and ids may differ only between such near-ties.
        same = idx == ri
        near = np.isclose(w, rw, rtol=0, atol=4 * rtol)
        assert np.all(same | near)
    np.testing.assert_allclose(w, rw, rtol=rtol, atol=rtol * 1e-3)


@pytest.mark.parametrize("kw", OPTIONS, ids=lambda kw: ",".join(kw) or "default")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_options_match_reference(kw, dtype):
    rng = np.random.default_rng(0)
    for t, e, k in [(1, 8, 1), (37, 8, 2), (101, 64, 2), (40, 64, 6), (33, 256, 8), (20, 16, 9)]:
        if "n_group" in kw and k > kw["topk_group"] * e // kw["n_group"]:
            continue
        x = (2 * rng.standard_normal((t, e))).astype(dtype)
        check(x, k, resolve(kw, e, rng), 1e-12 if dtype == np.float64 else 2e-6)


@given(
    st.integers(0, 70),
    st.integers(1, 40),
    st.data(),
    st.sampled_from([np.float32, np.float64]),
    st.sampled_from(["normal", "ties", "huge", "neginf"]),
    st.integers(0, len(OPTIONS) - 1),
)
def test_gating_property(t, e, data, dtype, kind, opt):
    k = data.draw(st.integers(1, e))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    kw = dict(OPTIONS[opt])
    if "n_group" in kw:
        kw["n_group"] = data.draw(st.sampled_from([g for g in (1, 2, 4) if e % g == 0]))
        kw["topk_group"] = data.draw(st.integers(1, kw["n_group"]))
        size = e // kw["n_group"]
        if kw.get("group_score") == "sum_top2" or kw.get("score") == "sigmoid":
            if size < 2 and kw["n_group"] > 1:
                kw["group_score"] = "max"
        k = min(k, kw["topk_group"] * size)
    x = rng.standard_normal((t, e))
    if kind == "ties":
        x = np.round(x)  # few distinct values: many exact ties
    elif kind == "huge":
        x = x * 1e30 if dtype == np.float32 else x * 1e300
    elif kind == "neginf":
        x[rng.random(x.shape) < 0.3] = -np.inf
        x[:, 0] = np.where(np.isinf(x[:, 0]), 0.0, x[:, 0])  # every row keeps a finite logit
    x = x.astype(dtype)
    if kind == "huge" and kw.get("activation") is None and kw.get("bias") is None:
        pass
    elif kind == "huge":
        return  # activation/bias on 1e300 logits: not a meaningful router input
    check(x, k, resolve(kw, e, rng), 1e-12 if dtype == np.float64 else 2e-6)


def test_layouts_batch_dims_and_threads():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 50, 16))
    w, i = softcore.top_k_gating(x, 3)
    rw, ri = ref.top_k_gating(x, 3)
    assert w.shape == (3, 50, 3)
    np.testing.assert_array_equal(i, ri)
    xf = np.asfortranarray(x[:, ::2, ::-1])
    w2, i2 = softcore.top_k_gating(xf, 3)
    np.testing.assert_array_equal(i2, ref.top_k_gating(np.ascontiguousarray(xf), 3)[1])
    big = rng.standard_normal((5000, 64)).astype(np.float32)
    n = softcore.get_num_threads()
    try:
        outs = []
        for threads in (1, 2, 3):
            softcore.set_num_threads(threads)
            outs.append(softcore.top_k_gating(big, 2))
    finally:
        softcore.set_num_threads(n)
    for w_, i_ in outs[1:]:
        np.testing.assert_array_equal(w_, outs[0][0])
        np.testing.assert_array_equal(i_, outs[0][1])


def test_float16_and_empty():
    x = np.random.default_rng(2).standard_normal((10, 8)).astype(np.float16)
    w, i = softcore.top_k_gating(x, 2)
    assert w.dtype == np.float16
    w, i = softcore.top_k_gating(np.zeros((0, 8)), 2)
    assert w.shape == (0, 2) and i.shape == (0, 2)


def test_constant_rows_tie_to_lower_id():
    w, i = softcore.top_k_gating(np.zeros((3, 10)), 4)
    np.testing.assert_array_equal(i, np.tile(np.arange(4), (3, 1)))
    np.testing.assert_allclose(w, 0.25)


@pytest.mark.parametrize(
    "args, kw, match",
    [
        ((np.array([[np.nan, 1.0]]), 1), {}, "NaN"),
        ((np.array([[np.inf, 1.0]]), 1), {}, r"\+inf"),
        ((np.full((2, 3), -np.inf), 1), {}, "no finite"),
        ((np.zeros((2, 4)), 0), {}, "k must be"),
        ((np.zeros((2, 4)), 5), {}, "k must be"),
        ((np.zeros((2, 4)), 1), {"temperature": 0.0}, "temperature"),
        ((np.zeros((2, 4)), 1), {"order": "x"}, "order"),
        ((np.zeros((2, 4)), 1), {"score": "relu"}, "score"),
        ((np.zeros((2, 4)), 1), {"activation": "relu"}, "activation"),
        ((np.zeros((2, 4)), 1), {"n_group": 3}, "n_group"),
        ((np.zeros((2, 4)), 1), {"n_group": 2, "topk_group": 3}, "topk_group"),
        ((np.zeros((2, 4)), 3), {"n_group": 2, "topk_group": 1}, "exceeds"),
        ((np.zeros((2, 4)), 1), {"bias": np.zeros(3)}, "bias"),
        ((np.zeros((2, 4)), 1), {"score": "sigmoid", "order": "topk_softmax"}, "topk_softmax"),
        ((np.zeros((2, 0)), 1), {}, "at least one expert"),
    ],
)
def test_errors(args, kw, match):
    with pytest.raises(ValueError, match=match):
        softcore.top_k_gating(*args, **kw)


def test_type_errors():
    with pytest.raises(TypeError, match="int64"):
        softcore.top_k_gating(np.zeros((2, 4), np.int64), 1)
    with pytest.raises(TypeError, match="bias"):
        softcore.top_k_gating(np.zeros((2, 4)), 1, bias=np.zeros(4, int))


def test_sum_top2_groups_rank_by_score_not_logit():
    """DeepSeek-V3 sums the two best scores of a group; bias=None must equal a zero bias."""
    x = np.array([[10.0, -1.0, 2.0, 2.0]])
    kw = {"score": "sigmoid", "n_group": 2, "topk_group": 1}
    _, i0 = softcore.top_k_gating(x, 1, **kw)
    _, iz = softcore.top_k_gating(x, 1, bias=np.zeros(4), **kw)
    np.testing.assert_array_equal(i0, iz)
    np.testing.assert_array_equal(i0, ref.top_k_gating(x, 1, **kw)[1])
    assert i0[0, 0] == 2  # sigmoid(2) + sigmoid(2) > sigmoid(10) + sigmoid(-1)


def test_dropped_group_experts_weigh_zero():
    x = np.array([[0.0, 0.0, 10.0, -np.inf]])
    w, i = softcore.top_k_gating(x, 2, n_group=2, topk_group=1)
    np.testing.assert_array_equal(i, [[2, 0]])
    np.testing.assert_array_equal(w, [[1.0, 0.0]])
    rw, ri = ref.top_k_gating(x, 2, n_group=2, topk_group=1)
    np.testing.assert_array_equal(ri, i)
    np.testing.assert_array_equal(rw, w)


def test_float16_order_and_batch_invariance():
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((67, 16)) * 0.01).astype(np.float16)  # many f16 weight ties
    w, i = softcore.top_k_gating(x, 4)
    check_order(w, i)
    x32 = rng.standard_normal((37, 8)).astype(np.float32)
    wb, ib = softcore.top_k_gating(x32, 3)
    for r in range(len(x32)):
        w1, i1 = softcore.top_k_gating(x32[r : r + 1], 3)
        np.testing.assert_array_equal(i1[0], ib[r])
        np.testing.assert_allclose(w1[0], wb[r], rtol=1e-6)


def test_tiny_temperature_is_rejected_not_nan():
    with pytest.raises(ValueError, match="temperature"):
        softcore.top_k_gating(np.zeros((20, 4), np.float32), 2, temperature=1e-40)
    w, _ = softcore.top_k_gating(np.array([[1.0, 2.0, 3.0]]), 2, temperature=1e-3)
    assert np.all(np.isfinite(w))
