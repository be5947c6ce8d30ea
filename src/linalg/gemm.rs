//! The crate's one GEMM entry point, over the `gemm` crate (faer's kernels: runtime-dispatched
//! AVX-512/AVX2/scalar microkernels). Chosen over `matrixmultiply` by measurement on the shapes
//! the pseudo-inverse uses (benches/README.md). Strided views of any sign are accepted.

use crate::error::{Error, Result};
use crate::simd::Elem;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};

/// Element types the GEMM supports.
pub trait GemmElem: Elem {}
impl GemmElem for f32 {}
impl GemmElem for f64 {}

/// C <- beta C + alpha A B (BLAS convention; with beta = 0, C is not read, so it may hold NaN).
pub fn gemm<E: GemmElem>(
    beta: E,
    mut c: ArrayViewMut2<'_, E>,
    alpha: E,
    a: ArrayView2<'_, E>,
    b: ArrayView2<'_, E>,
) -> Result<()> {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    if k != k2 || c.dim() != (m, n) {
        return Err(Error::Invalid(format!(
            "gemm: shapes {:?} x {:?} -> {:?} do not match",
            a.shape(),
            b.shape(),
            c.shape()
        )));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let (cs, as_, bs) = (
        c.strides().to_vec(),
        a.strides().to_vec(),
        b.strides().to_vec(),
    );
    // SAFETY: the pointers and strides come from valid views of the stated shapes; `c` is a
    // unique borrow, so it cannot alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            cs[1],
            cs[0],
            beta != E::ZERO,
            a.as_ptr(),
            as_[1],
            as_[0],
            b.as_ptr(),
            bs[1],
            bs[0],
            beta,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    Ok(())
}

/// A B as a new C-contiguous matrix.
pub fn matmul<E: GemmElem>(a: ArrayView2<'_, E>, b: ArrayView2<'_, E>) -> Result<Array2<E>> {
    let mut c = Array2::from_elem((a.nrows(), b.ncols()), E::ZERO);
    gemm(E::ZERO, c.view_mut(), E::ONE, a, b)?;
    Ok(c)
}
