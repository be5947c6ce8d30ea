"""Two builds of softcore's extension side by side in one process: medians of interleaved calls
(old, new, old, new, ...), one thread, f32, so a change is judged against its parent in the same
run rather than against a figure from another run.

    cp target/release/libsoftcore.so /tmp/old.so   # (build the parent first)
    cp target/release/libsoftcore.so /tmp/new.so   # (then the change)
    python benches/ab_builds.py /tmp/old.so /tmp/new.so [--axis=0] [4096x1024 ...]
"""

from __future__ import annotations

import functools
import importlib.util
import sys

import numpy as np
from attention_compare import interleaved


def load(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name + "._core", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.set_num_threads(1)
    return module


def medians(fns, rounds=41):
    """Median milliseconds of each callable, called in turn."""
    return [t * 1e3 for t in interleaved(fns, rounds)]


def main(argv):
    old, new = load("old_build", argv[0]), load("new_build", argv[1])
    axis = next((int(a.split("=")[1]) for a in argv[2:] if a.startswith("--axis=")), -1)
    shapes = [a for a in argv[2:] if not a.startswith("--")] or [
        "4096x1024",
        "65536x64",
        "64x8192",
        "1x16777216",
        "256x65536",
    ]
    rng = np.random.default_rng(0)
    for s in shapes:
        x = rng.standard_normal(tuple(map(int, s.split("x"))), dtype=np.float32)
        out = np.empty_like(x)
        cases = {f"softmax {a} out=": dict(algorithm=a, out=out, axis=axis)
                 for a in ("two_pass", "three_pass_reload", "online")}  # fmt: skip
        cases["softmax (auto, no out=)"] = dict(axis=axis)
        for label, kw in cases.items():
            t_old, t_new = medians([functools.partial(m.softmax, x, **kw) for m in (old, new)])
            print(f"{s:>11} {label:<28} old {t_old:8.3f}  new {t_new:8.3f}  {t_new / t_old:5.3f}")
        t_old, t_new = medians([functools.partial(m.logsumexp, x, axis=axis) for m in (old, new)])
        print(f"{s:>11} {'logsumexp':<28} old {t_old:8.3f}  new {t_new:8.3f}  {t_new / t_old:5.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
