//! power_softmax and softmax_regression bindings.

use super::arrays::{bool_mask, float_as, floats, read, Floats};
use super::errors::compute;
use crate::linalg::GemmElem;
use crate::regression::softmax_regression as regression;
use crate::simd::Lanes;
use crate::softmax::power_softmax as power;
use numpy::{Element, PyArray, PyArrayDyn};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyAny, PyTuple};

fn run_power<'py, E: Lanes + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyArrayDyn<E>>,
    p: u32,
    axis: isize,
    eps: f64,
    mask: Option<&Bound<'py, PyArrayDyn<bool>>>,
) -> PyResult<Bound<'py, PyAny>> {
    let rx = read(x)?;
    let rm = mask.map(read).transpose()?;
    let (xv, mv) = (rx.as_array(), rm.as_ref().map(|m| m.as_array()));
    let out = compute(py, xv.len() * 4, || power(xv, p, axis, eps, mv))?;
    Ok(PyArray::from_owned_array(py, out).into_any())
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/power_softmax.txt"))]
#[pyo3(
    signature = (x, p=4, axis=-1, *, eps=0.0, r#where=None),
    text_signature = "(x, p=4, axis=-1, *, eps=0.0, where=None)"
)]
pub fn power_softmax<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = super::args::i64_arg)] p: i64,
    #[pyo3(from_py_with = super::args::i64_arg)] axis: i64,
    #[pyo3(from_py_with = super::args::f64_arg)] eps: f64,
    r#where: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    if p <= 0 || p % 2 != 0 || p > 1024 {
        return Err(PyValueError::new_err(format!(
            "power_softmax: p must be a positive even integer (at most 1024), got {p}"
        )));
    }
    let inp = floats(py, x, "power_softmax", "x")?;
    // Saturated beyond isize (2**70): out of bounds for any array, as normalize_axis says.
    let axis = isize::try_from(axis).unwrap_or(isize::MAX);
    let mask = r#where.map(|m| bool_mask(py, m)).transpose()?;
    let out = match &inp.arr {
        Floats::F32(a) => run_power::<f32>(py, a, p as u32, axis, eps, mask.as_ref())?,
        Floats::F64(a) => run_power::<f64>(py, a, p as u32, axis, eps, mask.as_ref())?,
    };
    inp.half_back(out)
}

fn run_regression<'py, E: GemmElem + Element>(
    py: Python<'py>,
    a: &Bound<'py, PyArrayDyn<E>>,
    b: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    hessian: bool,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let f = "softmax_regression";
    let (b, x) = (float_as::<E>(py, b, f, "b")?, float_as::<E>(py, x, f, "x")?);
    let (ra, rb, rx) = (read(a)?, read(&b)?, read(&x)?);
    let dims = |v: numpy::ndarray::ArrayViewD<'_, E>, what: &str, shape: &str| {
        let s = v.shape().to_vec();
        PyValueError::new_err(format!("{f}: {what} must be {shape}, got shape {s:?}"))
    };
    let av = ra.as_array();
    let av = av
        .clone()
        .into_dimensionality::<ndarray::Ix2>()
        .map_err(|_| dims(av, "a", "2-D (n, d)"))?;
    let bv = rb.as_array();
    let bv = bv
        .clone()
        .into_dimensionality::<ndarray::Ix1>()
        .map_err(|_| dims(bv, "b", "1-D (n,)"))?;
    let xv = rx.as_array();
    let xv = xv
        .clone()
        .into_dimensionality::<ndarray::Ix1>()
        .map_err(|_| dims(xv, "x", "1-D (d,)"))?;
    let r = compute(py, av.len() * 8, || regression(av, bv, xv, hessian))?;
    let mut out = vec![
        r.loss.into_pyobject(py)?.into_any(),
        PyArray::from_owned_array(py, r.grad).into_any(),
    ];
    if let Some(h) = r.hess {
        out.push(PyArray::from_owned_array(py, h).into_any());
    }
    Ok(out)
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/softmax_regression.txt"))]
#[pyo3(signature = (a, b, x, *, hessian=false))]
pub fn softmax_regression<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    x: &Bound<'py, PyAny>,
    hessian: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let inp = floats(py, a, "softmax_regression", "a")?;
    let mut parts = match &inp.arr {
        Floats::F32(m) => run_regression::<f32>(py, m, b, x, hessian)?,
        Floats::F64(m) => run_regression::<f64>(py, m, b, x, hessian)?,
    };
    for p in parts.iter_mut().skip(1) {
        *p = inp.half_back(p.clone())?;
    }
    Ok(PyTuple::new(py, parts)?.into_any())
}
