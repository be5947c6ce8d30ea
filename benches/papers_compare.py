"""The attention papers' variants (decoding, InLine, RALA, Agent, tensor attention) against
NumPy transcriptions and (when importable) PyTorch, f32: medians of interleaved runs (peer,
softcore, peer, softcore, ...), softcore called as users call it.

OPENBLAS_NUM_THREADS=1 python benches/papers_compare.py [--quick] [decode] [linear] [agent] [tensor]
"""

from __future__ import annotations

import platform
import sys

import numpy as np
import softcore
from attention_compare import interleaved, row

try:
    import torch
except ImportError:  # the torch column is optional
    torch = None


def threads(n):
    softcore.set_num_threads(n)
    if torch:
        torch.set_num_threads(n)


def decode(rounds):
    """Split-KV decoding against one read of the KV bytes (decoding is memory-bound)."""
    rng = np.random.default_rng(0)
    q = rng.standard_normal((32, 128)).astype(np.float32)
    k = rng.standard_normal((32, 32768, 128)).astype(np.float32)
    v = rng.standard_normal((32, 32768, 128)).astype(np.float32)
    gb = (k.nbytes + v.nbytes) / 1e9
    sc = np.einsum("hd,hsd->hs", q[:, :64], k[:, :4096, :64]) / np.sqrt(128)
    phi = float(sc.max())  # an estimate of the scores' max from a sample, as FlashDecoding++
    tk, tv = (torch.from_numpy(x) for x in (k, v)) if torch else (None, None)
    tq = torch.from_numpy(q)[:, None, :] if torch else None
    for nt in (1, 2):
        threads(nt)
        peers = [("np.sum read", lambda: (k.sum(), v.sum()))]
        if torch:
            peers.append(("torch.sum read", lambda: (tk.sum(), tv.sum())))
            sdpa = torch.nn.functional.scaled_dot_product_attention
            peers.append(("torch sdpa", lambda f=sdpa: f(tq, tk, tv)))
        peers.append(("synchronised", lambda: softcore.decode_attention(q, k, v)))
        t = row(
            f"decode 32 heads s=32768 d=128 {nt}t unified",
            peers,
            lambda: softcore.decode_attention(q, k, v, unified_max=phi),
            rounds,
        )
        print(f"  {gb / t:.1f} GB/s of KV read by softcore unified")
    _, _, info = softcore.decode_attention(q, k, v, unified_max=phi, return_info=True)
    print(f"  unified_max fallback rows: {info['fallback_rows']} of 32")
    q1, k1, v1 = q[:1], k.reshape(1, -1, 128)[:, :262144], v.reshape(1, -1, 128)[:, :262144]
    ts = {}
    for nt in (1, 2):
        threads(nt)
        fns = [lambda: softcore.decode_attention(q1, k1, v1)]
        if torch:
            t1 = (torch.from_numpy(q1)[:, None], torch.from_numpy(k1), torch.from_numpy(v1))
            fns.append(lambda t1=t1: torch.nn.functional.scaled_dot_product_attention(*t1))
        ts[nt] = interleaved(fns, rounds)
        cols = "  ".join(f"{x * 1e3:.2f} ms" for x in ts[nt])
        print(f"decode 1 head s=262144 {nt}t: softcore, torch: {cols}")
    for i, name in enumerate(["softcore", "torch"][: len(ts[1])]):
        print(f"  {name} two threads / one: {ts[1][i] / ts[2][i]:.2f}x")
    threads(1)


def elu1(x):
    return np.where(x > 0, x + 1, np.exp(np.minimum(x, 0)))


def numpy_inline(q, k, v):
    """InLine as the official layer writes it (identity map), in NumPy."""
    n, d = k.shape[-2], q.shape[-1]
    c = (d**-0.5 / n) ** 0.5
    kv = (np.swapaxes(k, -1, -2) * c) @ (v * c)
    km = k.mean(-2, keepdims=True)
    return q @ kv + (1 - q @ np.swapaxes(km, -1, -2) * d**-0.5) * v.mean(-2, keepdims=True)


def numpy_rala(q, k, v):
    """RALA's core as the official layer writes it (without RoPE and LePE), in NumPy."""
    n, d = k.shape[-2], q.shape[-1]
    fq, fk = elu1(q), elu1(k)
    eff = d**-0.5 * fq.mean(-2, keepdims=True) @ np.swapaxes(fk, -1, -2)
    eff = np.exp(eff - eff.max(-1, keepdims=True))
    eff = np.swapaxes(eff / eff.sum(-1, keepdims=True), -1, -2)
    kk = fk * eff * n
    z = 1 / (fq @ np.swapaxes(kk.mean(-2, keepdims=True), -1, -2) + 1e-6)
    kv = (np.swapaxes(kk, -1, -2) * n**-0.5) @ (v * n**-0.5)
    return fq @ kv * z


def linear_forms(rounds):
    """InLine and RALA at (8, 16384, 64) against NumPy transcriptions of the official code."""
    threads(1)
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((8, 16384, 64)).astype(np.float32) for _ in range(3))
    row(
        "inline_attention (8,16384,64)",
        [("numpy", lambda: numpy_inline(q, k, v))],
        lambda: softcore.inline_attention(q, k, v),
        rounds,
    )
    row(
        "rala_attention (8,16384,64)",
        [("numpy", lambda: numpy_rala(q, k, v))],
        lambda: softcore.rala_attention(q, k, v),
        rounds,
    )
    row(
        "linear_attention elu1 (8,16384,64)",
        [],
        lambda: softcore.linear_attention(q, k, v),
        rounds,
    )


def numpy_agent(q, k, v, na=49):
    """Agent attention as the official layer writes it (agents pooled from q), in NumPy."""
    b, n, d = q.shape
    edges = [(i * n // na, -((-(i + 1) * n) // na)) for i in range(na)]
    a = np.stack([q[:, x:y].mean(1) for x, y in edges], 1)
    s = d**-0.5

    def softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    va = softmax(s * a @ np.swapaxes(k, -1, -2)) @ v
    return softmax(s * q @ np.swapaxes(a, -1, -2)) @ va


def agent(rounds):
    """agent_attention (8, 4096, 64), 49 agents, against the NumPy transcription."""
    threads(1)
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((8, 4096, 64)).astype(np.float32) for _ in range(3))
    row(
        "agent_attention (8,4096,64) 49 agents",
        [("numpy", lambda: numpy_agent(q, k, v))],
        lambda: softcore.agent_attention(q, k, v),
        rounds,
    )


def numpy_tensor(q, k1, k2, v1, v2, chunk=16):
    """Exact tensor attention in NumPy, chunked over queries (chunk x s x s scores at a time)."""
    n, d = q.shape
    out = np.empty((n, v1.shape[-1]), q.dtype)
    for i0 in range(0, n, chunk):
        qs = q[i0 : i0 + chunk] * d**-0.5
        x = (qs[:, None, :] * k1[None]) @ k2.T  # (c, s1, s2)
        x = np.exp(x - x.max((1, 2), keepdims=True))
        num = ((x @ v2) * v1[None]).sum(1)
        out[i0 : i0 + chunk] = num / x.sum((1, 2))[:, None]
    return out


def tensor(rounds):
    """tensor_attention exact (n = 512, d = 32) against NumPy; windowed causal linear in n."""
    threads(1)
    rng = np.random.default_rng(0)
    x = [rng.standard_normal((512, 32)).astype(np.float32) for _ in range(5)]
    row(
        "tensor_attention exact n=512 d=32",
        [("numpy chunked", lambda: numpy_tensor(*x))],
        lambda: softcore.tensor_attention(*x),
        max(3, rounds // 3),
    )
    ts = []
    for n in (2048, 4096, 8192):
        xs = [rng.standard_normal((n, 64)).astype(np.float32) for _ in range(5)]
        (t,) = interleaved(
            [lambda xs=xs: softcore.tensor_attention(*xs, causal=True, windows=(64, 32))],
            max(3, rounds // 3),
        )
        ts.append(t)
        print(f"tensor_attention causal windows (64, 32) n={n} d=64: {t * 1e3:.1f} ms")
    print(f"  t(8192) / t(4096) = {ts[2] / ts[1]:.2f}, t(4096) / t(2048) = {ts[1] / ts[0]:.2f}")


def main(argv):
    quick = "--quick" in argv
    rounds = 5 if quick else 11
    which = [a for a in argv if not a.startswith("-")] or ["decode"]
    print(f"# {platform.processor() or platform.machine()}  isa={softcore.isa()}")
    if "decode" in which:
        decode(rounds)
    if "linear" in which:
        linear_forms(rounds)
    if "agent" in which:
        agent(rounds)
    if "tensor" in which:
        tensor(rounds)


if __name__ == "__main__":
    main(sys.argv[1:])
