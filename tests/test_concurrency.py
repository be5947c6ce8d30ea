"""Concurrency and memory: Python threads calling every family at once get bitwise the results
of one thread (the GIL is released during compute; nothing is shared between calls), and many
calls do not grow the process (no leak of outputs, scratch or borrows)."""

from __future__ import annotations

import threading

import numpy as np
import softcore


def calls():
    """One call of every public computing function on small fixed inputs: name -> callable."""
    rng = np.random.default_rng(7)

    def f32(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    x = f32(64, 300)
    logits = f32(256, 16)
    w, idx = softcore.top_k_gating(logits, 2)
    pos, _ = softcore.moe_dispatch(idx, 16, capacity=40)
    tokens = f32(256, 8)
    buf = softcore.moe_gather(tokens, idx, pos, 40, num_experts=16)
    a = f32(4, 12, 9)
    p = softcore.pinv(a)
    q, k, v = f32(2, 96, 16), f32(2, 96, 16), f32(2, 96, 16)
    kc = f32(2, 1, 200, 16)
    t = f32(2, 24, 8)
    hw = f32(16, 8)
    ra = f32(20, 6)
    return {
        "softmax": lambda: softcore.softmax(x),
        "softmax_axis0": lambda: softcore.softmax(x, axis=0),
        "log_softmax": lambda: softcore.log_softmax(x, where=x > -1),
        "logsumexp": lambda: softcore.logsumexp(x),
        "power_softmax": lambda: softcore.power_softmax(x, 4),
        "pinv": lambda: softcore.pinv(a),
        "pinv_backward": lambda: softcore.pinv_backward(a, p, np.ones_like(p)),
        "soft_attention": lambda: softcore.soft_attention(q, v, num_landmarks=8),
        "top_k_gating": lambda: softcore.top_k_gating(logits, 4),
        "noisy_logits": lambda: softcore.noisy_logits(logits, logits, logits),
        "moe_dispatch": lambda: softcore.moe_dispatch(idx, 16, capacity=40),
        "moe_gather": lambda: softcore.moe_gather(tokens, idx, pos, 40, num_experts=16),
        "moe_combine": lambda: softcore.moe_combine(buf, idx, pos, w),
        "load_balancing_loss": lambda: softcore.load_balancing_loss(softcore.softmax(logits), idx),
        "router_z_loss": lambda: softcore.router_z_loss(logits),
        "softmax_regression": lambda: softcore.softmax_regression(
            ra.astype(np.float64), np.full(20, 0.05), np.zeros(6), hessian=True
        ),
        "softmax_attention": lambda: softcore.softmax_attention(q, k, v, causal=True),
        "linear_attention": lambda: softcore.linear_attention(q, k, v),
        "linear_causal": lambda: softcore.linear_attention(
            q, k, v, causal=True, decay=np.full((2, 96), -0.1, np.float32), return_state=True
        ),
        "causal_dot_product": lambda: softcore.causal_dot_product(q, k, v),
        "hedgehog_feature_map": lambda: softcore.hedgehog_feature_map(q, hw),
        "decode_attention": lambda: softcore.decode_attention(q[:, :1], kc, kc, num_splits=3),
        "inline_attention": lambda: softcore.inline_attention(q, k, v),
        "rala_attention": lambda: softcore.rala_attention(q, k, v),
        "agent_attention": lambda: softcore.agent_attention(q, k, v, num_agents=9),
        "agent_pool": lambda: softcore.agent_pool(q, 9),
        "tensor_attention": lambda: softcore.tensor_attention(t, t, t, t, t),
    }


def fingerprint(result):
    """The bytes of every array in a result (arrays, tuples of them, dicts of info)."""
    if isinstance(result, np.ndarray):
        return [result.dtype.str, result.shape, result.tobytes()]
    if isinstance(result, (tuple, list)):
        return [fingerprint(r) for r in result]
    if isinstance(result, dict):
        return sorted((k, fingerprint(v)) for k, v in result.items())
    return [repr(result)]


def test_four_python_threads_give_the_results_of_one():
    fns = calls()
    want = {name: fingerprint(f()) for name, f in fns.items()}
    names = sorted(fns)
    errors = []

    def worker(seed):
        order = np.random.default_rng(seed).permutation(names * 3)
        for name in order:
            got = fingerprint(fns[name]())
            if got != want[name]:
                errors.append(name)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, f"results differed under 4 threads: {sorted(set(errors))}"


def rss_bytes():
    """Resident set size (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_many_calls_do_not_grow_the_process():
    fns = list(calls().values())
    for f in fns * 20:  # warm up: allocator pools, thread pool, caches
        f()
    before = rss_bytes()
    total = 100_000
    for i in range(total):
        fns[i % len(fns)]()
    grown = rss_bytes() - before
    assert grown < 20 * 2**20, f"RSS grew by {grown / 2**20:.1f} MB over {total} calls"
