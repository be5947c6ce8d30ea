//! The `axis` argument of the softmax family: an int, a tuple of ints, or None (the whole
//! array), as NumPy's and SciPy's reductions take it (a list is a TypeError there too).

use crate::softmax::Axes;
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyTuple};

/// `axis` as the kernels take it.
pub struct AxisArg(pub Axes);

/// One axis: an int (or NumPy integer); a huge int is out of bounds (ValueError), not an
/// OverflowError.
fn one(x: &Bound<'_, PyAny>) -> PyResult<isize> {
    if x.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(
            "axis must be an int, a tuple of ints or None, got a bool",
        ));
    }
    match x.extract::<isize>() {
        Ok(a) => Ok(a),
        Err(e) if e.is_instance_of::<PyOverflowError>(x.py()) => {
            Err(PyValueError::new_err(format!("axis {x} is out of bounds")))
        }
        Err(_) => Err(PyTypeError::new_err(format!(
            "axis must be an int, a tuple of ints or None, got {}",
            x.get_type().name()?
        ))),
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for AxisArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let obj = obj.to_owned();
        if obj.is_none() {
            return Ok(AxisArg(Axes::All));
        }
        if obj.is_instance_of::<PyTuple>() {
            let list = obj
                .try_iter()?
                .map(|a| one(&a?))
                .collect::<PyResult<Vec<_>>>()?;
            return Ok(AxisArg(Axes::Many(list)));
        }
        Ok(AxisArg(Axes::One(one(&obj)?)))
    }
}
