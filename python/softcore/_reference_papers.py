"""Float64 references of the attention papers' variants: decoding, InLine, RALA."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from softcore._reference_attention import softmax_attention


def decode_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    scale: float | None = None,
    kv_len: ArrayLike | None = None,
) -> tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]:
    """One query per head against a cache: softmax(scale q k^T over keys j < kv_len) v.

    q (..., hq, d) with k (..., hkv, s, d) (or q (..., d) with k (..., s, d)); kv_len per
    sequence (q.shape[:-2]), per query head (q.shape[:-1]) or one int. Returns (out, lse); a
    row with nothing visible gives 0s and lse = -inf.
    """
    q = np.asarray(q, dtype=np.float64)
    s = np.shape(k)[-2]
    mask = None
    if kv_len is not None:
        lens = np.asarray(kv_len, dtype=np.int64)
        if lens.ndim and lens.shape == q.shape[:-2]:
            lens = lens[..., None]
        lens = np.broadcast_to(lens, q.shape[:-1])
        mask = (np.arange(s) < lens[..., None])[..., None, :]
    out, lse = softmax_attention(q[..., None, :], k, v, scale=scale, mask=mask)
    return out[..., 0, :], lse[..., 0]


def _repeat_heads(q: NDArray[Any], k: NDArray[Any]) -> NDArray[Any]:
    if q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        return np.repeat(k, q.shape[-3] // k.shape[-3], axis=-3)
    return k


def inline_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    scale: float | None = None,
    feature_map: str = "identity",
) -> NDArray[np.floating[Any]]:
    """InLine: the weights w_ij = s (phi(q_i).phi(k_j) - mean_j phi(q_i).phi(k_j)) + 1/N written
    out (N x N), s = d**-0.5 / N by default."""
    from softcore._reference_attention import phi

    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    k, v = _repeat_heads(q, k), _repeat_heads(q, v)
    n_keys, d = k.shape[-2], q.shape[-1]
    s = d**-0.5 / n_keys if scale is None else scale
    a = phi(q, feature_map) @ np.swapaxes(phi(k, feature_map), -1, -2)
    w = s * (a - a.mean(-1, keepdims=True)) + 1.0 / n_keys
    return cast("NDArray[np.floating[Any]]", w @ v)


def rala_attention(
    q: ArrayLike, k: ArrayLike, v: ArrayLike, *, scale: float | None = None, eps: float = 1e-6
) -> NDArray[np.floating[Any]]:
    """RALA's core as qhfan/RALA's GateLinearAttentionNoSilu computes it (without RoPE and
    LePE): alpha = softmax(s mean(phi(q)) phi(k)^T), k' = N alpha phi(k), then
    phi(q) (k'^T v / N) / (phi(q) . mean k' + eps)."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    k, v = _repeat_heads(q, k), _repeat_heads(q, v)
    n_keys, d = k.shape[-2], q.shape[-1]
    s = d**-0.5 if scale is None else scale
    fq = np.where(q > 0, q + 1.0, np.exp(np.minimum(q, 0.0)))
    fk = np.where(k > 0, k + 1.0, np.exp(np.minimum(k, 0.0)))
    eff = s * fq.mean(-2, keepdims=True) @ np.swapaxes(fk, -1, -2)  # (..., 1, N)
    eff = np.exp(eff - eff.max(-1, keepdims=True))
    eff = np.swapaxes(eff / eff.sum(-1, keepdims=True), -1, -2)  # (..., N, 1)
    kk = fk * eff * n_keys
    z = 1.0 / (fq @ np.swapaxes(kk.mean(-2, keepdims=True), -1, -2) + eps)
    kv = (np.swapaxes(kk, -1, -2) * n_keys**-0.5) @ (v * n_keys**-0.5)
    return cast("NDArray[np.floating[Any]]", fq @ kv * z)


def agent_pool(
    x: ArrayLike, num_agents: int, *, grid: tuple[int, int] | None = None
) -> NDArray[np.floating[Any]]:
    """Adaptive average pooling of the tokens (PyTorch's bins), 1-D or over an (h, w) grid."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-2]

    def bins(out: int, length: int) -> list[tuple[int, int]]:
        return [(i * length // out, -((-(i + 1) * length) // out)) for i in range(out)]

    if grid is None:
        parts = [x[..., a:b, :].mean(-2) for a, b in bins(num_agents, n)]
    else:
        h, w = grid
        p = int(round(num_agents**0.5))
        g = x.reshape(x.shape[:-2] + (h, w, x.shape[-1]))
        parts = [
            g[..., r0:r1, c0:c1, :].mean((-3, -2)) for r0, r1 in bins(p, h) for c0, c1 in bins(p, w)
        ]
    return np.stack(parts, axis=-2)


def _softmax_rows(x: NDArray[np.floating[Any]]) -> NDArray[np.floating[Any]]:
    m = np.max(x, -1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(x - m)
    t = e.sum(-1, keepdims=True)
    return np.where(t > 0, e / np.where(t > 0, t, 1.0), 0.0)


def agent_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    agents: ArrayLike | None = None,
    *,
    num_agents: int = 49,
    grid: tuple[int, int] | None = None,
    scale: float | None = None,
    agent_bias: ArrayLike | None = None,
    query_bias: ArrayLike | None = None,
) -> NDArray[np.floating[Any]]:
    """softmax(s Q A^T + B2) softmax(s A K^T + B1) V, written out."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    k, v = _repeat_heads(q, k), _repeat_heads(q, v)
    s = q.shape[-1] ** -0.5 if scale is None else scale
    a = agent_pool(q, num_agents, grid=grid) if agents is None else np.asarray(agents, np.float64)
    s1 = s * a @ np.swapaxes(k, -1, -2)
    if agent_bias is not None:
        s1 = s1 + np.asarray(agent_bias, np.float64)
    s2 = s * q @ np.swapaxes(a, -1, -2)
    if query_bias is not None:
        s2 = s2 + np.asarray(query_bias, np.float64)
    return cast("NDArray[np.floating[Any]]", _softmax_rows(s2) @ (_softmax_rows(s1) @ v))


def tensor_attention(
    q: ArrayLike,
    k1: ArrayLike,
    k2: ArrayLike,
    v1: ArrayLike,
    v2: ArrayLike,
    *,
    scale: float | None = None,
    causal: bool = False,
    windows: tuple[int, int] | None = None,
) -> NDArray[np.floating[Any]]:
    """The triple-wise softmax written out: (n, s1, s2) scores per head, for small sizes."""
    q, k1, k2, v1, v2 = (np.asarray(x, dtype=np.float64) for x in (q, k1, k2, v1, v2))
    k1, k2, v1, v2 = (_repeat_heads(q, x) for x in (k1, k2, v1, v2))
    n, s1, s2, d = q.shape[-2], k1.shape[-2], k2.shape[-2], q.shape[-1]
    s = d**-0.5 if scale is None else scale
    x = s * np.einsum("...ic,...jc,...lc->...ijl", q, k1, k2)
    keep = np.ones((n, s1, s2), dtype=bool)
    if causal or windows is not None:
        top = np.arange(n)[:, None, None] + s1 - n
        j = np.arange(s1)[None, :, None]
        lk = np.arange(s2)[None, None, :]
        keep = (j <= top) & (lk <= top)
        if windows is not None:
            keep &= (j > top - windows[0]) & (lk > top - windows[1])
    x = np.where(keep, x, -np.inf)
    m = x.max((-2, -1), keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.where(keep, np.exp(x - m), 0.0)
    tot = e.sum((-2, -1))
    num = np.einsum("...ijl,...jc,...lc->...ic", e, v1, v2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot[..., None] > 0, num / np.where(tot > 0, tot, 1.0)[..., None], 0.0)
