//! inline_attention, rala_attention, agent_attention, agent_pool, tensor_attention: extract with the GIL, compute detached, return arrays.

use super::arrays::{float_as, floats, int_arg, read, Floats};
use super::errors::compute;
use crate::attention::{
    agent_attention as agent, agent_pool as pool, inline_attention as inline,
    rala_attention as rala, tensor_attention as tensor, AgentOptions, FeatureMap, TensorInputs,
    TensorOptions,
};
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
    let qi = floats(py, q, func, "q")?;
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
    #[pyo3(from_py_with = super::args::opt_f64_arg)] scale: Option<f64>,
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
    #[pyo3(from_py_with = super::args::opt_f64_arg)] scale: Option<f64>,
    #[pyo3(from_py_with = super::args::f64_arg)] eps: f64,
) -> PyResult<Bound<'py, PyAny>> {
    dispatch(py, "rala_attention", (q, k, v), Call::Rala(scale, eps))
}

/// `grid=(h, w)`: two non-negative ints, or ValueError/TypeError naming grid.
fn grid_arg(grid: Option<&Bound<'_, PyAny>>, func: &str) -> PyResult<Option<(usize, usize)>> {
    let Some(g) = grid else { return Ok(None) };
    let (h, w): (Bound<'_, PyAny>, Bound<'_, PyAny>) = g.extract().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "{func}: grid must be a tuple (h, w) of ints"
        ))
    })?;
    Ok(Some((
        int_arg(&h, func, "grid", 1)?,
        int_arg(&w, func, "grid", 1)?,
    )))
}

fn agent_run<'py, E: GemmElem + Lanes + Element>(
    py: Python<'py>,
    q: &Bound<'py, PyArrayDyn<E>>,
    (k, v): (&Bound<'py, PyAny>, &Bound<'py, PyAny>),
    extra: [Option<&Bound<'py, PyAny>>; 3],
    (num_agents, grid, scale): (usize, Option<(usize, usize)>, Option<f64>),
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "agent_attention";
    let (k, v) = (float_as::<E>(py, k, F, "k")?, float_as::<E>(py, v, F, "v")?);
    let names = ["agents", "agent_bias", "query_bias"];
    let mut arrs = Vec::new();
    for (x, name) in extra.iter().zip(names) {
        arrs.push(x.map(|x| float_as::<E>(py, x, F, name)).transpose()?);
    }
    let reads = arrs
        .iter()
        .map(|a| a.as_ref().map(read).transpose())
        .collect::<PyResult<Vec<_>>>()?;
    let (rq, rk, rv) = (read(q)?, read(&k)?, read(&v)?);
    let view = |i: usize| reads[i].as_ref().map(|r| r.as_array());
    let opts = AgentOptions {
        agents: view(0),
        num_agents,
        grid,
        scale,
        agent_bias: view(1),
        query_bias: view(2),
    };
    let (vq, vk, vv) = (rq.as_array(), rk.as_array(), rv.as_array());
    let work = vq.len().saturating_add(vk.len()).saturating_mul(64);
    let o = compute(py, work, || agent(vq, vk, vv, &opts))?;
    Ok(PyArray::from_owned_array(py, o).into_any())
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/agent_attention.txt"))]
#[pyo3(
    signature = (q, k, v, agents=None, *, num_agents=None, grid=None, scale=None, agent_bias=None, query_bias=None),
    text_signature = "(q, k, v, agents=None, *, num_agents=49, grid=None, scale=None, agent_bias=None, query_bias=None)"
)]
#[allow(clippy::too_many_arguments)]
pub fn agent_attention<'py>(
    py: Python<'py>,
    q: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    agents: Option<&Bound<'py, PyAny>>,
    num_agents: Option<&Bound<'py, PyAny>>,
    grid: Option<&Bound<'py, PyAny>>,
    #[pyo3(from_py_with = super::args::opt_f64_arg)] scale: Option<f64>,
    agent_bias: Option<&Bound<'py, PyAny>>,
    query_bias: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "agent_attention";
    // None (the runtime default; the signature shows 49) and any int pass through int_arg, so
    // 2**70 is a size, not an OverflowError.
    let num_agents = num_agents
        .map(|n| int_arg(n, F, "num_agents", 1))
        .transpose()?
        .unwrap_or(49);
    let grid = grid_arg(grid, F)?;
    let qi = floats(py, q, F, "q")?;
    let extra = [agents, agent_bias, query_bias];
    let opts = (num_agents, grid, scale);
    let o = match &qi.arr {
        Floats::F32(a) => agent_run::<f32>(py, a, (k, v), extra, opts)?,
        Floats::F64(a) => agent_run::<f64>(py, a, (k, v), extra, opts)?,
    };
    qi.half_back(o)
}

fn pool_run<'py, E: Lanes + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyArrayDyn<E>>,
    num_agents: usize,
    grid: Option<(usize, usize)>,
) -> PyResult<Bound<'py, PyAny>> {
    let r = read(x)?;
    let v = r.as_array();
    let o = compute(py, v.len(), || pool(v, num_agents, grid))?;
    Ok(PyArray::from_owned_array(py, o).into_any())
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/agent_pool.txt"))]
#[pyo3(signature = (x, num_agents, *, grid=None))]
pub fn agent_pool<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    num_agents: &Bound<'py, PyAny>,
    grid: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "agent_pool";
    let num_agents = int_arg(num_agents, F, "num_agents", 1)?;
    let grid = grid_arg(grid, F)?;
    let xi = floats(py, x, F, "x")?;
    let o = match &xi.arr {
        Floats::F32(a) => pool_run(py, a, num_agents, grid)?,
        Floats::F64(a) => pool_run(py, a, num_agents, grid)?,
    };
    xi.half_back(o)
}

fn tensor_run<'py, E: GemmElem + Lanes + Element>(
    py: Python<'py>,
    q: &Bound<'py, PyArrayDyn<E>>,
    rest: [&Bound<'py, PyAny>; 4],
    opts: TensorOptions,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "tensor_attention";
    let names = ["k1", "k2", "v1", "v2"];
    let arrs = rest
        .iter()
        .zip(names)
        .map(|(x, n)| float_as::<E>(py, x, F, n))
        .collect::<PyResult<Vec<_>>>()?;
    let reads = arrs.iter().map(read).collect::<PyResult<Vec<_>>>()?;
    let rq = read(q)?;
    let x = TensorInputs {
        q: rq.as_array(),
        k1: reads[0].as_array(),
        k2: reads[1].as_array(),
        v1: reads[2].as_array(),
        v2: reads[3].as_array(),
    };
    let work = x.q.len().saturating_mul(x.k1.len().max(1));
    let o = compute(py, work, || tensor(x, &opts))?;
    Ok(PyArray::from_owned_array(py, o).into_any())
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/tensor_attention.txt"))]
#[pyo3(signature = (q, k1, k2, v1, v2, *, scale=None, degree=None, causal=false, windows=None))]
#[allow(clippy::too_many_arguments)]
pub fn tensor_attention<'py>(
    py: Python<'py>,
    q: &Bound<'py, PyAny>,
    k1: &Bound<'py, PyAny>,
    k2: &Bound<'py, PyAny>,
    v1: &Bound<'py, PyAny>,
    v2: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = super::args::opt_f64_arg)] scale: Option<f64>,
    degree: Option<&Bound<'py, PyAny>>,
    causal: bool,
    windows: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "tensor_attention";
    let degree = degree.map(|g| int_arg(g, F, "degree", 0)).transpose()?;
    let windows = match windows {
        None => None,
        Some(w) => {
            let (a, b): (Bound<'py, PyAny>, Bound<'py, PyAny>) = w.extract().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(format!(
                    "{F}: windows must be a tuple (w1, w2) of ints"
                ))
            })?;
            Some((int_arg(&a, F, "windows", 1)?, int_arg(&b, F, "windows", 1)?))
        }
    };
    let opts = TensorOptions {
        scale,
        degree,
        causal,
        windows,
    };
    let qi = floats(py, q, F, "q")?;
    let rest = [k1, k2, v1, v2];
    let o = match &qi.arr {
        Floats::F32(a) => tensor_run::<f32>(py, a, rest, opts)?,
        Floats::F64(a) => tensor_run::<f64>(py, a, rest, opts)?,
    };
    qi.half_back(o)
}
