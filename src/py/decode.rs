//! decode_attention: extract with the GIL, compute detached, return arrays.

use super::arrays::{float_as, floats, int64s, int_arg, read, Floats};
use super::errors::compute;
use crate::attention::{decode_attention as decode, DecodeInfo, DecodeOptions};
use crate::simd::Lanes;
use numpy::{Element, PyArray, PyArrayDyn};
use pyo3::prelude::*;
use pyo3::types::{PyAny, PyDict, PyTuple};

type Decoded<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>, DecodeInfo);

fn decode_run<'py, E: Lanes + Element>(
    py: Python<'py>,
    q: &Bound<'py, PyArrayDyn<E>>,
    (k, v): (&Bound<'py, PyAny>, &Bound<'py, PyAny>),
    kv_len: Option<&Bound<'py, PyArrayDyn<i64>>>,
    opts: DecodeOptions<'static>,
) -> PyResult<Decoded<'py>> {
    const F: &str = "decode_attention";
    let (k, v) = (float_as::<E>(py, k, F, "k")?, float_as::<E>(py, v, F, "v")?);
    let (rq, rk, rv) = (read(q)?, read(&k)?, read(&v)?);
    let rl = kv_len.map(read).transpose()?;
    let opts = DecodeOptions {
        kv_len: rl.as_ref().map(|l| l.as_array()),
        ..opts
    };
    let (vq, vk, vv) = (rq.as_array(), rk.as_array(), rv.as_array());
    let work = vk.len().saturating_add(vv.len());
    let (o, l, info) = compute(py, work, || decode(vq, vk, vv, &opts))?;
    Ok((
        PyArray::from_owned_array(py, o).into_any(),
        PyArray::from_owned_array(py, l).into_any(),
        info,
    ))
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/decode_attention.txt"))]
#[pyo3(signature = (q, k, v, *, scale=None, kv_len=None, num_splits=None, unified_max=None, return_info=false))]
#[allow(clippy::too_many_arguments)]
pub fn decode_attention<'py>(
    py: Python<'py>,
    q: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = super::args::opt_f64_arg)] scale: Option<f64>,
    kv_len: Option<&Bound<'py, PyAny>>,
    num_splits: Option<&Bound<'py, PyAny>>,
    #[pyo3(from_py_with = super::args::opt_f64_arg)] unified_max: Option<f64>,
    return_info: bool,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "decode_attention";
    let num_splits = num_splits
        .map(|n| int_arg(n, F, "num_splits", 1))
        .transpose()?;
    let kv_len = kv_len.map(|l| int64s(py, l, F, "kv_len")).transpose()?;
    let opts = DecodeOptions {
        scale,
        kv_len: None,
        num_splits,
        unified_max,
    };
    let qi = floats(py, q, F, "q")?;
    let (o, l, info) = match &qi.arr {
        Floats::F32(a) => decode_run::<f32>(py, a, (k, v), kv_len.as_ref(), opts)?,
        Floats::F64(a) => decode_run::<f64>(py, a, (k, v), kv_len.as_ref(), opts)?,
    };
    let (o, l) = (qi.half_back(o)?, qi.half_back(l)?);
    if return_info {
        let d = PyDict::new(py);
        d.set_item("num_splits", info.num_splits)?;
        d.set_item("fallback_rows", info.fallback_rows)?;
        return Ok(PyTuple::new(py, [o, l, d.into_any()])?.into_any());
    }
    Ok(PyTuple::new(py, [o, l])?.into_any())
}
