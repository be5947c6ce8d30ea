//! isa(), thread-count control.

use super::errors::to_py;
use pyo3::prelude::*;

/// The SIMD path in use: "avx512f", "avx2" or "scalar".
#[pyfunction]
pub fn isa() -> &'static str {
    crate::simd::active().name()
}

/// Every SIMD path this CPU supports, narrowest first.
#[pyfunction]
pub fn supported_isas() -> Vec<&'static str> {
    crate::simd::Isa::supported()
        .into_iter()
        .map(|i| i.name())
        .collect()
}

#[pyfunction]
pub fn set_num_threads(n: i64) -> PyResult<()> {
    let n = usize::try_from(n).map_err(|_| {
        pyo3::exceptions::PyValueError::new_err(format!("number of threads must be >= 1, got {n}"))
    })?;
    crate::threads::set_num_threads(n).map_err(to_py)
}

#[pyfunction]
pub fn get_num_threads() -> usize {
    crate::threads::num_threads()
}
