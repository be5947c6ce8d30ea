//! soft_attention and softmax_attention: extract with the GIL, compute detached, return arrays.

use super::arrays::{bool_arg, float_as, floats, int_arg, read, same_dtype, size_arg, Floats};
use super::errors::compute;
use crate::attention::{
    soft_attention as soft, softmax_attention as exact, ExactOptions, SoftOptions,
};
use crate::linalg::{GemmElem, PinvOptions};
use crate::simd::Lanes;
use numpy::{Element, PyArray, PyArrayDyn, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyAny, PyTuple};

fn run<'py, E: GemmElem + Lanes + Element>(
    py: Python<'py>,
    q: &Bound<'py, PyArrayDyn<E>>,
    v: &Bound<'py, PyAny>,
    lm: Option<&Bound<'py, PyAny>>,
    opts: SoftOptions,
) -> PyResult<Bound<'py, PyAny>> {
    let v = same_dtype::<E>(v, "soft_attention", "v", "q")?;
    let lm = lm
        .map(|l| same_dtype::<E>(l, "soft_attention", "landmarks", "q"))
        .transpose()?;
    let borrow = |e: numpy::BorrowError| PyValueError::new_err(e.to_string());
    let (rq, rv) = (
        q.try_readonly().map_err(borrow)?,
        v.try_readonly().map_err(borrow)?,
    );
    let rl = lm
        .as_ref()
        .map(|l| l.try_readonly())
        .transpose()
        .map_err(borrow)?;
    let (vq, vv, vl) = (
        rq.as_array(),
        rv.as_array(),
        rl.as_ref().map(|l| l.as_array()),
    );
    let out = compute(py, vq.len() * 64, || soft(vq, vv, vl, &opts))?;
    Ok(PyArray::from_owned_array(py, out).into_any())
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/soft_attention.txt"))]
#[pyo3(signature = (q, v, landmarks=None, *, num_landmarks=49, iters=None, ridge=0.0, normalize=false))]
#[allow(clippy::too_many_arguments)]
pub fn soft_attention<'py>(
    py: Python<'py>,
    q: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    landmarks: Option<&Bound<'py, PyAny>>,
    #[pyo3(from_py_with = super::args::i64_arg)] num_landmarks: i64,
    #[pyo3(from_py_with = super::args::opt_i64_arg)] iters: Option<i64>,
    #[pyo3(from_py_with = super::args::f64_arg)] ridge: f64,
    normalize: bool,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "soft_attention";
    let num_landmarks = size_arg(num_landmarks, F, "num_landmarks", 1)?;
    let iters = super::args::iters_arg(F, iters)?;
    let opts = SoftOptions {
        num_landmarks,
        pinv: PinvOptions {
            iters,
            tol: None,
            order: 2,
            ridge,
        },
        normalize,
    };
    let qi = floats(py, q, "soft_attention", "q")?;
    let vi = floats(py, v, "soft_attention", "v")?;
    let li = landmarks
        .map(|l| floats(py, l, "soft_attention", "landmarks"))
        .transpose()?;
    let lany = li.as_ref().map(|l| l.arr.as_any());
    let vany = vi.arr.as_any();
    let out = match &qi.arr {
        Floats::F32(a) => run::<f32>(py, a, vany, lany, opts)?,
        Floats::F64(a) => run::<f64>(py, a, vany, lany, opts)?,
    };
    if qi.half {
        return out.call_method1("astype", ("float16",));
    }
    Ok(out)
}

fn exact_run<'py, E: GemmElem + Lanes + Element>(
    py: Python<'py>,
    q: &Bound<'py, PyArrayDyn<E>>,
    k: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    mask: Option<&Bound<'py, PyArrayDyn<bool>>>,
    opts: ExactOptions<'static>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    const F: &str = "softmax_attention";
    let (k, v) = (float_as::<E>(py, k, F, "k")?, float_as::<E>(py, v, F, "v")?);
    let (rq, rk, rv) = (read(q)?, read(&k)?, read(&v)?);
    let rm = mask.map(read).transpose()?;
    let opts = ExactOptions {
        mask: rm.as_ref().map(|m| m.as_array()),
        ..opts
    };
    let (vq, vk, vv) = (rq.as_array(), rk.as_array(), rv.as_array());
    let work = vq.len().saturating_mul(vk.len().max(1));
    let (o, l) = compute(py, work, || exact(vq, vk, vv, &opts))?;
    Ok((
        PyArray::from_owned_array(py, o).into_any(),
        PyArray::from_owned_array(py, l).into_any(),
    ))
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/softmax_attention.txt"))]
#[pyo3(signature = (q, k, v, *, scale=None, causal=false, mask=None, window=None, return_lse=false))]
#[allow(clippy::too_many_arguments)]
pub fn softmax_attention<'py>(
    py: Python<'py>,
    q: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = super::args::opt_f64_arg)] scale: Option<f64>,
    causal: bool,
    mask: Option<&Bound<'py, PyAny>>,
    window: Option<&Bound<'py, PyAny>>,
    return_lse: bool,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "softmax_attention";
    let window = window.map(|w| int_arg(w, F, "window", 1)).transpose()?;
    let mask = mask.map(|m| bool_arg(py, m, F, "mask")).transpose()?;
    let opts = ExactOptions {
        scale,
        causal,
        window,
        mask: None,
    };
    let qi = floats(py, q, F, "q")?;
    let (o, l) = match &qi.arr {
        Floats::F32(a) => exact_run::<f32>(py, a, k, v, mask.as_ref(), opts)?,
        Floats::F64(a) => exact_run::<f64>(py, a, k, v, mask.as_ref(), opts)?,
    };
    let o = qi.half_back(o)?;
    if return_lse {
        let l = qi.half_back(l)?;
        return Ok(PyTuple::new(py, [o, l])?.into_any());
    }
    Ok(o)
}
