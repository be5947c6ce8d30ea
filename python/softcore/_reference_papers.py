"""Float64 references of the attention papers' variants: decoding, InLine, RALA."""

from __future__ import annotations

import numpy as np

from softcore._reference_attention import softmax_attention


def decode_attention(q, k, v, *, scale=None, kv_len=None):
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


def _repeat_heads(q, k):
    if q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        return np.repeat(k, q.shape[-3] // k.shape[-3], axis=-3)
    return k


def inline_attention(q, k, v, *, scale=None, feature_map="identity"):
    """InLine: the weights w_ij = s (phi(q_i).phi(k_j) - mean_j phi(q_i).phi(k_j)) + 1/N written
    out (N x N), s = d**-0.5 / N by default."""
    from softcore._reference_attention import phi

    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    k, v = _repeat_heads(q, k), _repeat_heads(q, v)
    n_keys, d = k.shape[-2], q.shape[-1]
    s = d**-0.5 / n_keys if scale is None else scale
    a = phi(q, feature_map) @ np.swapaxes(phi(k, feature_map), -1, -2)
    w = s * (a - a.mean(-1, keepdims=True)) + 1.0 / n_keys
    return w @ v


def rala_attention(q, k, v, *, scale=None, eps=1e-6):
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
    return fq @ kv * z
