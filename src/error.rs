//! The one error type of every kernel. Pure Rust: the Python layer maps it to ValueError.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// `axis` is out of range for an array of `ndim` dimensions.
    Axis { axis: isize, ndim: usize },
    /// Two shapes that must agree do not.
    Shape {
        what: &'static str,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    /// Any other invalid argument, with the message to show.
    Invalid(String),
    /// A buffer that could not be allocated (Python: MemoryError), with the message to show.
    Alloc(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Axis { axis, ndim } => {
                write!(
                    f,
                    "axis {axis} is out of bounds for an array of dimension {ndim}"
                )
            }
            Error::Shape {
                what,
                expected,
                got,
            } => {
                write!(f, "{what} has shape {got:?}, expected {expected:?}")
            }
            Error::Invalid(msg) | Error::Alloc(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// The items of `iter` (`len` of them) in a vector, or [`Error::Alloc`] when the vector cannot
/// be allocated: a failed allocation would abort the process, and a strided or broadcast view
/// copied to C order may be far larger than the memory it occupies. `what` names the buffer.
pub fn try_collect<T>(len: usize, iter: impl Iterator<Item = T>, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| Error::Alloc(format!("cannot allocate {what} ({len} elements)")))?;
    v.extend(iter);
    Ok(v)
}

/// Types whose all-zero bit pattern is the value zero.
///
/// # Safety
/// An implementor must be valid, and equal to its zero, when every byte is 0.
pub unsafe trait Zeroed: Copy {}
// SAFETY: all-zero bits are 0 / 0.0 for the integers and the IEEE floats.
unsafe impl Zeroed for i64 {}
unsafe impl Zeroed for u16 {}
unsafe impl Zeroed for usize {}
unsafe impl Zeroed for f32 {}
unsafe impl Zeroed for f64 {}

/// `len` zeros from the allocator's zeroed pages (calloc: the kernel maps them lazily, so a huge
/// mostly-untouched buffer costs only the pages written), or `None` when they cannot be had.
pub fn try_zeroed<T: Zeroed>(len: usize) -> Option<Vec<T>> {
    if len == 0 || std::mem::size_of::<T>() == 0 {
        return Some(Vec::new());
    }
    let layout = std::alloc::Layout::array::<T>(len).ok()?;
    // SAFETY: layout has a non-zero size; a non-null result is `len` zeroed, aligned T values,
    // valid by `Zeroed`, owned by the Vec with the same layout it will free them with.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout) as *mut T;
        (!ptr.is_null()).then(|| Vec::from_raw_parts(ptr, len, len))
    }
}

/// Normalises a possibly negative axis.
pub fn normalize_axis(axis: isize, ndim: usize) -> Result<usize> {
    let a = if axis < 0 { axis + ndim as isize } else { axis };
    if a < 0 || a >= ndim as isize {
        return Err(Error::Axis { axis, ndim });
    }
    Ok(a as usize)
}
