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
