"""MoE gating rows of `python -m softcore bench` (and benches/gating_compare.py)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

import softcore
from softcore._bench_core import Bench


def numpy_gating(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mixtral/HF routing in NumPy: softmax, top k by argpartition, ordered by weight (ties to
    the lower id), renormalised."""
    e = np.exp(x - x.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    idx = np.argpartition(-p, k - 1, axis=-1)[:, :k]
    w = np.take_along_axis(p, idx, -1)
    order = np.lexsort((idx, -w), axis=-1)
    idx = np.take_along_axis(idx, order, -1)
    w = np.take_along_axis(w, order, -1)
    return w / w.sum(-1, keepdims=True), idx


def torch_gating(torch: Any, x: Any, k: int) -> Any:
    w, idx = torch.topk(torch.softmax(x, dim=-1), k, dim=-1)
    return w / w.sum(-1, keepdim=True), idx


# (tokens, experts, k, extra options): the three shapes and DeepSeek-V3-style routing.
CASES: list[tuple[int, int, int, dict[str, Any]]] = [
    (65536, 64, 2, {}),
    (65536, 8, 2, {}),
    (16384, 256, 8, {}),
    (16384, 256, 8, {"score": "sigmoid", "bias": True, "n_group": 8, "topk_group": 4}),
]


def gating_cases(
    rng: np.random.Generator,
    bench: Bench,
    torch: Any = None,
    quick: bool = False,
) -> list[str]:
    rows = []
    for t, e, k, kw in CASES:
        t = t // 4 if quick else t
        x = rng.standard_normal((t, e)).astype(np.float32)
        if kw.get("bias"):
            kw = dict(kw, bias=(0.01 * rng.standard_normal(e)).astype(np.float32))
        ours = functools.partial(softcore.top_k_gating, x, k, **kw)
        peers = {"numpy": (functools.partial(numpy_gating, x, k))}
        if torch is not None and not kw:
            xt = torch.from_numpy(x)
            peers["torch"] = functools.partial(torch_gating, torch, xt, k)
        name = f"top_k_gating k={k}" + (" v3" if kw else "")
        rows.append(bench.row(name, x.shape, ours, peers))
    return rows
