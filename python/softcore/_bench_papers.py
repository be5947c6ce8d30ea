"""The attention papers' rows of `python -m softcore bench`: decoding, InLine, RALA, Agent and
tensor attention against NumPy transcriptions of the official formulas (and torch SDPA for
decoding, when importable)."""

from __future__ import annotations

import functools
from typing import Any, Callable, cast

import numpy as np

import softcore
from softcore._bench_core import Bench, Fn

# An attention function of (q, k, v): softcore's and the NumPy transcriptions alike.
_Attention = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _elu1(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x + 1, np.exp(np.minimum(x, 0)))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return cast("np.ndarray", e / e.sum(-1, keepdims=True))


def numpy_decode(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    s = np.einsum("hd,hsd->hs", q, k) * q.shape[-1] ** -0.5
    return cast("np.ndarray", np.einsum("hs,hsd->hd", _softmax(s), v))


def numpy_inline(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    n, d = k.shape[-2], q.shape[-1]
    kv = np.swapaxes(k, -1, -2) @ v * (d**-0.5 / n)
    km = np.swapaxes(k.mean(-2, keepdims=True), -1, -2)
    return cast("np.ndarray", q @ kv + (1 - q @ km * d**-0.5) * v.mean(-2, keepdims=True))


def numpy_rala(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    n, d = k.shape[-2], q.shape[-1]
    fq, fk = _elu1(q), _elu1(k)
    eff = _softmax(d**-0.5 * fq.mean(-2, keepdims=True) @ np.swapaxes(fk, -1, -2))
    kk = fk * np.swapaxes(eff, -1, -2) * n
    z = 1 / (fq @ np.swapaxes(kk.mean(-2, keepdims=True), -1, -2) + 1e-6)
    return cast("np.ndarray", fq @ (np.swapaxes(kk, -1, -2) @ v / n) * z)


def numpy_agent(q: np.ndarray, k: np.ndarray, v: np.ndarray, na: int = 49) -> np.ndarray:
    n, d = q.shape[-2], q.shape[-1]
    edges = [(i * n // na, -((-(i + 1) * n) // na)) for i in range(na)]
    a = np.stack([q[..., x:y, :].mean(-2) for x, y in edges], -2)
    va = _softmax(d**-0.5 * a @ np.swapaxes(k, -1, -2)) @ v
    return cast("np.ndarray", _softmax(d**-0.5 * q @ np.swapaxes(a, -1, -2)) @ va)


def numpy_tensor(
    q: np.ndarray, k1: np.ndarray, k2: np.ndarray, v1: np.ndarray, v2: np.ndarray
) -> np.ndarray:
    n, d = q.shape
    out = np.empty((n, v1.shape[-1]), q.dtype)
    for i0 in range(0, n, 16):
        x = (q[i0 : i0 + 16, None, :] * d**-0.5 * k1[None]) @ k2.T
        x = np.exp(x - x.max((1, 2), keepdims=True))
        out[i0 : i0 + 16] = ((x @ v2) * v1[None]).sum(1) / x.sum((1, 2))[:, None]
    return out


def papers_cases(
    rng: np.random.Generator,
    bench: Bench,
    torch: Any = None,
    quick: bool = False,
) -> list[str]:
    rows = []
    s = 4096 if quick else 16384
    q = rng.standard_normal((32, 128)).astype(np.float32)
    k, v = (rng.standard_normal((32, s, 128)).astype(np.float32) for _ in range(2))
    peers = {"numpy": (lambda: numpy_decode(q, k, v))}
    if torch is not None:
        tq, tk, tv = torch.from_numpy(q)[:, None], torch.from_numpy(k), torch.from_numpy(v)
        sdpa = torch.nn.functional.scaled_dot_product_attention
        peers["torch sdpa"] = lambda: sdpa(tq, tk, tv)
    ours: Fn = functools.partial(softcore.decode_attention, q, k, v)
    read = ("np.sum of K, V", lambda: (k.sum(), v.sum()))
    rows.append(bench.row("decode_attention", k.shape, ours, peers, floor=read))
    n = 4096 if quick else 16384
    q, k, v = (rng.standard_normal((8, n, 64)).astype(np.float32) for _ in range(3))
    linear: list[tuple[str, _Attention, _Attention]] = [
        ("inline_attention", softcore.inline_attention, numpy_inline),
        ("rala_attention", softcore.rala_attention, numpy_rala),
    ]
    for name, f, ref in linear:
        peer: Fn = functools.partial(ref, q, k, v)
        rows.append(bench.row(name, q.shape, functools.partial(f, q, k, v), {"numpy": peer}))
    q, k, v = (x[:, :4096] for x in (q, k, v))
    peer = functools.partial(numpy_agent, q, k, v)
    ours = functools.partial(softcore.agent_attention, q, k, v)
    rows.append(bench.row("agent_attention 49 agents", q.shape, ours, {"numpy": peer}))
    t = [rng.standard_normal((128 if quick else 256, 32)).astype(np.float32) for _ in range(5)]
    peer = functools.partial(numpy_tensor, *t)
    ours = functools.partial(softcore.tensor_attention, *t)
    rows.append(bench.row("tensor_attention exact", t[0].shape, ours, {"numpy chunked": peer}))
    return rows
