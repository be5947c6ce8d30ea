//! inline_attention, rala_attention: extract with the GIL, compute detached, return arrays.

use super::arrays::{float_as, floats, read, Floats};
use super::errors::compute;
use crate::attention::{inline_attention as inline, rala_attention as rala, FeatureMap};
use crate::error::Error;
use crate::linalg::GemmElem;
use crate::simd::Lanes;
use numpy::{Element, PyArray, PyArrayDyn};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyAny;

/// Which kernel a call runs, with its options.
#[derive(Clone, Copy)]
enum Call {
    Inline(Option<f64>, FeatureMap),
    Rala(Option<f64>, f64),
}

fn run<'py, E: GemmElem + Lanes + Element>(
    py: Python<'py>,
    func: &str,
    q: &Bound<'py, PyArrayDyn<E>>,
    (k, v): (&Bound<'py, PyAny>, &Bound<'py, PyAny>),
    call: Call,
) -> PyResult<Bound<'py, PyAny>> {
    let (k, v) = (
        float_as::<E>(py, k, func, "k")?,
        float_as::<E>(py, v, func, "v")?,
    );
    let (rq, rk, rv) = (read(q)?, read(&k)?, read(&v)?);
    let (vq, vk, vv) = (rq.as_array(), rk.as_array(), rv.as_array());
    let work = vq.len().saturating_add(vk.len()).saturating_mul(8);
    let o = compute(py, work, || match call {
        Call::Inline(s, map) => inline(vq, vk, vv, s, map),
        Call::Rala(s, eps) => rala(vq, vk, vv, s, eps),
    })?;
    Ok(PyArray::from_owned_array(py, o).into_any())
}

fn dispatch<'py>(
    py: Python<'py>,
    func: &str,
    (q, k, v): (&Bound<'py, PyAny>, &Bound<'py, PyAny>, &Bound<'py, PyAny>),
    call: Call,
) -> PyResult<Bound<'py, PyAny>> {
    let qi = floats(py, q, func)?;
    let o = match &qi.arr {
        Floats::F32(a) => run::<f32>(py, func, a, (k, v), call)?,
        Floats::F64(a) => run::<f64>(py, func, a, (k, v), call)?,
    };
    qi.half_back(o)
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/inline_attention.txt"))]
#[pyo3(signature = (q, k, v, *, scale=None, feature_map="identity"))]
pub fn inline_attention<'py>(
    py: Python<'py>,
    q: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    scale: Option<f64>,
    feature_map: &str,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "inline_attention";
    let map = FeatureMap::from_name(feature_map)
        .map_err(|e: Error| PyValueError::new_err(format!("{F}: {e}")))?;
    dispatch(py, F, (q, k, v), Call::Inline(scale, map))
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/rala_attention.txt"))]
#[pyo3(signature = (q, k, v, *, scale=None, eps=1e-6))]
pub fn rala_attention<'py>(
    py: Python<'py>,
    q: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    scale: Option<f64>,
    eps: f64,
) -> PyResult<Bound<'py, PyAny>> {
    dispatch(py, "rala_attention", (q, k, v), Call::Rala(scale, eps))
}
