"""Float64 references for MoE routing (re-exported by ``softcore.reference``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _f64(x: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(x, dtype=np.float64)


def _sigmoid(x: NDArray[np.floating[Any]]) -> NDArray[np.floating[Any]]:
    with np.errstate(over="ignore"):
        return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _stable_top(keys: NDArray[Any], k: int) -> NDArray[np.intp]:
    """Indices of the k largest keys per row, largest first, ties to the lower index."""
    return np.argsort(-keys, axis=-1, kind="stable")[..., :k]


def top_k_gating(
    logits: ArrayLike,
    k: int,
    *,
    order: str = "softmax_topk",
    renormalize: bool = True,
    temperature: float = 1.0,
    score: str = "softmax",
    bias: ArrayLike | None = None,
    activation: str | None = None,
    n_group: int = 1,
    topk_group: int = 1,
    group_score: str | None = None,
) -> tuple[NDArray[np.floating[Any]], NDArray[np.int64]]:
    """(weights, indices) of the k selected experts per row, by weight descending, ties to the
    lower id.

    Selection key: the logits when there is neither bias nor activation (softmax and sigmoid are
    increasing, so this is the choice by score); act(logits) / tau with an activation; score
    (+ bias) with a bias or with groups ranked by "sum_top2", score being the softmax
    probability (softmax_topk), the scaled logit (topk_softmax) or the sigmoid. A selected
    expert whose key is -inf (a -inf logit, or a dropped group's expert filling k) weighs 0.

    Weights: softmax_topk takes the full-row softmax at the selected experts (divided by their
    sum if renormalize; when the selected probabilities are all 0 the weights stay 0),
    topk_softmax the softmax over the selected scaled logits, sigmoid
    the sigmoid (divided by the sum if renormalize and the sum is positive).
    """
    x0 = _f64(logits)
    shape = x0.shape
    ne = shape[-1]
    x0 = x0.reshape(-1, ne)
    x: NDArray[np.floating[Any]] = x0
    if activation == "sigmoid":
        x = _sigmoid(x)
    elif activation == "tanh":
        x = np.tanh(x)
    x = x / temperature
    mode = group_score or ("sum_top2" if score == "sigmoid" else "max")
    by_score = bias is not None or (n_group > 1 and mode == "sum_top2")
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        lse = np.logaddexp.reduce(x, axis=-1, keepdims=True)
        keys: NDArray[np.floating[Any]]
        if not by_score:
            keys = x0 if activation is None else x
        else:
            if score == "sigmoid":
                s = _sigmoid(x)
            elif order == "softmax_topk":
                s = np.exp(x - lse)
            else:
                s = x
            keys = s + (0.0 if bias is None else _f64(bias))
        keys = keys.copy()
        if n_group > 1:
            gs = keys.reshape(len(keys), n_group, ne // n_group)
            if mode == "max":
                gscore = gs.max(-1)
            else:
                gscore = -np.sort(-gs, axis=-1)[..., :2].sum(-1)
            keep = _stable_top(gscore, topk_group)
            mask = np.ones(gscore.shape, dtype=bool)
            np.put_along_axis(mask, keep, False, axis=-1)
            gs[mask] = -np.inf
        idx = _stable_top(keys, k)
        xs = np.take_along_axis(x, idx, axis=-1)
        # A selected key of -inf (a -inf logit, or a dropped group's expert filling k): weight 0.
        live = np.take_along_axis(keys, idx, axis=-1) != -np.inf
        if score == "sigmoid":
            w = np.where(live, _sigmoid(xs), 0.0)
            if renormalize:
                tot = w.sum(-1, keepdims=True)
                w = np.where(tot > 0, w / np.where(tot > 0, tot, 1.0), w)
        elif order == "softmax_topk" and not renormalize:
            w = np.where(live, np.exp(xs - lse), 0.0)
        else:
            m = np.where(live, xs, -np.inf).max(-1, keepdims=True)
            e = np.where(live & (m != -np.inf), np.exp(xs - m), 0.0)
            tot = e.sum(-1, keepdims=True)
            w = np.where(tot > 0, e / np.where(tot > 0, tot, 1.0), 0.0)
    # Order by weight descending, ties to the lower expert id.
    perm = np.lexsort((idx, -w), axis=-1)
    w = np.take_along_axis(w, perm, axis=-1)
    idx = np.take_along_axis(idx, perm, axis=-1)
    return w.reshape(*shape[:-1], k), idx.reshape(*shape[:-1], k).astype(np.int64)


def noisy_logits(
    clean: ArrayLike, noise_logits: ArrayLike, normal: ArrayLike
) -> NDArray[np.floating[Any]]:
    """clean + normal * softplus(noise_logits) (Shazeer et al. 2017)."""
    s = _f64(noise_logits)
    return _f64(clean) + _f64(normal) * np.logaddexp(0.0, s)


def moe_dispatch(
    indices: ArrayLike, num_experts: int, *, capacity: int | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(positions, counts): choice-major, token order within a choice; -1 = over capacity."""
    idx = np.asarray(indices, dtype=np.int64)
    pos = np.full(idx.shape, -1, dtype=np.int64)
    counts = np.zeros(num_experts, dtype=np.int64)
    for c in range(idx.shape[1]):
        for t in range(idx.shape[0]):
            e = idx[t, c]
            if capacity is None or counts[e] < capacity:
                pos[t, c] = counts[e]
            counts[e] += 1
    return pos, counts


def moe_gather(
    x: ArrayLike,
    indices: ArrayLike,
    positions: ArrayLike,
    capacity: int,
    *,
    num_experts: int | None = None,
) -> NDArray[np.floating[Any]]:
    """(E, C, D) expert buffers; empty slots 0."""
    x = _f64(x)
    idx = np.asarray(indices)
    pos = np.asarray(positions)
    ne = int(idx.max()) + 1 if num_experts is None and idx.size else (num_experts or 0)
    out = np.zeros((ne, capacity, x.shape[1]))
    for t, c in zip(*np.nonzero(pos >= 0)):
        out[idx[t, c], pos[t, c]] = x[t]
    return out


def moe_combine(
    expert_out: ArrayLike, indices: ArrayLike, positions: ArrayLike, weights: ArrayLike
) -> NDArray[np.floating[Any]]:
    """(T, D): sum over kept choices of weight * expert output."""
    eo = _f64(expert_out)
    idx = np.asarray(indices)
    pos = np.asarray(positions)
    w = _f64(weights)
    out = np.zeros((idx.shape[0], eo.shape[2]))
    for t, c in zip(*np.nonzero(pos >= 0)):
        out[t] += w[t, c] * eo[idx[t, c], pos[t, c]]
    return out


def load_balancing_loss(probs: ArrayLike, indices: ArrayLike, *, choices: str = "first") -> float:
    """Switch: E * sum_i f_i P_i; f from the first choice or from all k (normalised by T k)."""
    p = _f64(probs)
    idx = np.asarray(indices)
    ne = p.shape[1]
    sel = idx[:, :1] if choices == "first" else idx
    f = np.bincount(sel.ravel(), minlength=ne) / sel.size
    return float(ne * np.dot(f, p.mean(0)))


def router_z_loss(logits: ArrayLike) -> float:
    """Mean over tokens of logsumexp(logits)^2 (ST-MoE)."""
    x = _f64(logits).reshape(-1, np.shape(logits)[-1])
    z = np.logaddexp.reduce(x, axis=-1)
    return float(np.mean(z * z))
