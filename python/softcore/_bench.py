"""The comparison behind `python -m softcore bench` and benches/compare.py.

Every row times softcore and its peers in the same run, on the same arrays, and reports ratios
(best of several repeats; these machines are noisy, so absolute times mean little). NumPy's BLAS
uses its own thread count: run with OPENBLAS_NUM_THREADS=1 for single-thread linalg ratios.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any, Callable, Literal, cast

import numpy as np

import softcore
from softcore._bench_attention import attention_cases
from softcore._bench_moe import gating_cases
from softcore._bench_papers import papers_cases


def best_of(f: Callable[[], object], budget: float = 0.25, max_reps: int = 200) -> float:
    """The best time of repeated calls (at least 3, for about `budget` seconds)."""
    f()
    best = float("inf")
    spent = 0.0
    reps = 0
    while (spent < budget and reps < max_reps) or reps < 3:
        t0 = time.perf_counter()
        f()
        dt = time.perf_counter() - t0
        best = min(best, dt)
        spent += dt
        reps += 1
    return best


def numpy_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """The 3-operation NumPy softmax: x - max, exp, / sum."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return cast("np.ndarray", e / e.sum(axis=axis, keepdims=True))


def numpy_softmax_out(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The same, in place in a preallocated array (no temporaries but the reductions)."""
    np.subtract(x, x.max(axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


def numpy_log_softmax(x: np.ndarray) -> np.ndarray:
    s = x - x.max(axis=-1, keepdims=True)
    return cast("np.ndarray", s - np.log(np.exp(s).sum(axis=-1, keepdims=True)))


def numpy_logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return cast("np.ndarray", np.log(np.exp(x - m).sum(axis=-1)) + m[..., 0])


def _peers() -> dict[str, Any]:
    mods: dict[str, Any] = {}
    try:
        import scipy.special  # type: ignore[import-untyped, unused-ignore]

        mods["scipy"] = scipy.special
    except ImportError:
        pass
    try:
        import torch  # type: ignore[import-not-found, unused-ignore]

        mods["torch"] = torch
    except ImportError:
        pass
    return mods


def _row(name: str, shape: tuple[int, ...], ours: float, peers: dict[str, float]) -> str:
    cells = [f"{name:<26}", f"{'x'.join(map(str, shape)):>11}", f"{ours * 1e3:8.3f}"]
    for k, t in peers.items():
        cells.append(f"{k} {t * 1e3:7.3f} ({t / ours:5.2f}x)")
    return "  ".join(cells)


def _softmax_case(x: np.ndarray, peers: dict[str, Any]) -> str:
    out = np.empty_like(x)
    ours = best_of(lambda: softcore.softmax(x, out=out))
    p = {
        "np.copyto": best_of(lambda: np.copyto(out, x)),
        "numpy": best_of(lambda: numpy_softmax(x)),
        "numpy(out=)": best_of(lambda: numpy_softmax_out(x, out)),
    }
    if "scipy" in peers:
        p["scipy"] = best_of(lambda: peers["scipy"].softmax(x, axis=-1))
    if "torch" in peers:
        xt = peers["torch"].from_numpy(x)
        p["torch"] = best_of(lambda: peers["torch"].softmax(xt, -1))
    return _row("softmax f32 auto, out=", x.shape, ours, p)


def _family_cases(x: np.ndarray, peers: dict[str, Any]) -> list[str]:
    rows = []
    out = np.empty_like(x)
    p = {"numpy": best_of(lambda: numpy_log_softmax(x))}
    if "scipy" in peers:
        p["scipy"] = best_of(lambda: peers["scipy"].log_softmax(x, axis=-1))
    if "torch" in peers:
        xt = peers["torch"].from_numpy(x)
        p["torch"] = best_of(lambda: peers["torch"].log_softmax(xt, -1))
    rows.append(
        _row("log_softmax f32, out=", x.shape, best_of(lambda: softcore.log_softmax(x, out=out)), p)
    )
    p = {"numpy": best_of(lambda: numpy_logsumexp(x))}
    if "scipy" in peers:
        p["scipy"] = best_of(lambda: peers["scipy"].logsumexp(x, axis=-1))
    rows.append(_row("logsumexp f32", x.shape, best_of(lambda: softcore.logsumexp(x)), p))
    xt = np.ascontiguousarray(x.T)
    out_t = np.empty_like(xt)
    p = {"numpy": best_of(lambda: numpy_softmax(xt, axis=0))}
    if "scipy" in peers:
        p["scipy"] = best_of(lambda: peers["scipy"].softmax(xt, axis=0))
    ours = best_of(lambda: softcore.softmax(xt, axis=0, out=out_t))
    rows.append(_row("softmax f32 axis=0, out=", xt.shape, ours, p))
    x64 = x.astype(np.float64)
    out64 = np.empty_like(x64)
    ours = best_of(lambda: softcore.softmax(x64, out=out64))
    rows.append(
        _row(
            "softmax f64 auto, out=",
            x64.shape,
            ours,
            {"numpy": best_of(lambda: numpy_softmax(x64))},
        )
    )
    return rows


def _algorithms_case(n: int) -> str:
    x = np.random.default_rng(1).standard_normal((1, n), dtype=np.float32)
    out = np.empty_like(x)
    names: tuple[Literal["two_pass", "three_pass_reload", "three_pass_recompute", "online"], ...]
    names = ("two_pass", "three_pass_reload", "three_pass_recompute", "online")
    t = {a: best_of(functools.partial(softcore.softmax, x, algorithm=a, out=out)) for a in names}
    return _row(
        "softmax two_pass vs",
        x.shape,
        t["two_pass"],
        {k: v for k, v in t.items() if k != "two_pass"},
    )


def _threads_case(x: np.ndarray, threads: int) -> str:
    out = np.empty_like(x)
    softcore.set_num_threads(1)
    one = best_of(lambda: softcore.softmax(x, out=out))
    softcore.set_num_threads(2)
    two = best_of(lambda: softcore.softmax(x, out=out))
    softcore.set_num_threads(threads)
    return _row("softmax 2 threads vs", x.shape, two, {"1 thread": one})


def _linalg_cases(rng: np.random.Generator, quick: bool) -> list[str]:
    """pinv on SOFT-like landmark kernels and SOFT attention against NumPy."""
    batch, m = (16, 49) if quick else (64, 49)
    lm = 0.25 * rng.standard_normal((batch, m, 32))
    sq = ((lm[:, :, None, :] - lm[:, None, :, :]) ** 2).sum(-1)
    k = np.exp(-np.maximum(sq, 0) / 2).astype(np.float32)
    rows = [
        _row(
            "pinv f32 (SOFT K(L,L))",
            k.shape,
            best_of(lambda: softcore.pinv(k)),
            {"np.linalg.pinv": best_of(lambda: np.linalg.pinv(k))},
        )
    ]
    heads, n = (2, 1024) if quick else (8, 4096)
    q = (rng.standard_normal((heads, n, 32)) * 32**-0.25).astype(np.float32)
    lm32 = (0.25 * rng.standard_normal((heads, 49, 32))).astype(np.float32)

    def numpy_soft() -> np.ndarray:
        def kern(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            d = (x * x).sum(-1)[..., :, None] + (y * y).sum(-1)[..., None, :]
            d = d - 2 * x @ np.swapaxes(y, -1, -2)
            return cast("np.ndarray", np.exp(-np.maximum(d, 0) / 2))

        kql = kern(q, lm32)
        return cast(
            "np.ndarray", kql @ (np.linalg.pinv(kern(lm32, lm32)) @ (np.swapaxes(kql, -1, -2) @ q))
        )

    ours = best_of(lambda: softcore.soft_attention(q, q, lm32))
    rows.append(_row("soft_attention f32, 49 lm", q.shape, ours, {"numpy": best_of(numpy_soft)}))
    return rows


def run(quick: bool = False, threads: int = 1) -> None:
    softcore.set_num_threads(threads)
    peers = _peers()
    if "torch" in peers:
        peers["torch"].set_num_threads(threads)
    rng = np.random.default_rng(0)
    # NumPy's linalg rows (pinv, soft_attention) run on OpenBLAS with its own thread count.
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "unset: all cores")
    print(
        f"softcore {softcore.__version__}  isa={softcore.isa()}  threads={threads}  "
        f"numpy {np.__version__} (OPENBLAS_NUM_THREADS={blas})" + "".join(f"  {k}" for k in peers)
    )
    print("ms, best of repeats; (Nx) = peer time / softcore time: above 1, softcore is faster")
    shapes = [(4096, 1024), (65536, 64), (64, 8192), (256, 65536), (1, 1 << 24)]
    if quick:
        shapes = [(1024, 1024), (16384, 64), (64, 8192), (16, 65536), (1, 1 << 22)]
    for shape in shapes:
        print(_softmax_case(rng.standard_normal(shape, dtype=np.float32), peers))
    print(_algorithms_case(shapes[-1][1]))
    x = rng.standard_normal(shapes[0], dtype=np.float32)
    for row in _family_cases(x, peers):
        print(row)
    if (os.cpu_count() or 1) > 1:
        print(_threads_case(x, threads))
    for row in _linalg_cases(rng, quick):
        print(row)
    for row in gating_cases(rng, best_of, _row, peers.get("torch"), quick):
        print(row)
    for row in attention_cases(rng, best_of, _row, peers.get("torch"), quick):
        print(row)
    for row in papers_cases(rng, best_of, _row, peers.get("torch"), quick):
        print(row)
