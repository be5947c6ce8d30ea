//! pinv, pinv_backward: extract with the GIL, compute detached, return arrays.

use super::arrays::{floats, same_dtype, Floats};
use super::errors::compute;
use crate::linalg::{pinv_backward_batch, pinv_batch, GemmElem, PinvInfo, PinvOptions};
use numpy::{Element, PyArray, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyAny, PyTuple};

/// Per-matrix results of `pinv(..., return_info=True)`, arrays over the batch shape.
#[pyclass(name = "PinvInfo", module = "softcore", frozen)]
pub struct PyPinvInfo {
    #[pyo3(get)]
    iterations: Py<PyAny>,
    #[pyo3(get)]
    step: Py<PyAny>,
    #[pyo3(get)]
    converged: Py<PyAny>,
}

#[pymethods]
impl PyPinvInfo {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "PinvInfo(iterations={}, step={}, converged={})",
            self.iterations.bind(py).repr()?,
            self.step.bind(py).repr()?,
            self.converged.bind(py).repr()?
        ))
    }
}

fn run_pinv<'py, E: GemmElem + Element>(
    py: Python<'py>,
    a: &Bound<'py, PyArrayDyn<E>>,
    opts: PinvOptions,
) -> PyResult<(Bound<'py, PyAny>, Vec<PinvInfo>)> {
    let r = a
        .try_readonly()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let v = r.as_array();
    let (out, info) = compute(py, v.len() * 64, || pinv_batch(v, &opts))?;
    Ok((PyArray::from_owned_array(py, out).into_any(), info))
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/pinv.txt"))]
#[pyo3(signature = (a, *, iters=None, tol=None, order=2, ridge=0.0, return_info=false))]
#[allow(clippy::too_many_arguments)]
pub fn pinv<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = super::args::opt_i64_arg)] iters: Option<i64>,
    #[pyo3(from_py_with = super::args::opt_f64_arg)] tol: Option<f64>,
    #[pyo3(from_py_with = super::args::i64_arg)] order: i64,
    #[pyo3(from_py_with = super::args::f64_arg)] ridge: f64,
    return_info: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let inp = floats(py, a, "pinv", "a")?;
    if inp.orig.ndim() < 2 {
        return Err(PyValueError::new_err(format!(
            "pinv: a must have at least 2 dimensions (..., m, n), got shape {:?}",
            inp.orig.shape()
        )));
    }
    let iters = super::args::iters_arg("pinv", iters)?;
    if let Some(t) = tol {
        if !(t > 0.0 && t.is_finite()) {
            return Err(PyValueError::new_err(format!(
                "pinv: tol must be a positive number, got {t}"
            )));
        }
    }
    if order != 2 && order != 3 {
        return Err(PyValueError::new_err(format!(
            "pinv: order must be 2 or 3, got {order}"
        )));
    }
    let opts = PinvOptions {
        iters,
        tol,
        order: order as u32,
        ridge,
    };
    let (out, info) = match &inp.arr {
        Floats::F32(x) => run_pinv::<f32>(py, x, opts)?,
        Floats::F64(x) => run_pinv::<f64>(py, x, opts)?,
    };
    let out = inp.half_back(out)?;
    if !return_info {
        return Ok(out);
    }
    let shape = &inp.orig.shape()[..inp.orig.ndim() - 2];
    let it: Vec<i64> = info.iter().map(|i| i.iterations as i64).collect();
    let st: Vec<f64> = info.iter().map(|i| i.step).collect();
    let cv: Vec<bool> = info.iter().map(|i| i.converged).collect();
    let reshape = |a: Bound<'py, PyAny>| a.call_method1("reshape", (shape.to_vec(),));
    let info = PyPinvInfo {
        iterations: reshape(PyArray::from_vec(py, it).into_any())?.unbind(),
        step: reshape(PyArray::from_vec(py, st).into_any())?.unbind(),
        converged: reshape(PyArray::from_vec(py, cv).into_any())?.unbind(),
    };
    Ok(PyTuple::new(py, [out, Bound::new(py, info)?.into_any()])?.into_any())
}

fn run_backward<'py, E: GemmElem + Element>(
    py: Python<'py>,
    a: &Bound<'py, PyArrayDyn<E>>,
    p: &Bound<'py, PyAny>,
    g: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let (p, g) = (
        same_dtype::<E>(p, "pinv_backward", "a_pinv", "a")?,
        same_dtype::<E>(g, "pinv_backward", "grad", "a")?,
    );
    let (ra, rp, rg) = (a.try_readonly(), p.try_readonly(), g.try_readonly());
    let (ra, rp, rg) = match (ra, rp, rg) {
        (Ok(x), Ok(y), Ok(z)) => (x, y, z),
        _ => {
            return Err(PyValueError::new_err(
                "pinv_backward: arrays are mutably borrowed",
            ))
        }
    };
    let (va, vp, vg) = (ra.as_array(), rp.as_array(), rg.as_array());
    let out = compute(py, va.len() * 16, || pinv_backward_batch(va, vp, vg))?;
    Ok(PyArray::from_owned_array(py, out).into_any())
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/pinv_backward.txt"))]
pub fn pinv_backward<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    a_pinv: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let inp = floats(py, a, "pinv_backward", "a")?;
    let p = floats(py, a_pinv, "pinv_backward", "a_pinv")?;
    let g = floats(py, grad, "pinv_backward", "grad")?;
    let out = match (&inp.arr, &p.arr, &g.arr) {
        (Floats::F32(x), Floats::F32(y), Floats::F32(z)) => {
            run_backward::<f32>(py, x, y.as_any(), z.as_any())?
        }
        (Floats::F64(x), Floats::F64(y), Floats::F64(z)) => {
            run_backward::<f64>(py, x, y.as_any(), z.as_any())?
        }
        _ => {
            return Err(PyTypeError::new_err(format!(
                "pinv_backward: a, a_pinv and grad must share one dtype, got {}, {}, {}",
                inp.orig.dtype(),
                p.orig.dtype(),
                g.orig.dtype()
            )))
        }
    };
    inp.half_back(out)
}
