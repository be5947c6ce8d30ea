"""soft_attention vs the same formula in NumPy, n=4096, d=32, 49 landmarks, 8 heads (one thread).

OPENBLAS_NUM_THREADS=1 python benches/soft_compare.py
"""

import numpy as np
import softcore
from softcore._bench import best_of as best

ROUNDS = 5


def kernel(x, y):
    sq = (
        (x * x).sum(-1)[..., :, None]
        + (y * y).sum(-1)[..., None, :]
        - 2 * x @ np.swapaxes(y, -1, -2)
    )
    return np.exp(-np.maximum(sq, 0) / 2)


def numpy_segment_means(q, num_landmarks):
    """Segment means in one vectorised call (the fastest of reduceat, cumsum differences and an
    averaging matrix measured here)."""
    n = q.shape[-2]
    bounds = np.arange(num_landmarks + 1) * n // num_landmarks
    counts = np.diff(bounds).astype(q.dtype)[:, None]
    return np.add.reduceat(q, bounds[:-1], axis=-2) / counts


def numpy_soft(q, v, lm):
    """The formula in NumPy with GEMM distances (not an n x l x d broadcast); lm None: segment
    means of q, as `soft_attention` computes them inside the call that is timed."""
    if lm is None:
        lm = numpy_segment_means(q, 49)
    kql = kernel(q, lm)
    kll = kernel(lm, lm)
    return kql @ (np.linalg.pinv(kll) @ (np.swapaxes(kql, -1, -2) @ v))


def report(name, q, v, lm):
    # Alternating rounds, best of each: this VM's speed drifts within seconds, and both sides
    # should see the same drift.
    ts = tn = float("inf")
    for _ in range(ROUNDS):
        ts = min(ts, best(lambda: softcore.soft_attention(q, v, lm, num_landmarks=49)))
        tn = min(tn, best(lambda: numpy_soft(q, v, lm)))
    lm64 = None if lm is None else lm.astype(np.float64)
    want = numpy_soft(q.astype(np.float64), v.astype(np.float64), lm64)
    got = softcore.soft_attention(q, v, lm, num_landmarks=49)
    err = np.linalg.norm(got - want) / np.linalg.norm(want)
    times = f"softcore {ts * 1e3:.2f} ms  numpy {tn * 1e3:.2f} ms"
    print(f"{name}: {times}  ratio {tn / ts:.2f}  err {err:.1e}")


if __name__ == "__main__":
    softcore.set_num_threads(1)
    rng = np.random.default_rng(0)
    q = (rng.standard_normal((8, 4096, 32)) * 32**-0.25).astype(np.float32)
    v = rng.standard_normal((8, 4096, 32)).astype(np.float32)
    report("segment-mean landmarks", q, v, None)
    lm = (0.25 * rng.standard_normal((8, 49, 32))).astype(np.float32)
    report("given landmarks 0.25 N(0,1)", q, v, lm)
