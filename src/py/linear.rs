//! linear_attention, causal_dot_product, hedgehog_feature_map: extract with the GIL, compute
//! detached, return arrays.

use super::arrays::{float_as, floats, read, size_arg, two_d, Floats, Input};
use super::errors::compute;
use crate::attention::{
    causal_dot_product as cdp, hedgehog_feature_map as hedgehog, linear_attention as linear,
    FeatureMap, LinearOptions,
};
use crate::error::Error;
use crate::linalg::GemmElem;
use crate::simd::Lanes;
use numpy::{Element, PyArray, PyArrayDyn};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyAny, PyTuple};

type State<'py> = (Bound<'py, PyAny>, Option<Bound<'py, PyAny>>);

fn linear_run<'py, E: GemmElem + Lanes + Element>(
    py: Python<'py>,
    q: &Bound<'py, PyArrayDyn<E>>,
    (k, v): (&Bound<'py, PyAny>, &Bound<'py, PyAny>),
    decay: Option<&Bound<'py, PyAny>>,
    init: Option<&State<'py>>,
    opts: &LinearOptions,
) -> PyResult<[Bound<'py, PyAny>; 3]> {
    const F: &str = "linear_attention";
    let (k, v) = (float_as::<E>(py, k, F, "k")?, float_as::<E>(py, v, F, "v")?);
    let g = decay
        .map(|g| float_as::<E>(py, g, F, "decay"))
        .transpose()?;
    let s0 = init
        .map(|(s, _)| float_as::<E>(py, s, F, "initial_state S"))
        .transpose()?;
    let z0 = init
        .and_then(|(_, z)| z.as_ref())
        .map(|z| float_as::<E>(py, z, F, "initial_state z"))
        .transpose()?;
    let (rq, rk, rv) = (read(q)?, read(&k)?, read(&v)?);
    let rg = g.as_ref().map(read).transpose()?;
    let (rs, rz) = (
        s0.as_ref().map(read).transpose()?,
        z0.as_ref().map(read).transpose()?,
    );
    let (vq, vk, vv) = (rq.as_array(), rk.as_array(), rv.as_array());
    let vg = rg.as_ref().map(|g| g.as_array());
    let vinit = rs
        .as_ref()
        .map(|s| (s.as_array(), rz.as_ref().map(|z| z.as_array())));
    let work = vq
        .len()
        .saturating_mul(vv.shape().last().copied().unwrap_or(1));
    let (o, st) = compute(py, work, || linear(vq, vk, vv, vg, vinit, opts))?;
    Ok([
        PyArray::from_owned_array(py, o).into_any(),
        PyArray::from_owned_array(py, st.s).into_any(),
        PyArray::from_owned_array(py, st.z).into_any(),
    ])
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/linear_attention.txt"))]
#[pyo3(signature = (q, k, v, *, feature_map="elu1", causal=false, decay=None, normalize=true, scale=None, eps=1e-6, chunk_size=64, initial_state=None, return_state=false))]
#[allow(clippy::too_many_arguments)]
pub fn linear_attention<'py>(
    py: Python<'py>,
    q: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    feature_map: &str,
    causal: bool,
    decay: Option<&Bound<'py, PyAny>>,
    normalize: bool,
    #[pyo3(from_py_with = super::args::opt_f64_arg)] scale: Option<f64>,
    #[pyo3(from_py_with = super::args::f64_arg)] eps: f64,
    #[pyo3(from_py_with = super::args::i64_arg)] chunk_size: i64,
    initial_state: Option<&Bound<'py, PyAny>>,
    return_state: bool,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "linear_attention";
    let map = FeatureMap::from_name(feature_map)
        .map_err(|e: Error| PyValueError::new_err(format!("{F}: {e}")))?;
    let opts = LinearOptions {
        feature_map: map,
        causal,
        normalize,
        scale,
        eps,
        chunk_size: size_arg(chunk_size, F, "chunk_size", 1)?,
    };
    let init: Option<State<'py>> = initial_state
        .map(|s| {
            s.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "{F}: initial_state must be a tuple (S, z) of arrays (z may be None)"
                ))
            })
        })
        .transpose()?;
    let qi = floats(py, q, F, "q")?;
    let [o, s, z] = match &qi.arr {
        Floats::F32(a) => linear_run::<f32>(py, a, (k, v), decay, init.as_ref(), &opts)?,
        Floats::F64(a) => linear_run::<f64>(py, a, (k, v), decay, init.as_ref(), &opts)?,
    };
    let o = qi.half_back(o)?;
    if !return_state {
        return Ok(o);
    }
    let state = PyTuple::new(py, [qi.half_back(s)?, qi.half_back(z)?])?;
    Ok(PyTuple::new(py, [o, state.into_any()])?.into_any())
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/causal_dot_product.txt"))]
pub fn causal_dot_product<'py>(
    py: Python<'py>,
    q: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "causal_dot_product";
    fn run<'py, E: GemmElem + Lanes + Element>(
        py: Python<'py>,
        q: &Bound<'py, PyArrayDyn<E>>,
        k: &Bound<'py, PyAny>,
        v: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (k, v) = (float_as::<E>(py, k, F, "k")?, float_as::<E>(py, v, F, "v")?);
        let (rq, rk, rv) = (read(q)?, read(&k)?, read(&v)?);
        let (vq, vk, vv) = (rq.as_array(), rk.as_array(), rv.as_array());
        let o = compute(py, vq.len().saturating_mul(64), || cdp(vq, vk, vv)).map_err(|e| {
            PyValueError::new_err(e.value(py).to_string().replace("linear_attention", F))
        })?;
        Ok(PyArray::from_owned_array(py, o).into_any())
    }
    let qi = floats(py, q, F, "q")?;
    let o = match &qi.arr {
        Floats::F32(a) => run::<f32>(py, a, k, v)?,
        Floats::F64(a) => run::<f64>(py, a, k, v)?,
    };
    qi.half_back(o)
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/hedgehog_feature_map.txt"))]
#[pyo3(signature = (x, weight, bias=None))]
pub fn hedgehog_feature_map<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "hedgehog_feature_map";
    fn run<'py, E: GemmElem + Lanes + Element>(
        py: Python<'py>,
        x: &Bound<'py, PyArrayDyn<E>>,
        w: &Bound<'py, PyAny>,
        b: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let w = float_as::<E>(py, w, F, "weight")?;
        let b = b.map(|b| float_as::<E>(py, b, F, "bias")).transpose()?;
        let (rx, rw) = (read(x)?, read(&w)?);
        let rb = b.as_ref().map(read).transpose()?;
        let vw = two_d(rw.as_array(), F, "weight", "(d, f)")?;
        let bvec: Option<Vec<E>> = match &rb {
            Some(b) if b.as_array().ndim() != 1 => {
                return Err(PyValueError::new_err(format!(
                    "{F}: bias must be 1-D (f,), got shape {:?}",
                    b.as_array().shape()
                )))
            }
            Some(b) => Some(b.as_array().iter().copied().collect()),
            None => None,
        };
        let vx = rx.as_array();
        let o = compute(py, vx.len().saturating_mul(vw.ncols()), || {
            hedgehog(vx, vw, bvec.as_deref())
        })?;
        Ok(PyArray::from_owned_array(py, o).into_any())
    }
    let xi: Input<'py> = floats(py, x, F, "x")?;
    let o = match &xi.arr {
        Floats::F32(a) => run::<f32>(py, a, weight, bias)?,
        Floats::F64(a) => run::<f64>(py, a, weight, bias)?,
    };
    xi.half_back(o)
}
