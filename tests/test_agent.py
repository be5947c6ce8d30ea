"""agent_attention and agent_pool against their float64 references."""

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


@given(
    n=st.integers(1, 300),
    s=st.integers(1, 300),
    d=st.integers(1, 40),
    dv=st.integers(1, 30),
    na=st.integers(1, 60),
    heads=st.sampled_from([(1, 1), (2, 2), (4, 2)]),
    given_agents=st.booleans(),
    biases=st.sampled_from(["none", "agent", "query", "both"]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_matches_reference(n, s, d, dv, na, heads, given_agents, biases, dtype, seed):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((2, heads[0], n, d)).astype(dtype)
    k = rng.standard_normal((2, heads[1], s, d)).astype(dtype)
    v = rng.standard_normal((2, heads[1], s, dv)).astype(dtype)
    agents = rng.standard_normal((heads[0], na, d)).astype(dtype) if given_agents else None
    b1 = rng.standard_normal((na, s)).astype(dtype) if biases in ("agent", "both") else None
    b2 = (
        rng.standard_normal((2, heads[0], n, na)).astype(dtype)
        if biases in ("query", "both")
        else None
    )
    kw = dict(num_agents=na, agent_bias=b1, query_bias=b2)
    out = softcore.agent_attention(q, k, v, agents, **kw)
    want = ref.agent_attention(q, k, v, agents, **kw)
    assert out.dtype == dtype and out.shape == want.shape
    assert rel(out, want) <= TOL[dtype]


@given(
    h=st.integers(1, 20),
    w=st.integers(1, 20),
    p=st.integers(1, 9),
    seed=st.integers(0, 2**31),
)
def test_pool_2d_and_1d(h, w, p, seed):
    x = np.random.default_rng(seed).standard_normal((3, h * w, 5))
    got = softcore.agent_pool(x, p * p, grid=(h, w))
    assert rel(got, ref.agent_pool(x, p * p, grid=(h, w))) <= 1e-14
    got1 = softcore.agent_pool(x, p * p + 1)
    assert rel(got1, ref.agent_pool(x, p * p + 1)) <= 1e-14


def test_pool_matches_torch_bins_and_official_square_grid():
    # 196 tokens on a 14 x 14 grid pooled to 7 x 7: each agent is a 2 x 2 block mean.
    x = np.arange(196.0 * 2).reshape(196, 2)
    a = softcore.agent_pool(x, 49, grid=(14, 14))
    g = x.reshape(7, 2, 7, 2, 2).mean((1, 3)).reshape(49, 2)
    np.testing.assert_allclose(a, g)
    out = softcore.agent_attention(x[None] / 100, x[None] / 100, x[None], grid=(14, 14))
    want = ref.agent_attention(x[None] / 100, x[None] / 100, x[None], grid=(14, 14))
    assert rel(out, want) <= 1e-12


def test_masked_agent_rows_and_float16():
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((40, 8)).astype(np.float32) for _ in range(3))
    b1 = np.zeros((4, 40), np.float32)
    b1[1] = -np.inf  # agent 1 sees no key: its V_A row is 0
    out = softcore.agent_attention(q, k, v, num_agents=4, agent_bias=b1)
    assert rel(out, ref.agent_attention(q, k, v, num_agents=4, agent_bias=b1)) <= 1e-5
    h = softcore.agent_attention(q.astype(np.float16), k, v, num_agents=4)
    assert h.dtype == np.float16


def test_errors():
    q = np.ones((2, 5, 4))
    k, v = np.ones((2, 6, 4)), np.ones((2, 6, 3))
    cases = [
        (dict(grid=(2, 2)), "grid"),
        (dict(grid=(1, 5), num_agents=5), "perfect square"),
        (dict(num_agents=0), "num_agents"),
        (dict(agent_bias=np.ones((49, 7))), "agent_bias"),
        (dict(query_bias=np.ones((5, 3))), "query_bias"),
        (dict(scale=float("inf")), "scale"),
    ]
    for kw, msg in cases:
        with pytest.raises(ValueError, match=msg):
            softcore.agent_attention(q, k, v, **kw)
    with pytest.raises(ValueError, match="agents"):
        softcore.agent_attention(q, k, v, np.ones((3, 5)))
    with pytest.raises(ValueError, match="k contains"):
        softcore.agent_attention(q, np.full((2, 6, 4), np.nan), v)
    with pytest.raises(TypeError, match="grid"):
        softcore.agent_attention(q, k, v, grid=3)
    with pytest.raises(TypeError):
        softcore.agent_pool(np.ones((3, 2), int), 2)
    assert softcore.agent_attention(q, k, v, num_agents=2**70 // 2**60).shape == (2, 5, 3)
    for huge in (2**70, 2**40):
        with pytest.raises(ValueError, match="num_agents"):
            softcore.agent_attention(q, k, v, num_agents=huge)
        with pytest.raises(ValueError, match="num_agents"):
            softcore.agent_pool(np.ones((3, 0)), huge)
