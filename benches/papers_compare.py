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
from softcore._bench_papers import numpy_agent, numpy_inline, numpy_rala, numpy_tensor

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
