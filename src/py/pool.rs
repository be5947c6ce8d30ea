//! Output buffers that outlive their arrays: a bounded pool of large, 2 MiB-aligned buffers
//! behind the NumPy arrays softcore returns.
//!
//! A fresh output is written once, and on the VMs measured (benches/README.md, "fresh outputs")
//! faulting its pages in costs as much as the softmax itself: the kernel zeroes and maps each
//! 4 KiB page, and glibc returns large freed blocks to the kernel, so `y = softmax(x)` in a
//! loop pays for new pages on every call while `out=` does not. Here a large output lives in a
//! buffer owned by a Python object (the array's base); when NumPy frees the array the buffer
//! returns to the pool, and the next call of a similar size reuses its mapped pages. The pool is
//! bounded (a few buffers, at most a sixteenth of the machine's memory and 256 MiB), so what it
//! keeps is what a loop of such calls would hold anyway.

use numpy::{Element, PyArray, PyArrayDyn};
use pyo3::prelude::*;
use std::alloc::Layout;
use std::sync::Mutex;

/// Outputs smaller than this come from NumPy's allocator (glibc reuses such blocks itself).
const MIN_BYTES: usize = 1 << 20;
/// Buffers are aligned to, and sized in, transparent huge pages.
const HUGE: usize = crate::memory::HUGE_PAGE;
/// At most this many idle buffers (two per size for `y = f(x)` in a loop, a few sizes).
const MAX_IDLE: usize = 6;

struct Buffer {
    ptr: *mut u8,
    bytes: usize,
}

// SAFETY: the buffer is plain memory owned by exactly one Buffer; it moves between threads only
// through the pool's mutex or inside its (GIL-protected) Python owner.
unsafe impl Send for Buffer {}
unsafe impl Sync for Buffer {}

impl Buffer {
    fn layout(bytes: usize) -> Option<Layout> {
        Layout::from_size_align(bytes, HUGE).ok()
    }

    /// A new buffer of `bytes` (a non-zero multiple of HUGE), or None when it cannot be had.
    fn new(bytes: usize) -> Option<Buffer> {
        let layout = Self::layout(bytes)?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc(layout) };
        if ptr.is_null() {
            return None;
        }
        // SAFETY: [ptr, ptr + bytes) is this allocation.
        unsafe { crate::memory::advise_huge_pages(ptr, bytes) };
        Some(Buffer { ptr, bytes })
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if let Some(layout) = Self::layout(self.bytes) {
            // SAFETY: allocated in `new` with this layout (which was valid then), freed once.
            unsafe { std::alloc::dealloc(self.ptr, layout) }
        }
    }
}

static IDLE: Mutex<Vec<Buffer>> = Mutex::new(Vec::new());

/// The most the idle buffers may hold together.
pub fn budget() -> usize {
    (super::arrays::memory_bytes() / 16).min(256 << 20) as usize
}

/// An idle buffer of at least `bytes` and at most twice that, or a new one.
fn take(bytes: usize) -> Option<Buffer> {
    let bytes = bytes.checked_next_multiple_of(HUGE)?;
    let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
    let best = (0..idle.len())
        .filter(|&i| idle[i].bytes >= bytes && idle[i].bytes <= 2 * bytes)
        .min_by_key(|&i| idle[i].bytes);
    match best {
        Some(i) => Some(idle.swap_remove(i)),
        None => {
            drop(idle);
            Buffer::new(bytes)
        }
    }
}

/// A buffer back from a freed array: kept if the pool has room, the oldest dropped for it.
fn give_back(b: Buffer) {
    if b.bytes > budget() {
        return;
    }
    let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
    idle.push(b);
    while idle.len() > MAX_IDLE || idle.iter().map(|b| b.bytes).sum::<usize>() > budget() {
        idle.remove(0);
    }
}

/// The base object of a pooled array: owns the buffer while any view of the array lives.
#[pyclass(module = "softcore", frozen)]
pub struct OutputBuffer {
    buf: Option<Buffer>,
}

impl Drop for OutputBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            give_back(b);
        }
    }
}

/// An uninitialised C-ordered array of `shape` for a kernel to write: pooled when large,
/// from NumPy's allocator otherwise (or when a pooled buffer cannot be had).
///
/// # Safety
/// Every element must be written before the array is read or returned (on an error the array
/// is dropped unseen, as with `PyArray::new`).
pub unsafe fn output<'py, E: Element>(
    py: Python<'py>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyArrayDyn<E>>> {
    let len = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let bytes = len.and_then(|n| n.checked_mul(std::mem::size_of::<E>()));
    let buf = match bytes {
        Some(b) if b >= MIN_BYTES && std::mem::size_of::<E>() > 0 => take(b),
        _ => None,
    };
    let Some(buf) = buf else {
        // SAFETY: the caller writes every element before the array is read.
        return Ok(unsafe { PyArray::new(py, shape, false) });
    };
    let ptr = buf.ptr.cast::<E>();
    let owner = Bound::new(py, OutputBuffer { buf: Some(buf) })?;
    // SAFETY: the buffer holds at least len elements of E, aligned to 2 MiB; `owner` keeps it
    // alive as the array's base and hands it back only when NumPy frees the last view.
    let view = unsafe { ndarray::ArrayViewD::from_shape_ptr(ndarray::IxDyn(shape), ptr) };
    Ok(unsafe { PyArray::borrow_from_array(&view, owner.into_any()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_the_pool_stays_bounded() {
        let a = take(3 << 20).unwrap();
        assert_eq!(a.bytes, 4 << 20);
        assert_eq!(a.ptr as usize % HUGE, 0);
        let p = a.ptr;
        give_back(a);
        let b = take(4 << 20).unwrap();
        assert_eq!(b.ptr, p, "the idle buffer of the same size is reused");
        let c = take(1 << 20).unwrap();
        assert_ne!(c.ptr, p);
        give_back(b);
        give_back(c);
        for _ in 0..2 * MAX_IDLE {
            give_back(Buffer::new(HUGE).unwrap());
        }
        let idle = IDLE.lock().unwrap();
        assert!(idle.len() <= MAX_IDLE);
        assert!(idle.iter().map(|b| b.bytes).sum::<usize>() <= budget());
    }
}
