//! softmax, log_softmax, logsumexp: extract with the GIL, compute detached, return arrays.

use super::arrays::{bool_mask, check_out, floats, numpy, Floats};
use super::errors::{compute, to_py};
use crate::simd::{self, Lanes};
use crate::softmax::{logsumexp_with, softmax_with, Algorithm, Op};
use numpy::{Element, PyArray, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyAny;

fn borrow_err(e: numpy::BorrowError) -> PyErr {
    PyValueError::new_err(format!(
        "array is already borrowed (overlapping arguments?): {e}"
    ))
}

/// Computes `op` of x into a new array (or into `out`, already validated, of dtype E).
fn run<'py, E: Lanes + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyArrayDyn<E>>,
    axis: isize,
    op: Op,
    mask: Option<&Bound<'py, PyArrayDyn<bool>>>,
    out: Option<Bound<'py, PyArrayDyn<E>>>,
) -> PyResult<Bound<'py, PyArrayDyn<E>>> {
    let xr = x.try_readonly().map_err(borrow_err)?;
    let mr = mask
        .map(|m| m.try_readonly())
        .transpose()
        .map_err(borrow_err)?;
    let res = match out {
        Some(o) => o,
        // SAFETY: every element is written by the kernel before the array is returned; on error
        // the array is dropped unseen.
        None => unsafe { PyArray::new(py, x.shape(), false) },
    };
    {
        let mut rw = res.try_readwrite().map_err(borrow_err)?;
        let (xv, mv, ov) = (
            xr.as_array(),
            mr.as_ref().map(|m| m.as_array()),
            rw.as_array_mut(),
        );
        compute(py, xv.len(), || {
            softmax_with(simd::active(), xv, axis, op, mv, ov)
        })?;
    }
    Ok(res)
}

#[allow(clippy::too_many_arguments)]
fn family<'py>(
    py: Python<'py>,
    name: &str,
    x: &Bound<'py, PyAny>,
    axis: isize,
    op: Op,
    where_: Option<&Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let inp = floats(py, x, name)?;
    let mask = where_.map(|m| bool_mask(py, m)).transpose()?;
    let mut inputs: Vec<&Bound<'py, PyAny>> = vec![inp.orig.as_any()];
    if let Some(m) = &mask {
        inputs.push(m.as_any());
    }
    let out = out
        .map(|o| check_out(py, o, &inp.orig, &inputs))
        .transpose()?;
    let m = mask.as_ref();
    if inp.half {
        let Floats::F32(a) = &inp.arr else {
            unreachable!("float16 is carried as float32")
        };
        let r = run::<f32>(py, a, axis, op, m, None)?;
        return match out {
            Some(o) => {
                numpy(py)?.call_method1("copyto", (&o, r))?;
                Ok(o.into_any())
            }
            None => r.call_method1("astype", ("float16",)),
        };
    }
    Ok(match &inp.arr {
        Floats::F32(a) => {
            run::<f32>(py, a, axis, op, m, out.map(|o| o.cast_into()).transpose()?)?.into_any()
        }
        Floats::F64(a) => {
            run::<f64>(py, a, axis, op, m, out.map(|o| o.cast_into()).transpose()?)?.into_any()
        }
    })
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/softmax.txt"))]
#[pyo3(
    signature = (x, axis=-1, *, algorithm="auto", r#where=None, out=None),
    text_signature = "(x, axis=-1, *, algorithm='auto', where=None, out=None)"
)]
pub fn softmax<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    axis: isize,
    algorithm: &str,
    r#where: Option<&Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let algo = Algorithm::from_name(algorithm).map_err(to_py)?;
    family(py, "softmax", x, axis, Op::Softmax(algo), r#where, out)
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/log_softmax.txt"))]
#[pyo3(
    signature = (x, axis=-1, *, r#where=None, out=None),
    text_signature = "(x, axis=-1, *, where=None, out=None)"
)]
pub fn log_softmax<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    axis: isize,
    r#where: Option<&Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    family(py, "log_softmax", x, axis, Op::LogSoftmax, r#where, out)
}

fn lse<'py, E: Lanes + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyArrayDyn<E>>,
    axis: isize,
    mask: Option<&Bound<'py, PyArrayDyn<bool>>>,
) -> PyResult<Bound<'py, PyArrayDyn<E>>> {
    let xr = x.try_readonly().map_err(borrow_err)?;
    let mr = mask
        .map(|m| m.try_readonly())
        .transpose()
        .map_err(borrow_err)?;
    let (xv, mv) = (xr.as_array(), mr.as_ref().map(|m| m.as_array()));
    let r = compute(py, xv.len(), || {
        logsumexp_with(simd::active(), xv, axis, mv)
    })?;
    Ok(PyArray::from_owned_array(py, r))
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/logsumexp.txt"))]
#[pyo3(
    signature = (x, axis=-1, *, r#where=None),
    text_signature = "(x, axis=-1, *, where=None)"
)]
pub fn logsumexp<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    axis: isize,
    r#where: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let inp = floats(py, x, "logsumexp")?;
    let mask = r#where.map(|m| bool_mask(py, m)).transpose()?;
    let r = match &inp.arr {
        Floats::F32(a) => lse::<f32>(py, a, axis, mask.as_ref())?.into_any(),
        Floats::F64(a) => lse::<f64>(py, a, axis, mask.as_ref())?.into_any(),
    };
    if inp.half {
        return r.call_method1("astype", ("float16",));
    }
    Ok(r)
}
