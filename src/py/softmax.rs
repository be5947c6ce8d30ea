//! softmax, log_softmax, logsumexp: extract with the GIL, compute detached, return arrays.

use super::arrays::{asarray, bool_mask, check_out, floats, numpy, Floats};
use super::axes::AxisArg;
use super::errors::{compute, to_py};
use crate::simd::{self, Lanes};
use crate::softmax::{logsumexp_axes_with, softmax_axes_with, Algorithm, Axes, Op};
use numpy::{
    Element, PyArray, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyAny, PyTuple};

fn borrow_err(e: numpy::BorrowError) -> PyErr {
    PyValueError::new_err(format!(
        "array is already borrowed (overlapping arguments?): {e}"
    ))
}

/// Computes `op` of x into a new array (or into `out`, already validated, of dtype E).
fn run<'py, E: Lanes + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyArrayDyn<E>>,
    axis: &Axes,
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
        None => unsafe { super::pool::output::<E>(py, x.shape())? },
    };
    {
        let mut rw = res.try_readwrite().map_err(borrow_err)?;
        let (xv, mv, ov) = (
            xr.as_array(),
            mr.as_ref().map(|m| m.as_array()),
            rw.as_array_mut(),
        );
        compute(py, xv.len(), || {
            softmax_axes_with(simd::active(), xv, axis, op, mv, ov)
        })?;
    }
    Ok(res)
}

#[allow(clippy::too_many_arguments)]
fn family<'py>(
    py: Python<'py>,
    name: &str,
    x: &Bound<'py, PyAny>,
    axis: &Axes,
    op: Op,
    where_: Option<&Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let inp = floats(py, x, name, "x")?;
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
    signature = (x, axis=AxisArg(Axes::One(-1)), *, algorithm="auto", r#where=None, out=None),
    text_signature = "(x, axis=-1, *, algorithm='auto', where=None, out=None)"
)]
pub fn softmax<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    axis: AxisArg,
    algorithm: &str,
    r#where: Option<&Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let algo = Algorithm::from_name(algorithm).map_err(to_py)?;
    family(py, "softmax", x, &axis.0, Op::Softmax(algo), r#where, out)
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/log_softmax.txt"))]
#[pyo3(
    signature = (x, axis=AxisArg(Axes::One(-1)), *, r#where=None, out=None),
    text_signature = "(x, axis=-1, *, where=None, out=None)"
)]
pub fn log_softmax<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    axis: AxisArg,
    r#where: Option<&Bound<'py, PyAny>>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    family(py, "log_softmax", x, &axis.0, Op::LogSoftmax, r#where, out)
}

/// logsumexp's options beyond x and the mask.
struct LseOptions<'a> {
    axis: &'a Axes,
    keepdims: bool,
    return_sign: bool,
}

fn lse<'py, E: Lanes + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyArrayDyn<E>>,
    mask: Option<&Bound<'py, PyArrayDyn<bool>>>,
    b: Option<&Bound<'py, PyArrayDyn<f64>>>,
    o: &LseOptions<'_>,
) -> PyResult<(Bound<'py, PyAny>, Option<Bound<'py, PyAny>>)> {
    let xr = x.try_readonly().map_err(borrow_err)?;
    let mr = mask
        .map(|m| m.try_readonly())
        .transpose()
        .map_err(borrow_err)?;
    let br = b
        .map(|b| b.try_readonly())
        .transpose()
        .map_err(borrow_err)?;
    let (xv, mv, bv) = (
        xr.as_array(),
        mr.as_ref().map(|m| m.as_array()),
        br.as_ref().map(|b| b.as_array()),
    );
    let (r, sign) = compute(py, xv.len(), || {
        logsumexp_axes_with(
            simd::active(),
            xv,
            o.axis,
            mv,
            o.keepdims,
            bv,
            o.return_sign,
        )
    })?;
    let sign = sign.map(|s| PyArray::from_owned_array(py, s).into_any());
    Ok((PyArray::from_owned_array(py, r).into_any(), sign))
}

/// logsumexp's weights as float64: any real dtype; TypeError naming `b` otherwise.
fn weights<'py>(py: Python<'py>, b: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
    let a = asarray(py, b, "logsumexp: b")?;
    if !matches!(a.dtype().kind(), b'b' | b'i' | b'u' | b'f') {
        return Err(PyTypeError::new_err(format!(
            "logsumexp: b has unsupported dtype {}; expected a real dtype",
            a.dtype()
        )));
    }
    let c = a.call_method1("astype", ("float64",))?;
    Ok(c.cast_into::<PyArrayDyn<f64>>()?)
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/logsumexp.txt"))]
#[pyo3(
    signature = (x, axis=AxisArg(Axes::One(-1)), *, r#where=None, keepdims=false, b=None, return_sign=false),
    text_signature = "(x, axis=-1, *, where=None, keepdims=False, b=None, return_sign=False)"
)]
#[allow(clippy::too_many_arguments)]
pub fn logsumexp<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    axis: AxisArg,
    r#where: Option<&Bound<'py, PyAny>>,
    keepdims: bool,
    b: Option<&Bound<'py, PyAny>>,
    return_sign: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let inp = floats(py, x, "logsumexp", "x")?;
    let mask = r#where.map(|m| bool_mask(py, m)).transpose()?;
    let b = b.map(|b| weights(py, b)).transpose()?;
    let o = LseOptions {
        axis: &axis.0,
        keepdims,
        return_sign,
    };
    let (r, sign) = match &inp.arr {
        Floats::F32(a) => lse::<f32>(py, a, mask.as_ref(), b.as_ref(), &o)?,
        Floats::F64(a) => lse::<f64>(py, a, mask.as_ref(), b.as_ref(), &o)?,
    };
    let half = |a: Bound<'py, PyAny>| {
        if inp.half {
            a.call_method1("astype", ("float16",))
        } else {
            Ok(a)
        }
    };
    let r = half(r)?;
    match sign {
        Some(s) => Ok(PyTuple::new(py, [r, half(s)?])?.into_any()),
        None => Ok(r),
    }
}
