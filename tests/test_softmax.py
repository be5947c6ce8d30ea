"""softmax / log_softmax / logsumexp against the float64 reference."""

import numpy as np
import pytest
import softcore
from helpers import FLOATS, RTOL, arrays, assert_close, axes, ref_input
from hypothesis import given
from hypothesis import strategies as st
from softcore import reference as ref

ALGOS = list(ref.ALGORITHMS)


@given(data=st.data())
def test_softmax_matches_reference(data):
    x = data.draw(arrays())
    axis = data.draw(axes(x))
    algo = data.draw(st.sampled_from(ALGOS))
    y = softcore.softmax(x, axis, algorithm=algo)
    assert y.dtype == x.dtype and y.shape == x.shape and y.flags.c_contiguous
    assert not np.shares_memory(y, x)
    assert_close(y, ref.softmax(ref_input(x, x.dtype.type), axis), x.dtype.type, algo)


@given(data=st.data())
def test_log_softmax_matches_reference(data):
    x = data.draw(arrays())
    axis = data.draw(axes(x))
    y = softcore.log_softmax(x, axis)
    want = ref.log_softmax(ref_input(x, x.dtype.type), axis)
    # Results beyond the dtype's range (float16 with large inputs) must round to -inf.
    over = np.abs(want) > np.finfo(x.dtype).max
    assert np.all(y[over] == -np.inf)
    # log-softmax is a difference: bound the error by the magnitude of its terms.
    scale = 1.0 + np.abs(ref_input(x, x.dtype.type)) + np.abs(want)
    with np.errstate(invalid="ignore"):
        err = np.abs(y.astype(np.float64) - want)
    assert np.all(err[~over] <= RTOL[x.dtype.type] * scale[~over])


@given(data=st.data())
def test_logsumexp_matches_reference(data):
    x = data.draw(arrays())
    axis = data.draw(axes(x))
    y = softcore.logsumexp(x, axis)
    want = ref.logsumexp(ref_input(x, x.dtype.type), axis)
    assert y.shape == want.shape and y.dtype == x.dtype
    xin = ref_input(x, x.dtype.type)
    scale = 1.0 + (np.max(np.abs(xin), axis=axis) if xin.size else 0.0)
    with np.errstate(invalid="ignore"):
        err = np.abs(y.astype(np.float64) - want)
    finite = np.isfinite(want)
    assert np.array_equal(y[~finite].astype(np.float64), want[~finite])
    assert np.all(err[finite] <= RTOL[x.dtype.type] * np.broadcast_to(scale, want.shape)[finite])


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lengths_around_vector_widths(algo, dtype):
    rng = np.random.default_rng(1)
    for n in list(range(0, 135)) + [255, 256, 257, 1023, 1024, 1025, 4095, 4097]:
        x = (rng.standard_normal((3, n)) * 20).astype(dtype)
        assert_close(softcore.softmax(x, algorithm=algo), ref.softmax(x), dtype, f"n={n}")
        xt = np.ascontiguousarray(x.T)
        assert_close(softcore.softmax(xt, axis=0, algorithm=algo), ref.softmax(xt, 0), dtype)


@pytest.mark.parametrize("algo", ALGOS)
def test_special_values(algo):
    inf, nan = np.inf, np.nan
    cases = [
        ([-inf, 0.0, 0.0], [0.0, 0.5, 0.5]),
        ([-inf, -inf], [nan, nan]),
        ([inf, 0.0], [nan, nan]),
        ([inf, inf], [nan, nan]),
        ([nan, 0.0], [nan, nan]),
        ([3e38, 0.0], [1.0, 0.0]),
        ([-3e38, -2e38], [0.0, 1.0]),
        ([1e4, 1e4 - 1], [0.7310586, 0.26894143]),
        ([-1e30, -1e30], [0.5, 0.5]),
    ]
    for dtype in [np.float32, np.float64]:
        for xs, want in cases:
            for pad in [0, 13, 70]:
                x = np.array(xs + [-inf] * pad, dtype=dtype)
                y = softcore.softmax(x, algorithm=algo)
                np.testing.assert_allclose(y[: len(xs)], want, rtol=1e-6, err_msg=str(xs))
                if not np.isnan(want[0]):
                    assert np.all(y[len(xs) :] == 0.0), "-inf must give exactly 0"
                # Down a non-last axis too.
                y0 = softcore.softmax(np.repeat(x[:, None], 5, axis=1), axis=0, algorithm=algo)
                np.testing.assert_allclose(y0[:, 2], y, rtol=1e-6)


def test_special_values_log_and_lse():
    inf, nan = np.inf, np.nan
    x = np.array([[-inf, 0.0], [-inf, -inf], [inf, 0.0], [nan, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(softcore.logsumexp(x), [0.0, -inf, inf, nan])
    ls = softcore.log_softmax(x)
    np.testing.assert_array_equal(ls[0], [-inf, 0.0])
    assert np.all(np.isnan(ls[1:]))
    np.testing.assert_array_equal(softcore.logsumexp(x.T, axis=0), [0.0, -inf, inf, nan])


def test_empty():
    for shape, axis in [((0,), 0), ((3, 0), -1), ((0, 4), -1), ((0, 4), 0), ((2, 0, 3), 1)]:
        x = np.zeros(shape, np.float32)
        assert softcore.softmax(x, axis).shape == shape
        assert softcore.log_softmax(x, axis).shape == shape
        lse = softcore.logsumexp(x, axis)
        assert lse.shape == tuple(np.delete(np.array(shape), axis % len(shape)))
        assert np.all(lse == -np.inf)


def test_float16_in_and_out():
    x = np.linspace(-8, 8, 300).astype(np.float16).reshape(3, 100)
    y = softcore.softmax(x)
    assert y.dtype == np.float16
    assert_close(y, ref.softmax(x.astype(np.float64)), np.float16)
    out = np.empty_like(x)
    assert softcore.softmax(x, out=out) is out
    np.testing.assert_array_equal(out, y)


@given(data=st.data())
def test_where_mask(data):
    x = data.draw(arrays(dtype=np.float64, max_dims=3))
    axis = data.draw(axes(x))
    # A broadcastable mask: some dims collapsed to 1.
    mshape = tuple(s if data.draw(st.booleans()) else 1 for s in x.shape)
    mask = np.random.default_rng(data.draw(st.integers(0, 99))).random(mshape) < 0.6
    y = softcore.softmax(x, axis, where=mask)
    assert_close(y, ref.softmax(x, axis, where=mask), np.float64)
    ls = softcore.log_softmax(x, axis, where=mask)
    want = ref.log_softmax(x, axis, where=mask)
    np.testing.assert_allclose(ls, want, rtol=1e-12, atol=1e-9)
    lse = softcore.logsumexp(x, axis, where=mask)
    np.testing.assert_allclose(lse, ref.logsumexp(x, axis, where=mask), rtol=1e-12, atol=1e-9)


def test_where_semantics():
    x = np.array([[1.0, 2.0, 3.0], [4.0, np.nan, 6.0], [7.0, 8.0, 9.0]])
    m = np.array([[True, False, True], [True, False, True], [False, False, False]])
    y = softcore.softmax(x, where=m)
    np.testing.assert_allclose(y[0], [np.exp(-2) / (1 + np.exp(-2)), 0, 1 / (1 + np.exp(-2))])
    np.testing.assert_allclose(
        y[1], ref.softmax([4.0, 6.0]).tolist()[:1] + [0] + ref.softmax([4.0, 6.0]).tolist()[1:]
    )
    np.testing.assert_array_equal(y[2], [0, 0, 0])
    assert softcore.logsumexp(x, where=m)[2] == -np.inf
    assert np.all(softcore.log_softmax(x, where=m)[2] == -np.inf)


def test_out_parameter():
    x = np.random.default_rng(0).standard_normal((4, 33)).astype(np.float32)
    out = np.empty_like(x)
    r = softcore.softmax(x, out=out)
    assert r is out
    np.testing.assert_array_equal(out, softcore.softmax(x))
    r = softcore.log_softmax(x, out=out)
    assert r is out
    bad = [
        (np.empty((4, 33), np.float64), "dtype"),
        (np.empty((4, 32), np.float32), "shape"),
        (np.empty((33, 4), np.float32).T, "C-contiguous"),
        (x, "overlap"),
        (x[:, :], "overlap"),
        ([0.0] * 4, "ndarray"),
    ]
    for o, msg in bad:
        with pytest.raises(ValueError, match=msg):
            softcore.softmax(x, out=o)
    ro = np.empty_like(x)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        softcore.softmax(x, out=ro)


@pytest.mark.parametrize(
    "bad",
    [
        np.arange(4),
        np.array([True, False]),
        np.ones(3, complex),
        np.array(["a", "b"], dtype=object),
        np.ones(2, np.int8),
    ],
)
def test_bad_dtypes_raise_type_error(bad):
    for f in (softcore.softmax, softcore.log_softmax, softcore.logsumexp):
        with pytest.raises(TypeError, match=str(bad.dtype)):
            f(bad)


def test_bad_arguments_raise_value_error():
    x = np.zeros((2, 3), np.float32)
    for axis in (2, -3, 100):
        with pytest.raises(ValueError, match=str(axis)):
            softcore.softmax(x, axis)
        with pytest.raises(ValueError, match=str(axis)):
            softcore.logsumexp(x, axis)
    with pytest.raises(ValueError, match="fast"):
        softcore.softmax(x, algorithm="fast")
    with pytest.raises(ValueError, match="where"):
        softcore.softmax(x, where=np.ones((3, 3), bool))
    with pytest.raises(TypeError, match="bool"):
        softcore.softmax(x, where=np.ones((2, 3)))
    with pytest.raises(ValueError):
        softcore.softmax(np.float32(1.0))


def test_accepts_array_likes():
    y = softcore.softmax([[1.0, 2.0], [3.0, 5.0]])
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, ref.softmax([[1.0, 2.0], [3.0, 5.0]]))


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize(
    "shape,axis", [((300, 5000), -1), ((3, 1 << 20), -1), ((2000, 300), 0), ((4, 700, 90), 1)]
)
def test_bitwise_identical_across_thread_counts(algo, shape, axis):
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32) * 10
    before = softcore.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            softcore.set_num_threads(n)
            assert softcore.get_num_threads() == n
            results.append(
                (
                    softcore.softmax(x, axis, algorithm=algo),
                    softcore.log_softmax(x, axis),
                    softcore.logsumexp(x, axis),
                )
            )
        for r in results[1:]:
            for a, b in zip(results[0], r):
                assert np.array_equal(a.view(np.uint32), b.view(np.uint32))
    finally:
        softcore.set_num_threads(before)


def test_set_num_threads_validation():
    with pytest.raises(ValueError):
        softcore.set_num_threads(0)
    with pytest.raises(ValueError):
        softcore.set_num_threads(-2)


def test_isa_reports_and_respects_env():
    import os

    assert softcore.isa() in softcore.supported_isas()
    forced = os.environ.get("SOFTCORE_ISA")
    if forced:
        assert softcore.isa() == forced


@pytest.mark.parametrize("dtype", FLOATS)
def test_large_magnitudes(dtype):
    rng = np.random.default_rng(5)
    mag = 1e4
    x = (rng.standard_normal((8, 257)) * mag).astype(dtype)
    for algo in ALGOS:
        assert_close(softcore.softmax(x, algorithm=algo), ref.softmax(ref_input(x, dtype)), dtype)


def test_pooled_outputs_are_never_shared_while_alive():
    # Outputs of 1 MiB+ live in pooled buffers (cpu_info()["output_pool_max_bytes"]): a buffer
    # is reused only once NumPy has freed every view of the array it backed.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((512, 1024), dtype=np.float32)
    want = ref.softmax(x.astype(np.float64))
    y1 = softcore.softmax(x)
    tail = softcore.softmax(x)[256:]  # a view keeps its buffer alive
    y2 = softcore.log_softmax(x)
    assert len({y1.ctypes.data, tail.ctypes.data, y2.ctypes.data}) == 3
    del y1
    for _ in range(8):
        z = softcore.softmax(-x)
        assert z.ctypes.data not in (tail.ctypes.data - 256 * 1024 * 4, y2.ctypes.data)
    np.testing.assert_allclose(tail, want[256:], rtol=2e-6)
    np.testing.assert_allclose(y2, np.log(want), rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(z, ref.softmax(-x.astype(np.float64)), rtol=2e-6)
    assert z.flags.c_contiguous and z.flags.writeable and z.flags.aligned
    z[0, 0] = 7.0
    assert z[0, 0] == 7.0
    assert softcore.cpu_info()["output_pool_max_bytes"] <= 256 * 2**20


@pytest.mark.parametrize(
    "algorithm", ["auto", "two_pass", "online", "three_pass_reload", "three_pass_recompute"]
)
def test_long_wide_rows_stay_within_2e6(algorithm):
    # Issue 15's accuracy bound: f32 rows of 65536 N(0, 6^2) values within 2e-6 relative of
    # float64 for every algorithm (the online and two-pass sums are compensated for it).
    worst = 0.0
    for seed in range(4):
        x = (np.random.default_rng(seed).standard_normal((2, 65536)) * 6).astype(np.float32)
        r = ref.softmax(x.astype(np.float64))
        y = softcore.softmax(x, algorithm=algorithm)
        worst = max(worst, float(np.max(np.abs(y - r) / r)))
    assert worst < 2e-6, worst


@pytest.mark.parametrize(
    "algorithm", ["auto", "two_pass", "online", "three_pass_reload", "three_pass_recompute"]
)
def test_long_columns_stay_within_2e6(algorithm):
    # The same bound down a non-last axis, where each column is one SIMD lane's chain of
    # additions (src/softmax/strided.rs): 72 columns take a strip of four vectors and partial
    # vectors on every ISA.
    x = (np.random.default_rng(7).standard_normal((65536, 72)) * 6).astype(np.float32)
    x64 = x.astype(np.float64)
    r = ref.softmax(x64, axis=0)
    y = softcore.softmax(x, axis=0, algorithm=algorithm)
    assert float(np.max(np.abs(y - r) / r)) < 2e-6
    if algorithm == "auto":
        rl = ref.log_softmax(x64, axis=0)
        yl = softcore.log_softmax(x, axis=0)
        assert float(np.max(np.abs(yl - rl) / np.maximum(1.0, np.abs(rl)))) < 2e-6
        lse = softcore.logsumexp(x, axis=0)
        assert float(np.max(np.abs(lse - ref.logsumexp(x64, axis=0)))) < 2e-6
