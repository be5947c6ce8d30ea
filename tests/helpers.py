"""Shared strategies and comparisons for the test suite."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

FLOATS = [np.float32, np.float64, np.float16]
# Relative tolerance per dtype where the reference output is a normal number.
RTOL = {np.float32: 2e-6, np.float64: 1e-13, np.float16: 1e-3}
TINY = {
    np.float32: np.finfo(np.float32).tiny,
    np.float64: np.finfo(np.float64).tiny,
    np.float16: np.finfo(np.float16).tiny,
}


@st.composite
def arrays(draw, dtype=None, max_dims=4, max_side=40, max_size=4000, magnitude=None):
    """Random float arrays in random layouts: C, Fortran, sliced, reversed, broadcast."""
    dtype = dtype or draw(st.sampled_from(FLOATS))
    ndim = draw(st.integers(1, max_dims))
    shape = draw(
        hnp.array_shapes(min_dims=ndim, max_dims=ndim, min_side=0, max_side=max_side).filter(
            lambda s: int(np.prod(s)) <= max_size
        )
    )
    mag = magnitude if magnitude is not None else draw(st.sampled_from([1.0, 30.0, 1e3, 1e4]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    base = (rng.standard_normal(shape) * mag).astype(dtype)
    layout = draw(st.sampled_from(["c", "f", "reversed", "sliced", "broadcast"]))
    if layout == "f":
        x = np.asfortranarray(base)
    elif layout == "reversed":
        x = base[(slice(None, None, -1),) * ndim]
    elif layout == "sliced":
        big = np.repeat(base, 2, axis=-1) if shape[-1] else base
        x = big[..., ::2] if shape[-1] else big
    elif layout == "broadcast" and ndim >= 2:
        x = np.broadcast_to(base[:1], shape) if shape[0] else base
    else:
        x = base
    return x


def axes(x):
    return st.integers(-x.ndim, x.ndim - 1)


def assert_close(got, want, dtype, what=""):
    """Relative error <= RTOL[dtype] where the reference is normal; NaN/inf positions agree."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), f"{what}: NaN mismatch"
    fin = ~nan
    inf = np.isinf(want) & fin
    assert np.array_equal(got[inf], want[inf]), f"{what}: inf mismatch"
    fin &= ~np.isinf(want)
    err = np.abs(got[fin] - want[fin])
    bound = RTOL[dtype] * np.abs(want[fin]) + 4 * TINY[dtype]
    if err.size:
        i = np.argmax(err - bound)
        assert np.all(err <= bound), (
            f"{what}: error {err[i]:.3e} > {bound[i]:.3e} at value {want[fin][i]:.6e}"
        )


def ref_input(x, dtype):
    """The value the kernel sees: float16 is computed in float32."""
    return np.asarray(x, dtype=np.float32 if dtype == np.float16 else dtype).astype(np.float64)
