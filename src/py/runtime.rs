//! isa(), thread-count control.

use super::errors::to_py;
use pyo3::prelude::*;

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/isa.txt"))]
pub fn isa() -> &'static str {
    crate::simd::active().name()
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/supported_isas.txt"))]
pub fn supported_isas() -> Vec<&'static str> {
    crate::simd::Isa::supported()
        .into_iter()
        .map(|i| i.name())
        .collect()
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/set_num_threads.txt"))]
pub fn set_num_threads(#[pyo3(from_py_with = super::args::i64_arg)] n: i64) -> PyResult<()> {
    let n = usize::try_from(n).map_err(|_| {
        pyo3::exceptions::PyValueError::new_err(format!(
            "set_num_threads: n (the number of threads) must be >= 1, got {n}"
        ))
    })?;
    crate::threads::set_num_threads(n).map_err(to_py)
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/get_num_threads.txt"))]
pub fn get_num_threads() -> usize {
    crate::threads::num_threads()
}

#[pyfunction]
#[doc = include_str!(concat!(env!("OUT_DIR"), "/docs/cpu_info.txt"))]
pub fn cpu_info(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    let c = crate::cpu_info::caches();
    let t = crate::cpu_info::thresholds();
    let d = pyo3::types::PyDict::new(py);
    d.set_item("isa", isa())?;
    d.set_item("supported_isas", supported_isas())?;
    d.set_item("threads", get_num_threads())?;
    d.set_item("l1d_bytes", c.l1d)?;
    d.set_item("l2_bytes", c.l2)?;
    d.set_item("l3_bytes", c.l3)?;
    d.set_item("cache_source", c.source)?;
    d.set_item("softmax_reload_max_row_bytes", t.reload_max_row_bytes)?;
    d.set_item("softmax_stream_min_bytes", t.stream_min_bytes)?;
    d.set_item("output_pool_max_bytes", super::pool::budget())?;
    Ok(d)
}
