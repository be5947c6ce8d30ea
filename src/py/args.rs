//! Scalar arguments beyond their Rust type's range: a Python int too large for an f64 (2**1024)
//! is +-inf and one beyond i64 (2**70) saturates to i64::MAX / MIN, so the kernels' own checks
//! reject it with a ValueError naming the argument ("scale must be finite", "k must be <= E")
//! instead of an OverflowError from the conversion.

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;

/// Whether `x > 0` (for an int too large to convert).
fn positive(x: &Bound<'_, PyAny>) -> PyResult<bool> {
    x.gt(0)
}

pub fn f64_arg(x: &Bound<'_, PyAny>) -> PyResult<f64> {
    match x.extract::<f64>() {
        Err(e) if e.is_instance_of::<PyOverflowError>(x.py()) => Ok(if positive(x)? {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        }),
        r => r,
    }
}

pub fn opt_f64_arg(x: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    if x.is_none() {
        Ok(None)
    } else {
        f64_arg(x).map(Some)
    }
}

pub fn i64_arg(x: &Bound<'_, PyAny>) -> PyResult<i64> {
    match x.extract::<i64>() {
        Err(e) if e.is_instance_of::<PyOverflowError>(x.py()) => {
            Ok(if positive(x)? { i64::MAX } else { i64::MIN })
        }
        r => r,
    }
}

pub fn opt_i64_arg(x: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    if x.is_none() {
        Ok(None)
    } else {
        i64_arg(x).map(Some)
    }
}

/// The most Newton–Schulz steps `iters` may ask for: the iteration converges in tens of steps
/// (quadratically once it is close); 2**62 would run for ever.
pub const MAX_ITERS: i64 = 100_000;

/// `iters` checked: 0..=MAX_ITERS, or ValueError naming it.
pub fn iters_arg(func: &str, iters: Option<i64>) -> PyResult<Option<usize>> {
    match iters {
        Some(k) if !(0..=MAX_ITERS).contains(&k) => Err(pyo3::exceptions::PyValueError::new_err(
            format!("{func}: iters must be in [0, {MAX_ITERS}], got {k}"),
        )),
        k => Ok(k.map(|k| k as usize)),
    }
}
