"""Float64 references of the attention family: the formulas written out, quadratic or one token
at a time where that is the clearest form (for tests on small sizes)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _f64(x: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(x, dtype=np.float64)


def _repeat_kv(q: NDArray[Any], k: NDArray[Any]) -> NDArray[Any]:
    """k's heads repeated to q's (grouped-query attention): head h of q reads k head h // g."""
    if q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        return np.repeat(k, q.shape[-3] // k.shape[-3], axis=-3)
    return k


def visible(
    n: int, s: int, *, causal: bool = False, window: int | None = None
) -> NDArray[np.bool_]:
    """(n, s) bool: key j visible to query i (bottom-right aligned, sliding window)."""
    i = np.arange(n)[:, None]
    j = np.arange(s)[None, :]
    top = i + s - n
    keep = np.ones((n, s), dtype=bool)
    if causal or window is not None:
        keep &= j <= top
    if window is not None:
        keep &= j > top - window
    return keep


def softmax_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    scale: float | None = None,
    causal: bool = False,
    mask: ArrayLike | None = None,
    window: int | None = None,
) -> tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]:
    """softmax(scale q k^T over the visible keys) v, and the log-sum-exp of each row.

    Returns (out, lse); a row with nothing visible gives 0s and lse = -inf.
    """
    q, k, v = _f64(q), _f64(k), _f64(v)
    k, v = _repeat_kv(q, k), _repeat_kv(q, v)
    n, s, d = q.shape[-2], k.shape[-2], q.shape[-1]
    scale = d**-0.5 if scale is None else scale
    sc = scale * q @ np.swapaxes(k, -1, -2)
    keep = np.broadcast_to(visible(n, s, causal=causal, window=window), sc.shape)
    if mask is not None:
        keep = keep & np.broadcast_to(np.asarray(mask, dtype=bool), sc.shape)
    sc = np.where(keep, sc, -np.inf)
    m = np.max(sc, axis=-1, keepdims=True, initial=-np.inf)
    m0 = np.where(np.isfinite(m), m, 0.0)
    e = np.where(keep, np.exp(sc - m0), 0.0)
    tot = e.sum(-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(tot > 0, (e / np.where(tot > 0, tot, 1.0)) @ v, 0.0)
        lse = np.where(tot[..., 0] > 0, m0[..., 0] + np.log(tot[..., 0]), -np.inf)
    return out, lse


def phi(x: ArrayLike, name: str) -> NDArray[np.floating[Any]]:
    """phi: "elu1" (elu(x) + 1), "relu", "identity", "exp" (e^(x - max) per token)."""
    x = _f64(x)
    if name == "elu1":
        return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "identity":
        return x
    if name == "exp":
        return np.asarray(np.exp(x - x.max(-1, keepdims=True)))
    raise ValueError(f"feature_map: {name!r}")


def linear_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    feature_map: str = "elu1",
    causal: bool = False,
    decay: ArrayLike | None = None,
    normalize: bool = True,
    scale: float | None = None,
    eps: float = 1e-6,
    initial_state: tuple[ArrayLike, ArrayLike | None] | None = None,
) -> tuple[NDArray[np.floating[Any]], tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]]:
    """The recurrence S_t = e^(g_t) S_{t-1} + phi(k_t) v_t^T, z_t = e^(g_t) z_{t-1} + phi(k_t),
    out_t = s phi(q_t) S_t / (s phi(q_t) . z_t + eps) (or the numerator alone), one token at a
    time; non-causal uses the state after every token. Returns (out, (S, z))."""
    fq = phi(q, feature_map) * (1.0 if scale is None else scale)
    fk = phi(k, feature_map)
    v = _f64(v)
    fk, v = _repeat_kv(fq, fk), _repeat_kv(fq, v)
    n, d, dv = fq.shape[-2], fq.shape[-1], v.shape[-1]
    batch = fq.shape[:-2]
    z0: ArrayLike | None
    if initial_state is None:
        s0, z0 = np.zeros(batch + (d, dv)), np.zeros(batch + (d,))
    else:
        s0, z0 = _f64(initial_state[0]), initial_state[1]
        z0 = np.zeros(batch + (d,)) if z0 is None else _f64(z0)
    if not causal:
        st = s0 + np.swapaxes(fk, -1, -2) @ v
        z = z0 + fk.sum(-2)
        num = fq @ st
        den = fq @ z[..., :, None]
        out = num / (den + eps) if normalize else num
        return out, (st, z)
    g = None if decay is None else _f64(decay)
    st, z = s0.copy(), z0.copy()
    out = np.zeros(batch + (n, dv))
    for t in range(n):
        if g is None:
            f = np.ones(batch + (d,))
        elif g.ndim == len(batch):
            f = np.broadcast_to(np.exp(g)[..., None], batch + (d,))
        elif g.ndim == len(batch) + 1:
            f = np.broadcast_to(np.exp(g[..., t])[..., None], batch + (d,))
        else:
            f = np.exp(g[..., t, :])
        st = f[..., :, None] * st + fk[..., t, :, None] * v[..., t, None, :]
        z = f * z + fk[..., t, :]
        num = np.einsum("...c,...cj->...j", fq[..., t, :], st)
        den = np.einsum("...c,...c->...", fq[..., t, :], z)[..., None]
        out[..., t, :] = num / (den + eps) if normalize else num
    return out, (st, z)


def causal_dot_product(q: ArrayLike, k: ArrayLike, v: ArrayLike) -> NDArray[np.floating[Any]]:
    """sum_{j <= i} (q_i . k_j) v_j (fast-transformers' causal_product), unnormalised."""
    q, k, v = _f64(q), _f64(k), _f64(v)
    k, v = _repeat_kv(q, k), _repeat_kv(q, v)
    a = q @ np.swapaxes(k, -1, -2)
    return np.asarray(np.tril(a) @ v)


def _softmax_last(x: NDArray[np.floating[Any]]) -> NDArray[np.floating[Any]]:
    e = np.exp(x - x.max(-1, keepdims=True))
    return np.asarray(e / e.sum(-1, keepdims=True))


def hedgehog_feature_map(
    x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None
) -> NDArray[np.floating[Any]]:
    """[softmax(x W + b), softmax(-(x W + b))] along the features: (..., n, 2f)."""
    y = _f64(x) @ _f64(weight)
    if bias is not None:
        y = y + _f64(bias)
    return np.concatenate([_softmax_last(y), _softmax_last(-y)], axis=-1)
