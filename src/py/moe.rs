//! MoE routing bindings: top_k_gating, noisy_logits, moe_dispatch/gather/combine and the losses.

use super::arrays::{as_rows, asarray, float_as, floats, int64s, numpy, read, two_d, Floats};
use super::errors::compute;
use crate::moe::{self, Activation, GateOptions, GroupScore, LoadBalance, Order, Score};
use crate::simd::Lanes;
use numpy::{Element, PyArray, PyArrayDescrMethods, PyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyAny, PyDict, PyTuple};

fn value_err<T>(msg: String) -> PyResult<T> {
    Err(PyValueError::new_err(msg))
}

fn non_negative(v: i64, func: &str, what: &str) -> PyResult<usize> {
    if v < 0 {
        return value_err(format!("{func}: {what} must be >= 0, got {v}"));
    }
    Ok(v as usize)
}

fn gate<'py, E: Lanes + Element>(
    py: Python<'py>,
    logits: &Bound<'py, PyArrayDyn<E>>,
    bias: Option<&Bound<'py, PyAny>>,
    opts: GateOptions,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let bias = bias
        .map(|b| float_as::<E>(py, b, "top_k_gating", "bias"))
        .transpose()?;
    let rl = read(logits)?;
    let rb = bias.as_ref().map(read).transpose()?;
    let lv = rl.as_array();
    let lead = lv.shape()[..lv.ndim().saturating_sub(1)].to_vec();
    let rows = as_rows(lv, "top_k_gating", "logits")?;
    let bv = match &rb {
        Some(b) => {
            let v = b.as_array();
            let s = v.shape().to_vec();
            Some(v.into_dimensionality::<ndarray::Ix1>().map_err(|_| {
                PyValueError::new_err(format!(
                    "top_k_gating: bias must be 1-D (E,), got shape {s:?}"
                ))
            })?)
        }
        None => None,
    };
    let (w, i) = compute(py, rows.len(), || moe::top_k_gating(rows.view(), bv, &opts))?;
    let mut shape = lead;
    shape.push(opts.k);
    let w = PyArray::from_owned_array(py, w).call_method1("reshape", (shape.clone(),))?;
    let i = PyArray::from_owned_array(py, i).call_method1("reshape", (shape,))?;
    Ok((w, i))
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/top_k_gating.txt"))]
#[pyo3(signature = (logits, k, *, order="softmax_topk", renormalize=true, temperature=1.0,
    score="softmax", bias=None, activation=None, n_group=1, topk_group=1, group_score=None))]
#[allow(clippy::too_many_arguments)]
pub fn top_k_gating<'py>(
    py: Python<'py>,
    logits: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = super::args::i64_arg)] k: i64,
    order: &str,
    renormalize: bool,
    #[pyo3(from_py_with = super::args::f64_arg)] temperature: f64,
    score: &str,
    bias: Option<&Bound<'py, PyAny>>,
    activation: Option<&str>,
    #[pyo3(from_py_with = super::args::i64_arg)] n_group: i64,
    #[pyo3(from_py_with = super::args::i64_arg)] topk_group: i64,
    group_score: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let f = "top_k_gating";
    let order = match order {
        "softmax_topk" => Order::SoftmaxTopk,
        "topk_softmax" => Order::TopkSoftmax,
        o => {
            return value_err(format!(
                "{f}: order must be \"softmax_topk\" or \"topk_softmax\", got {o:?}"
            ))
        }
    };
    let score = match score {
        "softmax" => Score::Softmax,
        "sigmoid" => Score::Sigmoid,
        s => {
            return value_err(format!(
                "{f}: score must be \"softmax\" or \"sigmoid\", got {s:?}"
            ))
        }
    };
    let activation = match activation {
        None => None,
        Some("sigmoid") => Some(Activation::Sigmoid),
        Some("tanh") => Some(Activation::Tanh),
        Some(a) => {
            return value_err(format!(
                "{f}: activation must be None, \"sigmoid\" or \"tanh\", got {a:?}"
            ))
        }
    };
    // DeepSeek-V2 scores a group by its best expert, V3 (sigmoid scores) by its best two.
    let group_score = match group_score {
        None if score == Score::Sigmoid => GroupScore::SumTop2,
        None | Some("max") => GroupScore::Max,
        Some("sum_top2") => GroupScore::SumTop2,
        Some(g) => {
            return value_err(format!(
                "{f}: group_score must be None, \"max\" or \"sum_top2\", got {g:?}"
            ))
        }
    };
    let inp = floats(py, logits, f, "logits")?;
    if inp.orig.ndim() == 0 {
        return value_err(format!("{f}: logits must be (..., E), got a scalar"));
    }
    if k < 1 {
        return value_err(format!("{f}: k must be >= 1, got {k}"));
    }
    let opts = GateOptions {
        k: k as usize,
        order,
        renormalize,
        temperature,
        score,
        activation,
        n_group: non_negative(n_group, f, "n_group")?,
        topk_group: non_negative(topk_group, f, "topk_group")?,
        group_score,
    };
    let (w, i) = match &inp.arr {
        Floats::F32(a) => gate::<f32>(py, a, bias, opts)?,
        Floats::F64(a) => gate::<f64>(py, a, bias, opts)?,
    };
    if !inp.half {
        return Ok(PyTuple::new(py, [w, i])?.into_any());
    }
    // float16: weights that were distinct in float32 can round equal; order again on the
    // values returned (weight descending, then id ascending).
    let np = numpy(py)?;
    let w16 = w.call_method1("astype", ("float16",))?;
    let kw = PyDict::new(py);
    kw.set_item("axis", -1)?;
    let keys = (i.clone(), w16.call_method0("__neg__")?);
    let order = np.call_method("lexsort", (keys,), Some(&kw))?;
    let w16 = np.call_method1("take_along_axis", (w16, order.clone(), -1))?;
    let i = np.call_method1("take_along_axis", (i, order, -1))?;
    Ok(PyTuple::new(py, [w16, i])?.into_any())
}

fn noisy<'py, E: Lanes + Element>(
    py: Python<'py>,
    clean: &Bound<'py, PyArrayDyn<E>>,
    noise: &Bound<'py, PyAny>,
    normal: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let f = "noisy_logits";
    let (s, z) = (
        float_as::<E>(py, noise, f, "noise_logits")?,
        float_as::<E>(py, normal, f, "normal")?,
    );
    let (rc, rs, rz) = (read(clean)?, read(&s)?, read(&z)?);
    let (c, s, z) = (rc.as_array(), rs.as_array(), rz.as_array());
    let out = compute(py, c.len(), || moe::noisy_logits(c, s, z))?;
    Ok(PyArray::from_owned_array(py, out).into_any())
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/noisy_logits.txt"))]
pub fn noisy_logits<'py>(
    py: Python<'py>,
    clean: &Bound<'py, PyAny>,
    noise_logits: &Bound<'py, PyAny>,
    normal: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let inp = floats(py, clean, "noisy_logits", "clean")?;
    let out = match &inp.arr {
        Floats::F32(a) => noisy::<f32>(py, a, noise_logits, normal)?,
        Floats::F64(a) => noisy::<f64>(py, a, noise_logits, normal)?,
    };
    inp.half_back(out)
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/moe_dispatch.txt"))]
#[pyo3(signature = (indices, num_experts, *, capacity=None))]
pub fn moe_dispatch<'py>(
    py: Python<'py>,
    indices: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = super::args::i64_arg)] num_experts: i64,
    #[pyo3(from_py_with = super::args::opt_i64_arg)] capacity: Option<i64>,
) -> PyResult<Bound<'py, PyAny>> {
    let f = "moe_dispatch";
    let e = non_negative(num_experts, f, "num_experts")?;
    let cap = capacity
        .map(|c| non_negative(c, f, "capacity"))
        .transpose()?;
    let idx = int64s(py, indices, f, "indices")?;
    let ri = read(&idx)?;
    let iv = two_d(ri.as_array(), f, "indices", "(T, k)")?;
    let (pos, counts) = compute(py, iv.len(), || moe::moe_dispatch(iv, e, cap))?;
    let pos = PyArray::from_owned_array(py, pos).into_any();
    let counts = PyArray::from_owned_array(py, counts).into_any();
    Ok(PyTuple::new(py, [pos, counts])?.into_any())
}

fn gather<'py, E: Element + crate::error::Zeroed + Send + Sync>(
    py: Python<'py>,
    x: &Bound<'py, PyArrayDyn<E>>,
    idx: &Bound<'py, PyArrayDyn<i64>>,
    pos: &Bound<'py, PyArrayDyn<i64>>,
    cap: usize,
    experts: Option<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    let f = "moe_gather";
    let (rx, ri, rp) = (read(x)?, read(idx)?, read(pos)?);
    let xv = two_d(rx.as_array(), f, "x", "(T, D)")?;
    let iv = two_d(ri.as_array(), f, "indices", "(T, k)")?;
    let pv = two_d(rp.as_array(), f, "positions", "(T, k)")?;
    let e = match experts {
        Some(e) => e,
        None => match iv.iter().max() {
            None => 0,
            Some(&m) => m
                .max(-1)
                .checked_add(1)
                .map(|v| v as usize)
                .ok_or_else(|| {
                    PyValueError::new_err(format!("{f}: expert index {m} is out of range"))
                })?,
        },
    };
    let out = compute(py, xv.len(), || moe::moe_gather(xv, iv, pv, cap, e))?;
    Ok(PyArray::from_owned_array(py, out).into_any())
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/moe_gather.txt"))]
#[pyo3(signature = (x, indices, positions, capacity, *, num_experts=None))]
pub fn moe_gather<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    positions: &Bound<'py, PyAny>,
    #[pyo3(from_py_with = super::args::i64_arg)] capacity: i64,
    #[pyo3(from_py_with = super::args::opt_i64_arg)] num_experts: Option<i64>,
) -> PyResult<Bound<'py, PyAny>> {
    let f = "moe_gather";
    let cap = non_negative(capacity, f, "capacity")?;
    let experts = num_experts
        .map(|e| non_negative(e, f, "num_experts"))
        .transpose()?;
    let idx = int64s(py, indices, f, "indices")?;
    let pos = int64s(py, positions, f, "positions")?;
    let xa = asarray(py, x, "moe_gather: x")?;
    let dt = xa.dtype();
    if dt.kind() == b'f' && dt.itemsize() == 2 && dt.is_native_byteorder() != Some(false) {
        // A gather is a copy: float16 moves as its 16-bit patterns, with no float32 round trip
        // over a buffer that may be far larger than x.
        let bits = xa.call_method1("view", ("uint16",))?;
        let out = gather::<u16>(
            py,
            bits.cast::<PyArrayDyn<u16>>()?,
            &idx,
            &pos,
            cap,
            experts,
        )?;
        return out.call_method1("view", ("float16",));
    }
    let inp = floats(py, xa.as_any(), f, "x")?;
    let out = match &inp.arr {
        Floats::F32(a) => gather::<f32>(py, a, &idx, &pos, cap, experts)?,
        Floats::F64(a) => gather::<f64>(py, a, &idx, &pos, cap, experts)?,
    };
    inp.half_back(out)
}

fn combine<'py, E: Lanes + Element>(
    py: Python<'py>,
    eo: &Bound<'py, PyArrayDyn<E>>,
    idx: &Bound<'py, PyArrayDyn<i64>>,
    pos: &Bound<'py, PyArrayDyn<i64>>,
    weights: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let f = "moe_combine";
    let w = float_as::<E>(py, weights, f, "weights")?;
    let (re, ri, rp, rw) = (read(eo)?, read(idx)?, read(pos)?, read(&w)?);
    let ev = re.as_array();
    let s = ev.shape().to_vec();
    let ev = ev.into_dimensionality::<ndarray::Ix3>().map_err(|_| {
        PyValueError::new_err(format!(
            "{f}: expert_out must be 3-D (E, C, D), got shape {s:?}"
        ))
    })?;
    let iv = two_d(ri.as_array(), f, "indices", "(T, k)")?;
    let pv = two_d(rp.as_array(), f, "positions", "(T, k)")?;
    let wv = two_d(rw.as_array(), f, "weights", "(T, k)")?;
    let out = compute(py, ev.len() + iv.len(), || moe::moe_combine(ev, iv, pv, wv))?;
    Ok(PyArray::from_owned_array(py, out).into_any())
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/moe_combine.txt"))]
pub fn moe_combine<'py>(
    py: Python<'py>,
    expert_out: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    positions: &Bound<'py, PyAny>,
    weights: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let f = "moe_combine";
    let inp = floats(py, expert_out, f, "expert_out")?;
    let idx = int64s(py, indices, f, "indices")?;
    let pos = int64s(py, positions, f, "positions")?;
    let out = match &inp.arr {
        Floats::F32(a) => combine::<f32>(py, a, &idx, &pos, weights)?,
        Floats::F64(a) => combine::<f64>(py, a, &idx, &pos, weights)?,
    };
    inp.half_back(out)
}

fn balance<E: Lanes + Element>(
    py: Python<'_>,
    probs: &Bound<'_, PyArrayDyn<E>>,
    idx: &Bound<'_, PyArrayDyn<i64>>,
    variant: LoadBalance,
) -> PyResult<f64> {
    let f = "load_balancing_loss";
    let (rp, ri) = (read(probs)?, read(idx)?);
    let pv = two_d(rp.as_array(), f, "probs", "(T, E)")?;
    let iv = two_d(ri.as_array(), f, "indices", "(T, k)")?;
    compute(py, pv.len(), || moe::load_balancing_loss(pv, iv, variant))
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/load_balancing_loss.txt"))]
#[pyo3(signature = (probs, indices, *, choices="first"))]
pub fn load_balancing_loss(
    py: Python<'_>,
    probs: &Bound<'_, PyAny>,
    indices: &Bound<'_, PyAny>,
    choices: &str,
) -> PyResult<f64> {
    let f = "load_balancing_loss";
    let variant = match choices {
        "first" => LoadBalance::First,
        "all" => LoadBalance::All,
        c => {
            return value_err(format!(
                "{f}: choices must be \"first\" or \"all\", got {c:?}"
            ))
        }
    };
    let inp = floats(py, probs, f, "probs")?;
    let idx = int64s(py, indices, f, "indices")?;
    match &inp.arr {
        Floats::F32(a) => balance::<f32>(py, a, &idx, variant),
        Floats::F64(a) => balance::<f64>(py, a, &idx, variant),
    }
}

fn z_loss<E: Lanes + Element>(py: Python<'_>, logits: &Bound<'_, PyArrayDyn<E>>) -> PyResult<f64> {
    let r = read(logits)?;
    let rows = as_rows(r.as_array(), "router_z_loss", "logits")?;
    compute(py, rows.len(), || moe::router_z_loss(rows.view()))
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/router_z_loss.txt"))]
pub fn router_z_loss(py: Python<'_>, logits: &Bound<'_, PyAny>) -> PyResult<f64> {
    let inp = floats(py, logits, "router_z_loss", "logits")?;
    match &inp.arr {
        Floats::F32(a) => z_loss::<f32>(py, a),
        Floats::F64(a) => z_loss::<f64>(py, a),
    }
}
