"""top_k_gating vs NumPy (softmax + argpartition + stable reorder) and PyTorch when installed;
f32, one thread, medians of interleaved calls. The last row is DeepSeek-V3-style routing
(sigmoid scores, bias, 8 groups).

OPENBLAS_NUM_THREADS=1 python benches/gating_compare.py
"""

import numpy as np
import softcore
from softcore._bench_core import Bench
from softcore._bench_moe import gating_cases

if __name__ == "__main__":
    softcore.set_num_threads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    gating_cases(np.random.default_rng(0), Bench(), torch)
