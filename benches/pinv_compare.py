"""pinv vs numpy.linalg.pinv on SOFT-like Gaussian landmark batches (one thread, f32).

OPENBLAS_NUM_THREADS=1 python benches/pinv_compare.py
"""

import numpy as np
import softcore
from softcore._bench import best_of as best


def landmark_kernels(rng, batch, m, d=32, scale=0.25):
    lm = scale * rng.standard_normal((batch, m, d))
    sq = ((lm[:, :, None, :] - lm[:, None, :, :]) ** 2).sum(-1)
    return np.exp(-np.maximum(sq, 0) / 2)


def case(rng, batch, m, order):
    k = landmark_kernels(rng, batch, m)
    k32 = k.astype(np.float32)
    want = np.linalg.pinv(k)
    cond = np.linalg.cond(k)
    p, info = softcore.pinv(k32, order=order, return_info=True)
    err = (np.linalg.norm(p - want, axis=(1, 2)) / np.linalg.norm(want, axis=(1, 2))).max()
    ts = best(lambda: softcore.pinv(k32, order=order))
    tn = best(lambda: np.linalg.pinv(k32))
    print(
        f"({batch},{m},{m}) cond {cond.min():.0f}-{cond.max():.0f} order {order}: "
        f"softcore {ts * 1e3:.2f} ms  numpy {tn * 1e3:.2f} ms  ratio {tn / ts:.2f}  "
        f"err {err:.1e}  iters {info.iterations.min()}-{info.iterations.max()}"
    )


if __name__ == "__main__":
    softcore.set_num_threads(1)
    rng = np.random.default_rng(0)
    for batch, m in [(64, 49), (64, 64), (16, 128), (4, 256)]:
        for order in (2, 3):
            case(rng, batch, m, order)
