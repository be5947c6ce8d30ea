"""Linear attention, causal_dot_product and the Hedgehog map against the float64 references."""

import numpy as np
import pytest
import softcore
from hypothesis import given
from hypothesis import strategies as st
from softcore import _reference_attention as attn_ref
from softcore import reference as ref

MAPS = ["elu1", "relu", "identity", "exp"]
TOL = {np.float32: 1e-5, np.float64: 1e-12}


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def inputs(rng, batch, n, d, dv, dtype=np.float64, hkv=None):
    kb = batch if hkv is None else batch[:-1] + (hkv,)
    q = (rng.standard_normal(batch + (n, d)) * 0.5).astype(dtype)
    k = (rng.standard_normal(kb + (n, d)) * 0.5).astype(dtype)
    v = rng.standard_normal(kb + (n, dv)).astype(dtype)
    return q, k, v


def decay_of(rng, kind, batch, n, d):
    if kind is None:
        return None
    shape = {"head": batch, "step": batch + (n,), "key": batch + (n, d)}[kind]
    g = -rng.exponential(0.3, shape)
    # Extremes: no decay and a decay that forgets at once.
    flat = g.reshape(-1)
    flat[::7] = 0.0
    flat[3::11] = -50.0
    return g


@given(
    n=st.sampled_from([1, 5, 8, 9, 31, 32, 33, 101, 200]),
    d=st.integers(1, 40),
    dv=st.integers(1, 24),
    chunk=st.sampled_from([1, 7, 16, 32, 64]),
    fmap=st.sampled_from(MAPS),
    kind=st.sampled_from([None, "head", "step", "key"]),
    normalize=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_causal_matches_recurrence(n, d, dv, chunk, fmap, kind, normalize, dtype, seed):
    # A normaliser phi(q).z near 0 (identity, relu) is ill-conditioned: normalise positive maps.
    normalize = normalize and fmap in ("elu1", "exp")
    rng = np.random.default_rng(seed)
    q, k, v = inputs(rng, (2,), n, d, dv, dtype)
    g = decay_of(rng, kind, (2,), n, d)
    g = None if g is None else g.astype(dtype)
    kw = dict(feature_map=fmap, causal=True, decay=g, normalize=normalize)
    got, (s, z) = softcore.linear_attention(q, k, v, chunk_size=chunk, return_state=True, **kw)
    want, (ws, wz) = ref.linear_attention(q, k, v, **kw)
    assert got.dtype == dtype and got.shape == (2, n, dv)
    assert rel(got, want) <= TOL[dtype]
    assert rel(s, ws) <= TOL[dtype] and rel(z, wz) <= TOL[dtype]


@given(
    n=st.integers(1, 300),
    s=st.integers(1, 300),
    d=st.integers(1, 40),
    dv=st.integers(1, 24),
    fmap=st.sampled_from(MAPS),
    normalize=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_noncausal_matches_reference(n, s, d, dv, fmap, normalize, dtype, seed):
    normalize = normalize and fmap in ("elu1", "exp")
    rng = np.random.default_rng(seed)
    q = (rng.standard_normal((3, n, d)) * 0.5).astype(dtype)
    k = (rng.standard_normal((3, s, d)) * 0.5).astype(dtype)
    v = rng.standard_normal((3, s, dv)).astype(dtype)
    got = softcore.linear_attention(q, k, v, feature_map=fmap, normalize=normalize, scale=0.7)
    want, _ = ref.linear_attention(q, k, v, feature_map=fmap, normalize=normalize, scale=0.7)
    assert rel(got, want) <= TOL[dtype]


@pytest.mark.parametrize("kind", [None, "head", "step", "key"])
@pytest.mark.parametrize("split", [1, 63, 64, 65, 100])
def test_state_carried_across_calls_equals_one_call(kind, split):
    rng = np.random.default_rng(split)
    n, d, dv = 197, 12, 7
    q, k, v = inputs(rng, (2, 4), n, d, dv, hkv=2)
    g = decay_of(rng, kind, (2, 4), n, d)
    kw = dict(causal=True, normalize=True)
    whole = softcore.linear_attention(q, k, v, decay=g, **kw)
    g1 = None if g is None else (g if kind == "head" else g[:, :, :split])
    g2 = None if g is None else (g if kind == "head" else g[:, :, split:])
    a, state = softcore.linear_attention(
        q[..., :split, :], k[..., :split, :], v[..., :split, :], decay=g1, return_state=True, **kw
    )
    b = softcore.linear_attention(
        q[..., split:, :], k[..., split:, :], v[..., split:, :], decay=g2, initial_state=state, **kw
    )
    assert rel(np.concatenate([a, b], axis=-2), whole) < 1e-12
    # Token by token, as a decoder runs it.
    st_ = None
    steps = []
    for t in range(0, 20):
        gt = None if g is None else (g if kind == "head" else g[:, :, t : t + 1])
        o, st_ = softcore.linear_attention(
            q[..., t : t + 1, :],
            k[..., t : t + 1, :],
            v[..., t : t + 1, :],
            decay=gt,
            initial_state=st_,
            return_state=True,
            **kw,
        )
        steps.append(o)
    assert rel(np.concatenate(steps, axis=-2), whole[..., :20, :]) < 1e-12


def test_float16_and_layouts():
    rng = np.random.default_rng(1)
    q, k, v = inputs(rng, (2,), 90, 16, 8)
    want, _ = ref.linear_attention(q, k, v, causal=True)
    got = softcore.linear_attention(q.astype(np.float16), k, v, causal=True)
    assert got.dtype == np.float16 and rel(got, want) < 3e-3
    got = softcore.linear_attention(np.asfortranarray(q), k[:, ::-1][:, ::-1], v, causal=True)
    assert rel(got, want) < 1e-12


def test_long_float32_sequence_does_not_drift():
    # n = 65536 causal in float32 against float64 prefix sums (identity map: S_t = sum k v^T).
    rng = np.random.default_rng(2)
    n, d, dv = 65536, 8, 8
    q = rng.standard_normal((n, d)) * 0.5
    k = rng.standard_normal((n, d)) * 0.5
    v = rng.standard_normal((n, dv))
    fq, fk = attn_ref.phi(q, "elu1"), attn_ref.phi(k, "elu1")
    s = np.cumsum(fk[:, :, None] * v[:, None, :], axis=0)
    z = np.cumsum(fk, axis=0)
    want = np.einsum("tc,tcj->tj", fq, s) / (np.einsum("tc,tc->t", fq, z)[:, None] + 1e-6)
    got = softcore.linear_attention(
        q.astype(np.float32), k.astype(np.float32), v.astype(np.float32), causal=True
    )
    assert rel(got, want) < 1e-4


@given(n=st.integers(1, 200), d=st.integers(1, 30), dv=st.integers(1, 20), seed=st.integers(0, 99))
def test_causal_dot_product(n, d, dv, seed):
    rng = np.random.default_rng(seed)
    q, k, v = inputs(rng, (2, 2), n, d, dv)
    assert rel(softcore.causal_dot_product(q, k, v), ref.causal_dot_product(q, k, v)) < 1e-12


@given(
    n=st.integers(1, 100),
    d=st.integers(1, 40),
    f=st.integers(1, 40),
    bias=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 99),
)
def test_hedgehog(n, d, f, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, n, d)).astype(dtype)
    w = (rng.standard_normal((d, f)) * 0.5).astype(dtype)
    b = rng.standard_normal(f).astype(dtype) if bias else None
    got = softcore.hedgehog_feature_map(x, w, b)
    want = ref.hedgehog_feature_map(x, w, b)
    assert got.shape == (2, n, 2 * f) and got.dtype == dtype
    assert rel(got, want) <= TOL[dtype] * 10
    # It feeds linear attention with the identity map.
    out = softcore.linear_attention(got, got, x, feature_map="identity", causal=True)
    assert np.all(np.isfinite(out))


def test_errors():
    q = np.zeros((2, 5, 4))
    with pytest.raises(ValueError, match="chunk_size"):
        softcore.linear_attention(q, q, q, chunk_size=0)
    with pytest.raises(ValueError, match="feature_map"):
        softcore.linear_attention(q, q, q, feature_map="softmax")
    with pytest.raises(ValueError, match="g <= 0"):
        softcore.linear_attention(q, q, q, causal=True, decay=np.full((2, 5), 0.1))
    with pytest.raises(ValueError, match="g <= 0"):
        softcore.linear_attention(q, q, q, causal=True, decay=np.full(2, np.nan))
    with pytest.raises(ValueError, match="decay must have shape"):
        softcore.linear_attention(q, q, q, causal=True, decay=np.zeros((2, 6)))
    with pytest.raises(ValueError, match="causal"):
        softcore.linear_attention(q, q, q, decay=np.zeros(2))
    with pytest.raises(ValueError, match="s = n"):
        softcore.linear_attention(q, np.zeros((2, 6, 4)), np.zeros((2, 6, 4)), causal=True)
    with pytest.raises(ValueError, match="multiple"):
        softcore.linear_attention(np.zeros((1, 3, 5, 4)), np.zeros((1, 2, 5, 4)), q[None])
    with pytest.raises(ValueError, match="d and dv"):
        softcore.linear_attention(np.zeros((5, 0)), np.zeros((5, 0)), np.zeros((5, 2)))
    # Every path finds a non-finite q, k or v and names it: non-causal, chunks, the recurrence.
    for n, causal in ((5, False), (100, True), (3, True)):
        x = np.zeros((2, n, 4))
        for which in ("q", "k", "v"):
            for bad_value in (np.inf, np.nan):
                args = {"q": x, "k": x, "v": x}
                args[which] = x.copy()
                args[which][1, n - 1, 3] = bad_value
                with pytest.raises(ValueError, match=f"{which} contains NaN or infinity"):
                    softcore.linear_attention(**args, causal=causal)
    with pytest.raises(TypeError, match="initial_state"):
        softcore.linear_attention(q, q, q, initial_state=np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="initial_state S"):
        softcore.linear_attention(q, q, q, initial_state=(np.zeros((2, 4, 3)), None))
    for n in (1, 8, 9, 100):  # the recurrence (n <= 8) and the chunk form check alike
        x = np.zeros((2, n, 4))
        for bad_s, bad_z in ((np.nan, 0.0), (0.0, np.inf)):
            st = (np.full((2, 4, 4), bad_s), np.full((2, 4), bad_z))
            with pytest.raises(ValueError, match="initial_state"):
                softcore.linear_attention(x, x, x, causal=True, initial_state=st)
    with pytest.raises(ValueError, match="weight"):
        softcore.hedgehog_feature_map(q, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="bias"):
        softcore.hedgehog_feature_map(q, np.zeros((4, 2)), np.zeros(3))
