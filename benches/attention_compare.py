"""The attention core against NumPy and (when importable) PyTorch, one thread, f32: medians of
interleaved runs (peer, softcore, peer, softcore, ...), softcore called as users call it.

OPENBLAS_NUM_THREADS=1 python benches/attention_compare.py [--quick]
"""

from __future__ import annotations

import platform
import sys
import time

import numpy as np
import softcore

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # the torch column is optional
    torch = None


def interleaved(fns, rounds):
    """Median seconds of each callable, called in turn `rounds` times."""
    times = [[] for _ in fns]
    for _ in range(rounds):
        for t, f in zip(times, fns):
            t0 = time.perf_counter()
            f()
            t.append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in times]


def elu1(x):
    return np.where(x > 0, x + 1, np.exp(np.minimum(x, 0)))


def numpy_softmax_attention(q, k, v, causal):
    s = q @ np.swapaxes(k, -1, -2) * q.shape[-1] ** -0.5
    if causal:
        n = s.shape[-1]
        s = np.where(np.tri(n, dtype=bool), s, -np.inf)
    s = np.exp(s - s.max(-1, keepdims=True))
    return (s / s.sum(-1, keepdims=True)) @ v


def numpy_linear(q, k, v):
    fq, fk = elu1(q), elu1(k)
    kv = np.swapaxes(fk, -1, -2) @ v
    return (fq @ kv) / (fq @ fk.sum(-2)[..., None] + 1e-6)


def numpy_causal_linear_masked(q, k, v):
    fq, fk = elu1(q), elu1(k)
    a = np.tril(fq @ np.swapaxes(fk, -1, -2))
    return (a @ v) / (a.sum(-1, keepdims=True) + 1e-6)


def torch_chunked_causal_linear(q, k, v, c=64):
    """fla's chunk form written in PyTorch ops (the form a CPU user would write)."""
    fq = torch.nn.functional.elu(q) + 1
    fk = torch.nn.functional.elu(k) + 1
    b, n, d = q.shape
    dv = v.shape[-1]
    fq, fk, vv = (x.reshape(b, n // c, c, x.shape[-1]) for x in (fq, fk, v))
    mask = torch.tril(torch.ones(c, c, dtype=torch.bool))
    a = (fq @ fk.transpose(-1, -2)).masked_fill(~mask, 0)
    kv = fk.transpose(-1, -2) @ vv  # (b, chunks, d, dv)
    s = torch.cumsum(kv, 1) - kv  # state before each chunk
    z = torch.cumsum(fk.sum(-2), 1) - fk.sum(-2)
    num = a @ vv + fq @ s
    den = a.sum(-1) + (fq @ z[..., None])[..., 0]
    return (num / (den[..., None] + 1e-6)).reshape(b, n, dv)


def row(name, peers, sc, rounds):
    names = [p[0] for p in peers]
    ts = interleaved([p[1] for p in peers] + [sc], rounds)
    cols = "  ".join(f"{n} {t * 1e3:8.2f} ms" for n, t in zip(names, ts[:-1]))
    ratios = "  ".join(f"{t / ts[-1]:5.2f}x vs {n}" for n, t in zip(names, ts[:-1]))
    print(f"{name:34s} softcore {ts[-1] * 1e3:8.2f} ms  {cols}  {ratios}", flush=True)
    return ts[-1]


def main(quick=False):
    softcore.set_num_threads(1)
    rounds = 3 if quick else 7
    rng = np.random.default_rng(0)
    print(f"# {platform.processor() or platform.machine()}  isa={softcore.isa()}  one thread")

    def data(n, b=8, d=64):
        return [rng.standard_normal((b, n, d)).astype(np.float32) for _ in range(3)]

    q, k, v = data(4096)
    tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v)) if torch else (None,) * 3
    sdpa = torch.nn.functional.scaled_dot_product_attention if torch else None
    for causal in (False, True):
        peers = [("numpy", lambda c=causal: numpy_softmax_attention(q, k, v, c))]
        if torch:
            peers.append(("torch", lambda c=causal: sdpa(tq, tk, tv, is_causal=c)))
        row(
            f"softmax_attention (8,4096,64) c={int(causal)}",
            peers[1:] if quick and torch else peers,
            lambda c=causal: softcore.softmax_attention(q, k, v, causal=c),
            max(3, rounds // 2),
        )
    ql, kl, vl = data(16384)
    peers = [("numpy", lambda: numpy_linear(ql, kl, vl))]
    if torch:
        tql, tkl, tvl = (torch.from_numpy(x) for x in (ql, kl, vl))

        def torch_linear():
            fq = torch.nn.functional.elu(tql) + 1
            fk = torch.nn.functional.elu(tkl) + 1
            kv = fk.transpose(-1, -2) @ tvl
            return (fq @ kv) / (fq @ fk.sum(-2)[..., None] + 1e-6)

        peers.append(("torch", torch_linear))
    row("linear elu1 (8,16384,64)", peers, lambda: softcore.linear_attention(ql, kl, vl), rounds)
    peers = [] if quick else [("numpy masked", lambda: numpy_causal_linear_masked(q, k, v))]
    if torch:
        peers.append(("torch chunked", lambda: torch_chunked_causal_linear(tq, tk, tv)))
    t4 = row(
        "causal linear (8,4096,64)",
        peers,
        lambda: softcore.linear_attention(q, k, v, causal=True),
        rounds,
    )
    g = -rng.exponential(0.1, (8, 4096)).astype(np.float32)
    row(
        "causal linear, per-step decay",
        [("undecayed", lambda: softcore.linear_attention(q, k, v, causal=True))],
        lambda: softcore.linear_attention(q, k, v, causal=True, decay=g),
        rounds,
    )
    for n in (2048, 16384):
        xs = data(n)
        peers = []
        if torch and n % 64 == 0:
            ts_ = [torch.from_numpy(x) for x in xs]
            peers.append(("torch chunked", lambda ts_=ts_: torch_chunked_causal_linear(*ts_)))
        t = row(
            f"causal linear (8,{n},64)",
            peers,
            lambda xs=xs: softcore.linear_attention(*xs, causal=True),
            rounds,
        )
        print(f"  t({n}) / t(4096) = {t / t4:.2f}")
    # Decoding: one token with a state, 32 heads, d = dv = 128.
    qd, kd, vd = (rng.standard_normal((32, 1, 128)).astype(np.float32) for _ in range(3))
    st = (np.zeros((32, 128, 128), np.float32), np.zeros((32, 128), np.float32))
    ts = interleaved(
        [
            lambda: softcore.linear_attention(
                qd, kd, vd, causal=True, initial_state=st, return_state=True
            )
        ],
        200,
    )
    print(f"decoding step (32 heads, d=dv=128): {ts[0] * 1e6 / 32:.2f} us per head-step")
    # Where causal linear overtakes exact causal attention (8 heads, d = 64).
    for n in (64, 128, 256, 512, 1024, 2048):
        xs = data(n)
        te, tl = interleaved(
            [
                lambda xs=xs: softcore.softmax_attention(*xs, causal=True),
                lambda xs=xs: softcore.linear_attention(*xs, causal=True),
            ],
            rounds,
        )
        print(f"  n={n}: exact causal {te * 1e3:.2f} ms, linear causal {tl * 1e3:.2f} ms")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
