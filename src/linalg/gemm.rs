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
    let (cs, as_, bs) = (c.strides(), a.strides(), b.strides());
    let (cs, as_, bs) = ((cs[0], cs[1]), (as_[0], as_[1]), (bs[0], bs[1]));
    // SAFETY: the pointers and strides come from valid views of the stated shapes; `c` is a
    // unique borrow, so it cannot alias `a` or `b`.
    unsafe {
        raw(
            (m, n, k),
            beta,
            (c.as_mut_ptr(), cs),
            alpha,
            (a.as_ptr(), as_),
            (b.as_ptr(), bs),
        )
    };
    Ok(())
}

/// Row-major slices: C (m x n) <- beta C + alpha op(A) op(B), op(A) m x k and op(B) k x n,
/// where A is stored m x k (or k x m when `at`, i.e. A^T is used) and B k x n (or n x k when
/// `bt`). The blocked kernels (attention tiles, chunks) call this with their scratch buffers.
///
/// # Panics
/// When a slice is shorter than its shape (a defect of the caller, never of the input).
#[allow(clippy::too_many_arguments)]
pub fn gemm_rows<E: GemmElem>(
    beta: E,
    c: &mut [E],
    (m, n, k): (usize, usize, usize),
    alpha: E,
    a: &[E],
    at: bool,
    b: &[E],
    bt: bool,
) {
    assert!(
        c.len() >= m * n && a.len() >= m * k && b.len() >= k * n,
        "gemm_rows: short slice"
    );
    if m == 0 || n == 0 {
        return;
    }
    // (row stride, column stride) of op(A) and op(B) in elements.
    let ast = if at { (1, m as isize) } else { (k as isize, 1) };
    let bst = if bt { (1, k as isize) } else { (n as isize, 1) };
    // SAFETY: the asserts above keep every access of the stated shapes and strides inside the
    // slices; `c` is a unique borrow, so it cannot alias `a` or `b`.
    unsafe {
        raw(
            (m, n, k),
            beta,
            (c.as_mut_ptr(), (n as isize, 1)),
            alpha,
            (a.as_ptr(), ast),
            (b.as_ptr(), bst),
        )
    };
}

/// The one call into the `gemm` crate: C <- beta C + alpha A B with (row, column) strides in
/// elements (the crate takes dst := alpha dst + beta lhs rhs, column stride first).
///
/// # Safety
/// Every element of the m x n, m x k and k x n operands at those strides is inside its
/// allocation, and `c` aliases neither `a` nor `b`.
unsafe fn raw<E: GemmElem>(
    (m, n, k): (usize, usize, usize),
    beta: E,
    (c, (crs, ccs)): (*mut E, (isize, isize)),
    alpha: E,
    (a, (ars, acs)): (*const E, (isize, isize)),
    (b, (brs, bcs)): (*const E, (isize, isize)),
) {
    // SAFETY: the caller's contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            ccs,
            crs,
            beta != E::ZERO,
            a,
            acs,
            ars,
            b,
            bcs,
            brs,
            beta,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// A B as a new C-contiguous matrix.
pub fn matmul<E: GemmElem>(a: ArrayView2<'_, E>, b: ArrayView2<'_, E>) -> Result<Array2<E>> {
    let mut c = Array2::from_elem((a.nrows(), b.ncols()), E::ZERO);
    gemm(E::ZERO, c.view_mut(), E::ONE, a, b)?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array2};

    fn naive(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols()).map(|k| a[[i, k]] * b[[k, j]]).sum()
        })
    }

    #[test]
    fn matches_naive_on_any_layout() {
        let big = Array2::from_shape_fn((40, 50), |(i, j)| ((i * 31 + j * 17) % 23) as f64 - 11.0);
        for (m, k, n) in [
            (0, 3, 4),
            (3, 0, 4),
            (1, 1, 1),
            (7, 5, 9),
            (17, 33, 16),
            (32, 40, 20),
        ] {
            let a = big.slice(s![..m, ..k]);
            let b = big.slice(s![..k, ..n]);
            let want = naive(a, b);
            // Transposed, reversed and strided views of the same data.
            let at = big.slice(s![..k, ..m]).reversed_axes().to_owned();
            let brev = big.slice(s![..k;-1, ..n]).to_owned();
            let brev_back = brev.slice(s![..;-1, ..]);
            for (aa, bb) in [(a, b), (at.view(), b), (a, brev_back)] {
                let c = matmul(aa, bb).expect("gemm");
                assert_eq!(c, naive(aa, bb));
            }
            assert_eq!(matmul(a, b).expect("gemm"), want);
            // Accumulate: C <- 2 C - A B into a strided destination.
            let mut cbuf = Array2::from_elem((m, 2 * n), 1.0);
            let mut c = cbuf.slice_mut(s![.., ..;2]);
            gemm(2.0, c.view_mut(), -1.0, a, b).expect("gemm");
            let want2 = want.mapv(|x| 2.0 - x);
            assert_eq!(c.to_owned(), want2);
            assert!(cbuf.slice(s![.., 1..;2]).iter().all(|&x| x == 1.0));
        }
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let a = Array2::<f32>::zeros((3, 4));
        let b = Array2::<f32>::zeros((5, 2));
        assert!(matmul(a.view(), b.view()).is_err());
    }
}
