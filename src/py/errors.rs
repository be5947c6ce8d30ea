//! Kernel errors to Python exceptions, and the guard that keeps a Rust panic from reaching Python.

use crate::error::Error;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::PyErr;

pub fn to_py(e: Error) -> PyErr {
    match e {
        Error::Alloc(msg) => pyo3::exceptions::PyMemoryError::new_err(msg),
        e => PyValueError::new_err(e.to_string()),
    }
}

/// Runs the compute closure, with the GIL released when the work is large enough to be worth
/// it, and turns a panic (a defect, never expected) into a RuntimeError instead of aborting the
/// interpreter or raising PanicException.
pub fn compute<T: Send>(
    py: pyo3::Python<'_>,
    elems: usize,
    f: impl FnOnce() -> Result<T, Error> + Send,
) -> pyo3::PyResult<T> {
    let guarded = move || std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let r = if elems >= 1 << 14 {
        py.detach(guarded)
    } else {
        guarded()
    };
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(to_py(e)),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            Err(PyRuntimeError::new_err(format!(
                "softcore internal error (please report): {msg}"
            )))
        }
    }
}
