//! Getting arrays out of Python: dtype dispatch, `out=` and `where=` validation.

use numpy::{dtype, PyArrayDescrMethods, PyArrayDyn, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyAny;

/// An input converted by `np.asarray`, by floating dtype. float16 is carried as float32 (the
/// softmax family computes it in float32 and converts back).
pub enum Floats<'py> {
    F32(Bound<'py, PyArrayDyn<f32>>),
    F64(Bound<'py, PyArrayDyn<f64>>),
}

impl<'py> Floats<'py> {
    /// The array, whatever its dtype.
    pub fn as_any(&self) -> &Bound<'py, PyAny> {
        match self {
            Floats::F32(a) => a.as_any(),
            Floats::F64(a) => a.as_any(),
        }
    }
}

pub struct Input<'py> {
    pub arr: Floats<'py>,
    /// The caller's array (after asarray), to check `out` against.
    pub orig: Bound<'py, PyUntypedArray>,
    /// True when the caller passed float16.
    pub half: bool,
}

pub fn numpy(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    PyModule::import(py, "numpy")
}

/// np.asarray(x) as an ndarray.
pub fn asarray<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    if let Ok(a) = x.cast::<PyUntypedArray>() {
        return Ok(a.clone());
    }
    let a = numpy(py)?.call_method1("asarray", (x,))?;
    Ok(a.cast_into::<PyUntypedArray>()?)
}

fn dtype_name(a: &Bound<'_, PyUntypedArray>) -> String {
    a.dtype()
        .str()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The float array of `x`, or TypeError naming the dtype.
pub fn floats<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, what: &str) -> PyResult<Input<'py>> {
    let a = asarray(py, x)?;
    let dt = a.dtype();
    let (arr, half) = if dt.is_equiv_to(&dtype::<f32>(py)) {
        (Floats::F32(a.cast::<PyArrayDyn<f32>>()?.clone()), false)
    } else if dt.is_equiv_to(&dtype::<f64>(py)) {
        (Floats::F64(a.cast::<PyArrayDyn<f64>>()?.clone()), false)
    } else if dt.kind() == b'f' && dt.itemsize() == 2 {
        let f = a.call_method1("astype", ("float32",))?;
        (Floats::F32(f.cast_into::<PyArrayDyn<f32>>()?), true)
    } else {
        return Err(PyTypeError::new_err(format!(
            "{what}: unsupported dtype {}; expected float16, float32 or float64",
            dtype_name(&a)
        )));
    };
    Ok(Input { arr, orig: a, half })
}

/// A bool mask (`where=`): TypeError for other dtypes.
pub fn bool_mask<'py>(
    py: Python<'py>,
    m: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArrayDyn<bool>>> {
    let a = asarray(py, m)?;
    if !a.dtype().is_equiv_to(&dtype::<bool>(py)) {
        return Err(PyTypeError::new_err(format!(
            "where: expected a bool array, got dtype {}",
            dtype_name(&a)
        )));
    }
    Ok(a.cast::<PyArrayDyn<bool>>()?.clone())
}

/// Validates `out=`: an ndarray of `x`'s dtype and shape, C-contiguous, writeable, sharing no
/// memory with any of `inputs`.
pub fn check_out<'py>(
    py: Python<'py>,
    out: &Bound<'py, PyAny>,
    x: &Bound<'py, PyUntypedArray>,
    inputs: &[&Bound<'py, PyAny>],
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let o = out
        .cast::<PyUntypedArray>()
        .map_err(|_| PyValueError::new_err("out must be a numpy.ndarray"))?
        .clone();
    if !o.dtype().is_equiv_to(&x.dtype()) {
        return Err(PyValueError::new_err(format!(
            "out has dtype {}, expected {}",
            dtype_name(&o),
            dtype_name(x)
        )));
    }
    if o.shape() != x.shape() {
        return Err(PyValueError::new_err(format!(
            "out has shape {:?}, expected {:?}",
            o.shape(),
            x.shape()
        )));
    }
    if !o.is_c_contiguous() {
        return Err(PyValueError::new_err("out must be C-contiguous"));
    }
    let writeable: bool = o.getattr("flags")?.getattr("writeable")?.extract()?;
    if !writeable {
        return Err(PyValueError::new_err("out must be writeable"));
    }
    let np = numpy(py)?;
    for i in inputs {
        if np
            .call_method1("may_share_memory", (&o, i))?
            .extract::<bool>()?
        {
            return Err(PyValueError::new_err("out must not overlap the inputs"));
        }
    }
    Ok(o)
}

/// `x` as an array of the element type E of another argument, or TypeError naming both.
pub fn same_dtype<'py, E: numpy::Element>(
    x: &Bound<'py, PyAny>,
    func: &str,
    what: &str,
    of: &str,
) -> PyResult<Bound<'py, PyArrayDyn<E>>> {
    x.cast::<PyArrayDyn<E>>()
        .cloned()
        .map_err(|_| PyTypeError::new_err(format!("{func}: {what} must have the dtype of {of}")))
}
