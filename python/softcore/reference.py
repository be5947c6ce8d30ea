"""Float64 NumPy references: the readable definition of every softcore function.

Tests compare the kernels against these; they favour clarity over speed. Special values follow
the rules of softcore's API (docs: shared API contract): a row containing +inf or NaN gives NaN
everywhere, a row of only -inf gives NaN, a -inf entry next to a finite one gives exactly 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

ALGORITHMS = ("auto", "two_pass", "online", "three_pass_reload", "three_pass_recompute")


def _f64(x: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(x, dtype=np.float64)


def _mask(x: NDArray[Any], where: ArrayLike | None) -> NDArray[np.bool_]:
    if where is None:
        return np.ones(x.shape, dtype=bool)
    return np.broadcast_to(np.asarray(where, dtype=bool), x.shape)


def softmax(
    x: ArrayLike, axis: int = -1, *, where: ArrayLike | None = None
) -> NDArray[np.floating[Any]]:
    """exp(x - max) / sum(exp(x - max)) along ``axis`` over the kept entries.

    Masked entries give 0; a row with nothing kept gives 0s.
    """
    x = _f64(x)
    keep = _mask(x, where)
    xm = np.where(keep, x, -np.inf)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        m = np.max(xm, axis=axis, keepdims=True) if x.shape[axis] else 0.0
        e = np.exp(xm - m)
        # A row holding NaN or +inf: x - m is NaN somewhere, so the sum is NaN (PyTorch's rule).
        y = e / np.sum(e, axis=axis, keepdims=True)
    y = np.where(keep, y, 0.0)
    if where is not None:
        empty = ~np.any(keep, axis=axis, keepdims=True)
        y = np.where(empty, 0.0, y)
    return y


def log_softmax(
    x: ArrayLike, axis: int = -1, *, where: ArrayLike | None = None
) -> NDArray[np.floating[Any]]:
    """x - logsumexp(x) along ``axis``; masked entries (and rows with nothing kept) give -inf."""
    x = _f64(x)
    keep = _mask(x, where)
    xm = np.where(keep, x, -np.inf)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        m = np.max(xm, axis=axis, keepdims=True) if x.shape[axis] else 0.0
        s = np.sum(np.exp(xm - m), axis=axis, keepdims=True)
        y = (xm - m) - np.log(s)
    return np.where(keep, y, -np.inf)


def logsumexp(
    x: ArrayLike, axis: int = -1, *, where: ArrayLike | None = None
) -> NDArray[np.floating[Any]]:
    """log(sum(exp(x))) over the kept entries, ``axis`` removed.

    +inf if the row holds +inf (and no NaN), NaN with a NaN, -inf for an empty or all -inf row.
    """
    x = _f64(x)
    keep = _mask(x, where)
    xm = np.where(keep, x, -np.inf)
    if x.shape[axis] == 0:
        return np.full(np.delete(np.array(x.shape), axis % x.ndim), -np.inf)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        m = np.max(xm, axis=axis, keepdims=True)
        shift = np.where(np.isfinite(m), m, 0.0)
        r = np.log(np.sum(np.exp(xm - shift), axis=axis, keepdims=True)) + shift
    return np.asarray(np.squeeze(r, axis=axis))


def pinv(a: ArrayLike, *, ridge: float = 0.0) -> NDArray[np.floating[Any]]:
    """Moore–Penrose pseudo-inverse of each (..., m, n) matrix (of a + ridge I), by SVD."""
    a = _f64(a)
    if ridge:
        k = min(a.shape[-2:])
        a = a.copy()
        idx = np.arange(k)
        a[..., idx, idx] += ridge
    return np.linalg.pinv(a)


def pinv_backward(a: ArrayLike, a_pinv: ArrayLike, grad: ArrayLike) -> NDArray[np.floating[Any]]:
    """dL/dA through P = pinv(A) given G = dL/dP:
    -P^T G P^T + (I - A P) G^T P P^T + P^T P G^T (I - P A)."""
    a, p, g = _f64(a), _f64(a_pinv), _f64(grad)
    pt = np.swapaxes(p, -1, -2)
    gt = np.swapaxes(g, -1, -2)
    m, n = a.shape[-2:]
    i_ap = np.eye(m) - a @ p
    i_pa = np.eye(n) - p @ a
    return -pt @ g @ pt + i_ap @ gt @ p @ pt + pt @ p @ gt @ i_pa


def gaussian_kernel(x: ArrayLike, y: ArrayLike) -> NDArray[np.floating[Any]]:
    """exp(-||x_i - y_j||^2 / 2) with squared distances clamped at 0."""
    x, y = _f64(x), _f64(y)
    sq = (
        (x**2).sum(-1)[..., :, None] + (y**2).sum(-1)[..., None, :] - 2 * x @ np.swapaxes(y, -1, -2)
    )
    return np.asarray(np.exp(-np.maximum(sq, 0.0) / 2))


def segment_means(q: ArrayLike, num_landmarks: int) -> NDArray[np.floating[Any]]:
    """Means of contiguous segments of q's rows: segment i is rows i*n//l .. (i+1)*n//l."""
    q = _f64(q)
    n = q.shape[-2]
    lm = min(num_landmarks, n)
    return np.stack([q[..., i * n // lm : (i + 1) * n // lm, :].mean(-2) for i in range(lm)], -2)


def soft_attention(
    q: ArrayLike,
    v: ArrayLike,
    landmarks: ArrayLike | None = None,
    *,
    num_landmarks: int = 49,
    ridge: float = 0.0,
    normalize: bool = False,
) -> NDArray[np.floating[Any]]:
    """SOFT: K(q, L) pinv(K(L, L)) K(L, q) v, optionally D^-1/2-normalised around the pinv."""
    q, v = _f64(q), _f64(v)
    lm = segment_means(q, num_landmarks) if landmarks is None else _f64(landmarks)
    kql = gaussian_kernel(q, lm)
    kll = gaussian_kernel(lm, lm)
    p = pinv(kll, ridge=ridge)
    if normalize:
        dinv = 1.0 / np.sqrt(kll.sum(-1))
        p = dinv[..., :, None] * p * dinv[..., None, :]
    return kql @ (p @ (np.swapaxes(kql, -1, -2) @ v))


from softcore._reference_attention import (  # noqa: E402
    causal_dot_product,
    hedgehog_feature_map,
    linear_attention,
    softmax_attention,
)
from softcore._reference_moe import (  # noqa: E402
    load_balancing_loss,
    moe_combine,
    moe_dispatch,
    moe_gather,
    noisy_logits,
    router_z_loss,
    top_k_gating,
)
from softcore._reference_papers import (  # noqa: E402
    agent_attention,
    agent_pool,
    decode_attention,
    inline_attention,
    rala_attention,
    tensor_attention,
)
from softcore._reference_variants import power_softmax, softmax_regression  # noqa: E402

__all__ = [
    "ALGORITHMS",
    "agent_attention",
    "agent_pool",
    "causal_dot_product",
    "decode_attention",
    "hedgehog_feature_map",
    "inline_attention",
    "linear_attention",
    "softmax_attention",
    "tensor_attention",
    "gaussian_kernel",
    "load_balancing_loss",
    "log_softmax",
    "logsumexp",
    "moe_combine",
    "moe_dispatch",
    "moe_gather",
    "noisy_logits",
    "pinv",
    "pinv_backward",
    "power_softmax",
    "rala_attention",
    "router_z_loss",
    "segment_means",
    "soft_attention",
    "softmax",
    "softmax_regression",
    "top_k_gating",
]
