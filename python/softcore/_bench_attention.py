"""The attention rows of `python -m softcore bench`: softcore against the same formula in NumPy
and, when importable, PyTorch (SDPA; linear attention written in torch ops)."""

from __future__ import annotations

import functools
from typing import Any, cast

import numpy as np

import softcore
from softcore._bench_core import Bench, Fn


def _elu1(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x + 1, np.exp(np.minimum(x, 0)))


def numpy_softmax_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    s = q @ np.swapaxes(k, -1, -2) * q.shape[-1] ** -0.5
    e = np.exp(s - s.max(-1, keepdims=True))
    return cast("np.ndarray", (e / e.sum(-1, keepdims=True)) @ v)


def numpy_linear(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    fq, fk = _elu1(q), _elu1(k)
    return cast(
        "np.ndarray", (fq @ (np.swapaxes(fk, -1, -2) @ v)) / (fq @ fk.sum(-2)[..., None] + 1e-6)
    )


def torch_linear(torch: Any, q: Any, k: Any, v: Any) -> Any:
    fq = torch.nn.functional.elu(q) + 1
    fk = torch.nn.functional.elu(k) + 1
    return (fq @ (fk.transpose(-1, -2) @ v)) / (fq @ fk.sum(-2)[..., None] + 1e-6)


def torch_chunked_causal(torch: Any, q: Any, k: Any, v: Any, c: int = 64) -> Any:
    """fla's chunk form of causal elu+1 linear attention in torch ops."""
    fq = torch.nn.functional.elu(q) + 1
    fk = torch.nn.functional.elu(k) + 1
    b, n, _ = q.shape
    fq, fk, vv = (x.reshape(b, n // c, c, x.shape[-1]) for x in (fq, fk, v))
    mask = torch.tril(torch.ones(c, c, dtype=torch.bool))
    a = (fq @ fk.transpose(-1, -2)).masked_fill(~mask, 0)
    kv = fk.transpose(-1, -2) @ vv
    s = torch.cumsum(kv, 1) - kv
    z = torch.cumsum(fk.sum(-2), 1) - fk.sum(-2)
    num = a @ vv + fq @ s
    den = a.sum(-1) + (fq @ z[..., None])[..., 0]
    return (num / (den[..., None] + 1e-6)).reshape(b, n, -1)


def attention_cases(
    rng: np.random.Generator,
    bench: Bench,
    torch: Any = None,
    quick: bool = False,
) -> list[str]:
    def qkv(n: int) -> list[np.ndarray]:
        return [rng.standard_normal((8, n, 64)).astype(np.float32) for _ in range(3)]

    rows = []
    q, k, v = qkv(1024 if quick else 2048)
    ours: Fn = functools.partial(softcore.softmax_attention, q, k, v)
    peers = {"numpy": (lambda: numpy_softmax_attention(q, k, v))}
    if torch is not None:
        tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
        sdpa = torch.nn.functional.scaled_dot_product_attention
        peers["torch sdpa"] = lambda: sdpa(tq, tk, tv)
        causal = functools.partial(softcore.softmax_attention, q, k, v, causal=True)
        sdpa_c = functools.partial(sdpa, tq, tk, tv, is_causal=True)
        rows.append(bench.row("softmax_attention f32", q.shape, ours, peers))
        rows.append(bench.row("  causal", q.shape, causal, {"torch sdpa": sdpa_c}))
    else:
        rows.append(bench.row("softmax_attention f32", q.shape, ours, peers))
    q, k, v = qkv(4096 if quick else 16384)
    peers = {"numpy": (lambda: numpy_linear(q, k, v))}
    if torch is not None:
        tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
        peers["torch"] = lambda: torch_linear(torch, tq, tk, tv)
    ours = functools.partial(softcore.linear_attention, q, k, v)
    rows.append(bench.row("linear_attention elu1", q.shape, ours, peers))
    q, k, v = qkv(1024 if quick else 4096)
    ours = functools.partial(softcore.linear_attention, q, k, v, causal=True)
    peers = {}
    if torch is not None:
        tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
        peers["torch chunked"] = lambda: torch_chunked_causal(torch, tq, tk, tv)
    rows.append(bench.row("linear_attention causal", q.shape, ours, peers))
    return rows
