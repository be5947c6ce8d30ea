"""The comparison behind `python -m softcore bench` and benches/compare.py.

Every row times softcore and its peers in the same run, on the same arrays, as medians of
interleaved calls (`_bench_core`), softcore called as users call it (no `out=`), and reports
ratios. NumPy's BLAS uses its own thread count: run with OPENBLAS_NUM_THREADS=1 for
single-thread linalg ratios.
"""

from __future__ import annotations

import functools
import json
import os
import time
from typing import Any, Callable, Literal, cast

import numpy as np

import softcore
from softcore._bench_attention import attention_cases
from softcore._bench_core import Bench, Fn, cpu_model
from softcore._bench_moe import gating_cases
from softcore._bench_papers import papers_cases


def best_of(f: Callable[[], object], budget: float = 0.25, max_reps: int = 200) -> float:
    """The best time of repeated calls (at least 3, for about `budget` seconds): for the
    benches/ scripts that study one kernel's variants; the bench table uses medians."""
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


def _softmax_case(bench: Bench, x: np.ndarray, peers: dict[str, Any]) -> None:
    out = np.empty_like(x)
    p: dict[str, Fn] = {
        "numpy": functools.partial(numpy_softmax, x),
        "numpy(out=)": functools.partial(numpy_softmax_out, x, out),
    }
    if "scipy" in peers:
        p["scipy"] = functools.partial(peers["scipy"].softmax, x, axis=-1)
    if "torch" in peers:
        p["torch"] = functools.partial(peers["torch"].softmax, peers["torch"].from_numpy(x), -1)
    copy = ("np.copyto", functools.partial(np.copyto, out, x))
    bench.row("softmax f32", x.shape, functools.partial(softcore.softmax, x), p, floor=copy)


_EXPLICIT: tuple[
    Literal["two_pass", "three_pass_reload", "three_pass_recompute", "online"], ...
] = ("two_pass", "three_pass_reload", "three_pass_recompute", "online")


def _auto_case(bench: Bench, x: np.ndarray) -> None:
    """`auto` against every explicit algorithm on the same array (above 1: auto is faster), and
    the compute floor: logsumexp, one exponential pass over x."""
    p: dict[str, Fn] = {a: functools.partial(softcore.softmax, x, algorithm=a) for a in _EXPLICIT}
    floor = ("logsumexp", functools.partial(softcore.logsumexp, x))
    bench.row("softmax auto vs", x.shape, functools.partial(softcore.softmax, x), p, floor=floor)


def _family_cases(bench: Bench, x: np.ndarray, peers: dict[str, Any]) -> None:
    p: dict[str, Fn] = {"numpy": functools.partial(numpy_log_softmax, x)}
    if "scipy" in peers:
        p["scipy"] = functools.partial(peers["scipy"].log_softmax, x, axis=-1)
    if "torch" in peers:
        xt = peers["torch"].from_numpy(x)
        p["torch"] = functools.partial(peers["torch"].log_softmax, xt, -1)
    bench.row("log_softmax f32", x.shape, functools.partial(softcore.log_softmax, x), p)
    p = {"numpy": functools.partial(numpy_logsumexp, x)}
    if "scipy" in peers:
        p["scipy"] = functools.partial(peers["scipy"].logsumexp, x, axis=-1)
    bench.row("logsumexp f32", x.shape, functools.partial(softcore.logsumexp, x), p)
    xt = np.ascontiguousarray(x.T)
    p = {"numpy": functools.partial(numpy_softmax, xt, axis=0)}
    if "scipy" in peers:
        p["scipy"] = functools.partial(peers["scipy"].softmax, xt, axis=0)
    bench.row("softmax f32 axis=0", xt.shape, functools.partial(softcore.softmax, xt, axis=0), p)
    x64 = x.astype(np.float64)
    p = {"numpy": functools.partial(numpy_softmax, x64)}
    bench.row("softmax f64", x64.shape, functools.partial(softcore.softmax, x64), p)


def _threads_case(bench: Bench, x: np.ndarray, threads: int) -> None:
    def on(n: int) -> object:
        softcore.set_num_threads(n)
        return softcore.softmax(x)

    bench.row(
        "softmax 2 threads vs",
        x.shape,
        functools.partial(on, 2),
        {"1 thread": functools.partial(on, 1)},
    )
    softcore.set_num_threads(threads)


def _linalg_cases(bench: Bench, rng: np.random.Generator, quick: bool) -> None:
    """pinv on SOFT-like landmark kernels and SOFT attention against NumPy."""
    batch, m = (16, 49) if quick else (64, 49)
    lm = 0.25 * rng.standard_normal((batch, m, 32))
    sq = ((lm[:, :, None, :] - lm[:, None, :, :]) ** 2).sum(-1)
    k = np.exp(-np.maximum(sq, 0) / 2).astype(np.float32)
    peers: dict[str, Fn] = {"np.linalg.pinv": functools.partial(np.linalg.pinv, k)}
    bench.row("pinv f32 (SOFT K(L,L))", k.shape, functools.partial(softcore.pinv, k), peers)
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

    ours = functools.partial(softcore.soft_attention, q, q, lm32)
    bench.row("soft_attention f32, 49 lm", q.shape, ours, {"numpy": numpy_soft})


def _caches(c: dict[str, Any]) -> str:
    def size(b: int) -> str:
        return f"{b >> 20} MiB" if b >= 1 << 20 else f"{b >> 10} KiB"

    return (
        f"L1d {size(c['l1d_bytes'])}, L2 {size(c['l2_bytes'])}, L3 {size(c['l3_bytes'])}; auto: "
        f"reload for rows <= {size(c['softmax_reload_max_row_bytes'])}, streaming stores for "
        f"outputs > {size(c['softmax_stream_min_bytes'])}"
    )


def header(threads: int, peers: dict[str, Any]) -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "softcore": softcore.__version__,
        "isa": softcore.isa(),
        "threads": threads,
        "cpu": cpu_model(),
        "caches": {k: v for k, v in softcore.cpu_info().items() if k.endswith("bytes")},
        "numpy": np.__version__,
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", "unset: all cores"),
        "peers": {k: getattr(v, "__version__", "") for k, v in peers.items()},
    }


def run(
    quick: bool = False,
    threads: int = 1,
    json_path: str | None = None,
    plot_path: str | None = None,
) -> None:
    softcore.set_num_threads(threads)
    peers = _peers()
    if "torch" in peers:
        peers["torch"].set_num_threads(threads)
    rng = np.random.default_rng(0)
    head = header(threads, peers)
    print(
        f"softcore {head['softcore']}  isa={head['isa']}  threads={threads}  cpu: {head['cpu']}\n"
        f"caches: {_caches(head['caches'])}\n"
        f"numpy {head['numpy']} (OPENBLAS_NUM_THREADS={head['openblas_num_threads']})"
        + "".join(f"  {k}" for k in peers)
    )
    print(
        "ms, medians of interleaved calls, softcore without out=; (Nx) = peer time / softcore "
        "time: above 1, softcore is faster; a floor is what the same bytes cost to copy or read",
        flush=True,
    )
    bench = Bench(quick=quick)
    shapes = [(4096, 1024), (65536, 64), (64, 8192), (256, 65536), (1, 1 << 24)]
    if quick:
        shapes = [(1024, 1024), (16384, 64), (64, 8192), (16, 65536), (1, 1 << 22)]
    for shape in shapes:
        xs = rng.standard_normal(shape, dtype=np.float32)
        _softmax_case(bench, xs, peers)
        _auto_case(bench, xs)
    x = rng.standard_normal(shapes[0], dtype=np.float32)
    _family_cases(bench, x, peers)
    if (os.cpu_count() or 1) > 1:
        _threads_case(bench, x, threads)
    _linalg_cases(bench, rng, quick)
    torch = peers.get("torch")
    gating_cases(rng, bench, torch, quick)
    attention_cases(rng, bench, torch, quick)
    papers_cases(rng, bench, torch, quick)
    if json_path is not None:
        with open(json_path, "w") as f:
            json.dump({"machine": head, "rows": bench.records}, f, indent=1)
        print(f"wrote {json_path}")
    if plot_path is not None:
        from softcore._bench_plot import plot

        plot(plot_path, quick, head)
        print(f"wrote {plot_path}")
