"""`python -m softcore bench --plot FILE.png`: softmax throughput against array size with the
measured copy bandwidth as its roofline, and exact against linear causal attention time
against n, showing where they cross. Needs matplotlib (`pip install softcore[plot]`)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

import softcore
from softcore._bench_core import interleaved_medians


def softmax_sweep(quick: bool) -> tuple[list[int], list[float], list[float]]:
    """Bytes of x, and GB/s (x read + y written) of softmax and of np.copyto, per size."""
    rng = np.random.default_rng(0)
    sizes, ours, copy = [], [], []
    top = 22 if quick else 26
    for e in range(12, top + 1, 2):
        x = rng.standard_normal((max(1, 2**e // 1024), min(1024, 2**e)), dtype=np.float32)
        out = np.empty_like(x)
        t_copy, t_ours = interleaved_medians(
            [functools.partial(np.copyto, out, x), functools.partial(softcore.softmax, x)],
            budget=0.1 if quick else 0.3,
        )
        sizes.append(x.nbytes)
        copy.append(2 * x.nbytes / t_copy / 1e9)
        ours.append(2 * x.nbytes / t_ours / 1e9)
        print(
            f"  plot: softmax {x.shape}: {ours[-1]:.1f} GB/s, copy {copy[-1]:.1f} GB/s", flush=True
        )
    return sizes, ours, copy


def attention_sweep(quick: bool) -> tuple[list[int], list[float], list[float]]:
    """n, and ms of exact and of linear causal attention (8 heads, d = 64, f32)."""
    rng = np.random.default_rng(0)
    ns, exact, linear = [], [], []
    top = 2048 if quick else 4096
    n = 64
    while n <= top:
        q, k, v = (rng.standard_normal((8, n, 64), dtype=np.float32) for _ in range(3))
        te, tl = interleaved_medians(
            [
                functools.partial(softcore.softmax_attention, q, k, v, causal=True),
                functools.partial(softcore.linear_attention, q, k, v, causal=True),
            ],
            budget=0.1 if quick else 0.3,
        )
        ns.append(n)
        exact.append(te * 1e3)
        linear.append(tl * 1e3)
        print(f"  plot: n={n}: exact {exact[-1]:.2f} ms, linear {linear[-1]:.2f} ms", flush=True)
        n *= 2
    return ns, exact, linear


def plot(path: str, quick: bool, head: dict[str, Any]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise SystemExit("--plot needs matplotlib: pip install 'softcore[plot]'") from e
    sizes, ours, copy = softmax_sweep(quick)
    ns, exact, linear = attention_sweep(quick)
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    a.plot(sizes, ours, "o-", label="softcore.softmax (f32)")
    a.plot(sizes, copy, "k--", label="np.copyto of the same bytes (roofline)")
    a.set_xscale("log", base=2)
    a.set_xlabel("bytes of x")
    a.set_ylabel("GB/s (x read + y written)")
    a.set_title("softmax throughput against array size")
    a.legend()
    a.grid(alpha=0.3)
    b.plot(ns, exact, "o-", label="softmax_attention causal (exact)")
    b.plot(ns, linear, "s-", label="linear_attention causal (elu+1)")
    b.set_xscale("log", base=2)
    b.set_yscale("log")
    b.set_xlabel("sequence length n (8 heads, d = 64, f32)")
    b.set_ylabel("ms")
    cross = next((n for n, te, tl in zip(ns, exact, linear) if tl < te), None)
    title = "exact vs linear causal attention"
    b.set_title(title + (f": linear faster from n = {cross}" if cross else ""))
    b.legend()
    b.grid(alpha=0.3)
    fig.suptitle(
        f"softcore {head['softcore']}, {head['cpu']}, isa {head['isa']}, "
        f"{head['threads']} thread(s)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
