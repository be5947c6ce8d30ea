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

impl<'py> Input<'py> {
    /// A result in the caller's dtype: float16 callers get float16 back (computed in float32).
    pub fn half_back(&self, r: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if self.half {
            r.call_method1("astype", ("float16",))
        } else {
            Ok(r)
        }
    }
}

pub fn numpy(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    PyModule::import(py, "numpy")
}

/// np.asarray(x) as an ndarray; `label` ("func: argument") names it in errors. NumPy's own
/// conversion errors (a ragged nested list) are re-raised naming the argument, and an array
/// whose logical size exceeds this machine's memory (a huge zero-stride view, e.g. from
/// `np.broadcast_to`) is a ValueError: every kernel copies such a view or writes an output as
/// large, and a failed allocation would abort the interpreter.
pub fn asarray<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    label: &str,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let a = match x.cast::<PyUntypedArray>() {
        Ok(a) => a.clone(),
        Err(_) => {
            let a = numpy(py)?.call_method1("asarray", (x,)).map_err(|e| {
                let msg = format!("{label}: {}", e.value(py));
                if e.is_instance_of::<PyTypeError>(py) {
                    PyTypeError::new_err(msg)
                } else {
                    PyValueError::new_err(msg)
                }
            })?;
            a.cast_into::<PyUntypedArray>()?
        }
    };
    let bytes = (a.len() as u128) * (a.dtype().itemsize() as u128);
    if bytes > memory_bytes() {
        return Err(PyValueError::new_err(format!(
            "{label}: shape {:?} is {bytes} bytes, more than this machine's memory ({} bytes)",
            a.shape(),
            memory_bytes()
        )));
    }
    Ok(a)
}

/// Physical memory (Linux: sysconf), else the largest allocation Rust allows. Read once: every
/// array argument of every call is checked against it, and sysconf(_SC_PHYS_PAGES) is a
/// system call.
pub(crate) fn memory_bytes() -> u128 {
    static BYTES: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    *BYTES.get_or_init(|| {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: sysconf has no preconditions.
            let (pages, size) = unsafe {
                (
                    libc::sysconf(libc::_SC_PHYS_PAGES),
                    libc::sysconf(libc::_SC_PAGESIZE),
                )
            };
            if pages > 0 && size > 0 {
                return pages as u128 * size as u128;
            }
        }
        isize::MAX as u128
    })
}

fn dtype_name(a: &Bound<'_, PyUntypedArray>) -> String {
    a.dtype()
        .str()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The float array of `x` (argument `arg` of `func`), or TypeError naming both and the dtype.
pub fn floats<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    func: &str,
    arg: &str,
) -> PyResult<Input<'py>> {
    let what = format!("{func}: {arg}");
    let a = asarray(py, x, &what)?;
    let dt = a.dtype();
    let (arr, half) = if dt.is_equiv_to(&dtype::<f32>(py)) {
        (Floats::F32(a.cast::<PyArrayDyn<f32>>()?.clone()), false)
    } else if dt.is_equiv_to(&dtype::<f64>(py)) {
        (Floats::F64(a.cast::<PyArrayDyn<f64>>()?.clone()), false)
    } else if dt.kind() == b'f' && dt.itemsize() == 2 {
        let f = a.call_method1("astype", ("float32",))?;
        (Floats::F32(f.cast_into::<PyArrayDyn<f32>>()?), true)
    } else if dt.kind() == b'f' && matches!(dt.itemsize(), 4 | 8) {
        // Non-native byte order ('>f4' on x86): computed on a native copy, returned native.
        let native = if dt.itemsize() == 4 {
            "float32"
        } else {
            "float64"
        };
        let f = a.call_method1("astype", (native,))?;
        if dt.itemsize() == 4 {
            (Floats::F32(f.cast_into::<PyArrayDyn<f32>>()?), false)
        } else {
            (Floats::F64(f.cast_into::<PyArrayDyn<f64>>()?), false)
        }
    } else {
        return Err(PyTypeError::new_err(format!(
            "{what} has unsupported dtype {}; expected float16, float32 or float64",
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
    bool_array(py, m, "where")
}

/// `m` as a bool array; TypeError starting with `label` for other dtypes.
fn bool_array<'py>(
    py: Python<'py>,
    m: &Bound<'py, PyAny>,
    label: &str,
) -> PyResult<Bound<'py, PyArrayDyn<bool>>> {
    let a = asarray(py, m, label)?;
    if !a.dtype().is_equiv_to(&dtype::<bool>(py)) {
        return Err(PyTypeError::new_err(format!(
            "{label}: expected a bool array, got dtype {}",
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

/// A secondary float input in the primary input's dtype E (converted when it is another float
/// dtype, as NumPy would promote); TypeError for non-float dtypes.
pub fn float_as<'py, E: numpy::Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    func: &str,
    what: &str,
) -> PyResult<Bound<'py, PyArrayDyn<E>>> {
    let a = asarray(py, x, &format!("{func}: {what}"))?;
    if a.dtype().kind() != b'f' {
        return Err(PyTypeError::new_err(format!(
            "{func}: {what} has unsupported dtype {}; expected a float dtype",
            dtype_name(&a)
        )));
    }
    if let Ok(t) = a.cast::<PyArrayDyn<E>>() {
        return Ok(t.clone());
    }
    let c = a.call_method1("astype", (dtype::<E>(py),))?;
    Ok(c.cast_into::<PyArrayDyn<E>>()?)
}

/// An integer index array as int64; TypeError for other dtypes (bool and float included).
pub fn int64s<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    func: &str,
    what: &str,
) -> PyResult<Bound<'py, PyArrayDyn<i64>>> {
    let a = asarray(py, x, &format!("{func}: {what}"))?;
    let kind = a.dtype().kind();
    if kind != b'i' && kind != b'u' {
        return Err(PyTypeError::new_err(format!(
            "{func}: {what} has unsupported dtype {}; expected an integer dtype",
            dtype_name(&a)
        )));
    }
    if let Ok(t) = a.cast::<PyArrayDyn<i64>>() {
        return Ok(t.clone());
    }
    // uint64 values above int64's range would wrap to negatives in the cast (2**64 - 1 would be
    // reported as index -1): refuse them by value, naming the argument.
    if kind == b'u' && a.dtype().itemsize() == 8 && a.len() > 0 {
        let top = a.call_method0("max")?;
        if top.gt(i64::MAX)? {
            return Err(PyValueError::new_err(format!(
                "{func}: {what} holds {top}, beyond int64's range"
            )));
        }
    }
    let c = a.call_method1("astype", (dtype::<i64>(py),))?;
    Ok(c.cast_into::<PyArrayDyn<i64>>()?)
}

/// A read-only borrow of an input array; ValueError if it is mutably borrowed elsewhere.
pub fn read<'py, E: numpy::Element>(
    a: &Bound<'py, PyArrayDyn<E>>,
) -> PyResult<numpy::PyReadonlyArrayDyn<'py, E>> {
    use numpy::PyArrayMethods;
    a.try_readonly()
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// A view as 2-D (rows, last axis), copying only when the layout requires it.
pub fn as_rows<'a, E: Clone>(
    v: ndarray::ArrayViewD<'a, E>,
    func: &str,
    what: &str,
) -> PyResult<ndarray::CowArray<'a, E, ndarray::Ix2>> {
    let nd = v.ndim();
    if nd == 0 {
        return Err(PyValueError::new_err(format!(
            "{func}: {what} must have at least 1 dimension, got a scalar"
        )));
    }
    let last = v.shape()[nd - 1];
    let rows: usize = v.shape()[..nd - 1].iter().product();
    let shaped = if v.is_standard_layout() {
        v.into_shape_with_order((rows, last))
            .map(ndarray::CowArray::from)
    } else {
        owned_copy(v.view(), func, what)?
            .into_shape_with_order((rows, last))
            .map(ndarray::CowArray::from)
    };
    shaped.map_err(|e| PyValueError::new_err(format!("{func}: {what}: {e}")))
}

/// A C-ordered copy of a view, or MemoryError when it cannot be allocated: Rust aborts the
/// process on a failed allocation, and a strided or broadcast view may be far larger than the
/// memory it occupies.
pub fn owned_copy<E: Clone>(
    v: ndarray::ArrayViewD<'_, E>,
    func: &str,
    what: &str,
) -> PyResult<ndarray::ArrayD<E>> {
    let buf = crate::error::try_collect(v.len(), v.iter().cloned(), "").map_err(|_| {
        pyo3::exceptions::PyMemoryError::new_err(format!(
            "{func}: {what}: cannot allocate a contiguous copy of shape {:?}",
            v.shape()
        ))
    })?;
    ndarray::ArrayD::from_shape_vec(v.raw_dim(), buf)
        .map_err(|e| PyValueError::new_err(format!("{func}: {what}: {e}")))
}

/// Exactly 2-D, or ValueError naming the expected shape.
pub fn two_d<'a, E>(
    v: ndarray::ArrayViewD<'a, E>,
    func: &str,
    what: &str,
    shape: &str,
) -> PyResult<ndarray::ArrayView2<'a, E>> {
    let s = v.shape().to_vec();
    v.into_dimensionality::<ndarray::Ix2>().map_err(|_| {
        PyValueError::new_err(format!(
            "{func}: {what} must be 2-D {shape}, got shape {s:?}"
        ))
    })
}

/// A bool mask argument named `what` of `func`; TypeError naming both for other dtypes.
pub fn bool_arg<'py>(
    py: Python<'py>,
    m: &Bound<'py, PyAny>,
    func: &str,
    what: &str,
) -> PyResult<Bound<'py, PyArrayDyn<bool>>> {
    bool_array(py, m, &format!("{func}: {what}"))
}

/// A non-negative size argument, or ValueError naming it.
pub fn size_arg(v: i64, func: &str, what: &str, min: i64) -> PyResult<usize> {
    if v < min {
        return Err(PyValueError::new_err(format!(
            "{func}: {what} must be >= {min}, got {v}"
        )));
    }
    usize::try_from(v)
        .map_err(|_| PyValueError::new_err(format!("{func}: {what} is too large: {v}")))
}

/// An integer argument >= `min` as a size: ints and NumPy integers; one beyond i64 counts as
/// "larger than any size" (isize::MAX), a negative one as too small; TypeError for non-integers,
/// so no OverflowError reaches the caller.
pub fn int_arg(x: &Bound<'_, PyAny>, func: &str, what: &str, min: i64) -> PyResult<usize> {
    use pyo3::exceptions::PyOverflowError;
    if x.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{func}: {what} must be an int, got a bool"
        )));
    }
    match x.extract::<i64>() {
        Ok(v) => size_arg(v, func, what, min).map(|v| v.min(isize::MAX as usize)),
        Err(e) if e.is_instance_of::<PyOverflowError>(x.py()) => {
            if x.lt(0)? {
                Err(PyValueError::new_err(format!(
                    "{func}: {what} must be >= {min}, got {x}"
                )))
            } else {
                Ok(isize::MAX as usize)
            }
        }
        Err(_) => Err(PyTypeError::new_err(format!(
            "{func}: {what} must be an int, got {}",
            x.get_type().name()?
        ))),
    }
}
