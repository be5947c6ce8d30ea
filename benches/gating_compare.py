"""top_k_gating vs NumPy (softmax + argpartition + stable reorder), f32, one thread.

OPENBLAS_NUM_THREADS=1 python benches/gating_compare.py
"""

import numpy as np
import softcore
from softcore._bench import best_of as best


def numpy_gating(x, k):
    """Mixtral/HF routing in NumPy: softmax, top k by argpartition, order by weight (ties to the
    lower id), renormalise."""
    e = np.exp(x - x.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    idx = np.argpartition(-p, k - 1, axis=-1)[:, :k]
    w = np.take_along_axis(p, idx, -1)
    order = np.lexsort((idx, -w), axis=-1)
    idx = np.take_along_axis(idx, order, -1)
    w = np.take_along_axis(w, order, -1)
    return w / w.sum(-1, keepdims=True), idx


def torch_gating(torch, x, k):
    p = torch.softmax(x, dim=-1)
    w, idx = torch.topk(p, k, dim=-1)
    return w / w.sum(-1, keepdim=True), idx


def main():
    softcore.set_num_threads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    for t, e, k, kw in [
        (65536, 64, 2, {}),
        (65536, 8, 2, {}),
        (16384, 256, 8, {}),
        (16384, 256, 8, {"score": "sigmoid", "bias": True, "n_group": 8, "topk_group": 4}),
    ]:
        x = rng.standard_normal((t, e)).astype(np.float32)
        if kw.get("bias"):
            kw = dict(kw, bias=(0.01 * rng.standard_normal(e)).astype(np.float32))
        ts = best(lambda x=x, k=k, kw=kw: softcore.top_k_gating(x, k, **kw))
        tn = best(lambda x=x, k=k: numpy_gating(x, k))
        name = f"({t},{e},k={k})" + (" sigmoid+bias+groups" if kw else "")
        line = f"{name}: softcore {ts * 1e3:.2f} ms  numpy {tn * 1e3:.2f} ms  ratio {tn / ts:.1f}"
        if torch is not None and not kw:
            xt = torch.from_numpy(x)
            tt = best(lambda xt=xt, k=k: torch_gating(torch, xt, k))
            line += f"  torch {tt * 1e3:.2f} ms  ratio {tt / ts:.1f}"
        print(line)


if __name__ == "__main__":
    main()
