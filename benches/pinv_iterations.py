"""Newton–Schulz steps to convergence vs condition number, order 2 and 3 (float64, 64 x 64).

python benches/pinv_iterations.py
"""

import numpy as np
import softcore


def with_condition(rng, n, cond, spd):
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    s = np.geomspace(1.0, 1.0 / cond, n)
    if spd:
        return (q * s) @ q.T
    p, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * s) @ p.T


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    print("cond      general o2  o3   SPD o2  o3   (steps; SPD starts from its Cholesky inverse)")
    for cond in [1.0, 10.0, 1e2, 1e3, 1e4, 1e6]:
        row = [f"{cond:8.0e}"]
        for spd in (False, True):
            a = with_condition(rng, 64, cond, spd)
            if spd:
                a = (a + a.T) / 2
            for order in (2, 3):
                p, info = softcore.pinv(a, order=order, return_info=True)
                err = np.linalg.norm(p - np.linalg.pinv(a)) / np.linalg.norm(np.linalg.pinv(a))
                row.append(f"{int(info.iterations):3d}{'' if err < 1e-6 else '*'}")
        print("  ".join(row))
    print("* = error above 1e-6 relative to SVD")
