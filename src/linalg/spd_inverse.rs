//! A direct starting point for Newton–Schulz on symmetric positive definite input: the inverse
//! by Gauss–Jordan elimination in double precision (Higham, "Accuracy and Stability of
//! Numerical Algorithms", 2nd ed., §14.4), n^3 flops against 4 n^3 per Newton–Schulz step.
//! Started there, the iteration converges in one or two steps instead of ~log2(cond) + 5, and
//! those steps still decide convergence: the result is a Newton–Schulz iterate accepted by the
//! same step test as any other start.
//!
//! No pivoting is needed for SPD input: the pivots are those of A = L D L^T (the squares of the
//! Cholesky diagonal), all positive; a pivot below 1e-12 of its diagonal entry means A is
//! semidefinite or indefinite (or nearly so) and the general start is taken instead. Every step
//! is a full-length row update (an axpy over n contiguous elements). Where no inverse is needed,
//! only its product with a few columns (SOFT's W), the Cholesky solve (`cholesky.rs`) does a
//! third of the work.

use super::gemm::GemmElem;
use crate::simd::{dispatch, Kernel, Simd};
use ndarray::{Array2, ArrayView2};

/// A^-1 in f64 rounded to E, or None when A is not square, not exactly symmetric, or not
/// numerically positive definite.
pub fn spd_inverse<E: GemmElem>(a: ArrayView2<'_, E>) -> Option<Array2<E>> {
    let inv = spd_inverse_f64(a, 0.0)?;
    Some(Array2::from_shape_fn((inv.n, inv.n), |(i, j)| {
        E::from_f64(inv.row(i)[j])
    }))
}

/// Pivots at most this fraction of their diagonal entry mean A is semidefinite or indefinite
/// (or nearly so): Gauss–Jordan here and the Cholesky factorisation decline it.
pub(super) const PIVOT_FLOOR: f64 = 1e-12;

/// (A + ridge I)^-1 of a symmetric matrix, in double precision.
pub struct InverseF64 {
    buf: Vec<f64>,
    off: usize,
    n: usize,
    ld: usize,
}

impl InverseF64 {
    /// Row i (n elements).
    pub fn row(&self, i: usize) -> &[f64] {
        &self.buf[self.off + i * self.ld..][..self.n]
    }
}

/// sum |x|, in eight independent partial sums (a single running sum is a serial dependency the
/// compiler may not reorder, so it would not vectorise).
pub(super) fn abs_sum(xs: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = xs.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|x| x.abs()).sum();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k].abs();
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// Writes A + ridge I (square) in f64 into the first n columns of the rows of `m` (stride
/// `ld` >= n; the rest is left as it is) and returns ||A + ridge I||_1, or None unless A is
/// exactly symmetric and A + ridge I finite.
pub(super) fn load_symmetric<E: GemmElem>(
    a: ArrayView2<'_, E>,
    ridge: f64,
    m: &mut [f64],
    ld: usize,
) -> Option<f64> {
    let n = a.nrows();
    assert!(a.ncols() == n && ld >= n && m.len() >= n * ld);
    for (i, row) in a.rows().into_iter().enumerate() {
        let dst = &mut m[i * ld..i * ld + n];
        match row.as_slice() {
            Some(r) => dst.iter_mut().zip(r).for_each(|(d, &x)| *d = x.to_f64()),
            None => dst.iter_mut().zip(row).for_each(|(d, &x)| *d = x.to_f64()),
        }
        dst[i] += ridge;
    }
    if (0..n).any(|i| (0..i).any(|j| m[i * ld + j] != m[j * ld + i])) {
        return None;
    }
    finite_norm1(m, n, ld)
}

/// ||M||_1 of a symmetric n x n matrix (rows of stride `ld`; row sums serve for column sums),
/// or None when an entry is not finite.
pub(super) fn finite_norm1(m: &[f64], n: usize, ld: usize) -> Option<f64> {
    let mut norm = 0.0f64;
    for i in 0..n {
        let sum = abs_sum(&m[i * ld..i * ld + n]);
        if !sum.is_finite() {
            return None;
        }
        norm = norm.max(sum);
    }
    Some(norm)
}

/// Rows are padded to a multiple of 8 f64: whole vectors on every ISA (8, 4 and 1 lanes).
pub(super) const PAD: usize = 8;

/// The row stride of the f64 matrices here: n rounded up to whole vectors on every ISA.
pub(crate) fn padded(n: usize) -> usize {
    n.next_multiple_of(PAD)
}

/// (A + ridge I)^-1 in f64, or None when A is not square, not exactly symmetric, not finite, or
/// A + ridge I is not numerically positive definite.
pub fn spd_inverse_f64<E: GemmElem>(a: ArrayView2<'_, E>, ridge: f64) -> Option<InverseF64> {
    let n = a.nrows();
    if n != a.ncols() || n == 0 {
        return None;
    }
    // Rows padded with zeros to whole vectors (they stay zero): only full-width loads and
    // stores, no masked tail store overlapping the next row's first load (which would defeat
    // store-to-load forwarding on every row update).
    let ld = padded(n);
    let mut buf = vec![0.0f64; n * ld + 8];
    let off = buf.as_ptr().align_offset(64).min(8);
    let m = &mut buf[off..off + n * ld];
    load_symmetric(a, ridge, m, ld)?;
    if !dispatch(crate::simd::active(), GaussJordan { m, n, ld }) {
        return None;
    }
    Some(InverseF64 { buf, off, n, ld })
}

/// In-place Gauss–Jordan inversion without pivoting of the n x n matrix `m` (row stride `ld`,
/// a multiple of 8, zero past column n).
struct GaussJordan<'a> {
    m: &'a mut [f64],
    n: usize,
    ld: usize,
}

impl Kernel<f64> for GaussJordan<'_> {
    type Output = bool;
    #[inline(always)]
    fn run<S: Simd<E = f64>>(self) -> bool {
        // Rows of up to eight vectors (n <= 64 on AVX-512) keep the pivot row in registers and
        // update each row with straight-line code; longer rows take the loop.
        match self.ld / S::LANES {
            1 => gauss_jordan::<S, 1>(self),
            2 => gauss_jordan::<S, 2>(self),
            3 => gauss_jordan::<S, 3>(self),
            4 => gauss_jordan::<S, 4>(self),
            5 => gauss_jordan::<S, 5>(self),
            6 => gauss_jordan::<S, 6>(self),
            7 => gauss_jordan::<S, 7>(self),
            8 => gauss_jordan::<S, 8>(self),
            _ => gauss_jordan::<S, 0>(self),
        }
    }
}

/// The elimination; NV > 0 is the row length in vectors (NV = 0: any length, looped).
#[inline(always)]
fn gauss_jordan<S: Simd<E = f64>, const NV: usize>(g: GaussJordan<'_>) -> bool {
    let (m, n, ld) = (g.m, g.n, g.ld);
    let w = S::LANES;
    let diag: Vec<f64> = (0..n).map(|i| m[i * ld + i].abs()).collect();
    let mut pbuf = vec![0.0f64; ld + 8];
    let off = pbuf.as_ptr().align_offset(64).min(8);
    let pivot_row = &mut pbuf[off..off + ld];
    for k in 0..n {
        let p = m[k * ld + k];
        if p.is_nan() || p <= PIVOT_FLOOR * diag[k] {
            return false;
        }
        // Row k becomes (row k with 1 in column k) / p; every other row i loses m[i][k] times
        // it, with 0 in column k first: the in-place form of [A | I]. Column k is written by a
        // scalar store after each row's vector update, not before it: a vector load cannot take
        // its data from an earlier, narrower store still in flight, and would stall every row.
        let inv = 1.0 / p;
        pivot_row.copy_from_slice(&m[k * ld..(k + 1) * ld]);
        row_scale::<S>(pivot_row, inv);
        pivot_row[k] = 0.0;
        m[k * ld..(k + 1) * ld].copy_from_slice(pivot_row);
        m[k * ld + k] = inv;
        if NV == 0 {
            for i in (0..n).filter(|&i| i != k) {
                let row = &mut m[i * ld..(i + 1) * ld];
                let f = row[k];
                row_axpy::<S>(row, -f, pivot_row);
                row[k] = -f * inv;
            }
            continue;
        }
        // SAFETY: pivot_row and every row hold ld = NV * LANES elements.
        unsafe {
            let pr: [S::V; NV] = std::array::from_fn(|u| S::load(pivot_row.as_ptr().add(u * w)));
            for i in (0..n).filter(|&i| i != k) {
                let row = m.as_mut_ptr().add(i * ld);
                let f = *row.add(k);
                let nf = S::splat(-f);
                for (u, &x) in pr.iter().enumerate() {
                    S::store(row.add(u * w), S::fma(nf, x, S::load(row.add(u * w))));
                }
                *row.add(k) = -f * inv;
            }
        }
    }
    true
}

/// row *= s, a vector at a time (the last one masked).
#[inline(always)]
fn row_scale<S: Simd<E = f64>>(row: &mut [f64], s: f64) {
    let (w, n, sv) = (S::LANES, row.len(), S::splat(s));
    let p = row.as_mut_ptr();
    let mut j = 0;
    // SAFETY: every access is below n.
    unsafe {
        while j + w <= n {
            S::store(p.add(j), S::mul(S::load(p.add(j)), sv));
            j += w;
        }
        if j < n {
            let x = S::load_partial(p.add(j), n - j, 0.0);
            S::store_partial(p.add(j), n - j, S::mul(x, sv));
        }
    }
}

/// row += s x, a vector at a time (the last one masked).
#[inline(always)]
fn row_axpy<S: Simd<E = f64>>(row: &mut [f64], s: f64, x: &[f64]) {
    let (w, n, sv) = (S::LANES, row.len().min(x.len()), S::splat(s));
    let (p, q) = (row.as_mut_ptr(), x.as_ptr());
    let mut j = 0;
    // SAFETY: every access is below n <= both lengths.
    unsafe {
        while j + w <= n {
            S::store(p.add(j), S::fma(sv, S::load(q.add(j)), S::load(p.add(j))));
            j += w;
        }
        if j < n {
            let (y, xv) = (
                S::load_partial(p.add(j), n - j, 0.0),
                S::load_partial(q.add(j), n - j, 0.0),
            );
            S::store_partial(p.add(j), n - j, S::fma(sv, xv, y));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_of_spd_matrices() {
        // Rows of 1..8 vectors (the unrolled paths) and longer (the loop), with padding.
        for n in [1usize, 2, 7, 8, 9, 17, 49, 56, 57, 63, 64, 65, 100] {
            // A = B B^T + n I is SPD and exactly symmetric.
            let b = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
            let mut a = b.dot(&b.t());
            a.diag_mut().iter_mut().for_each(|x| *x += n as f64);
            let inv: Array2<f64> = spd_inverse(a.view()).expect("SPD");
            let id = a.dot(&inv);
            for ((i, j), x) in id.indexed_iter() {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((x - want).abs() < 1e-10, "n={n} ({i},{j}) {x}");
            }
        }
    }

    #[test]
    fn ridge_and_non_finite_input() {
        // diag(1, 4, 0.5) + ridge 0.5 I = diag(1.5, 4.5, 1).
        let a = Array2::from_diag(&ndarray::arr1(&[1.0f32, 4.0, 0.5]));
        let inv = spd_inverse_f64(a.view(), 0.5).expect("SPD");
        let want = [1.0 / 1.5, 1.0 / 4.5, 1.0];
        for (i, w) in want.iter().enumerate() {
            assert!((inv.row(i)[i] - w).abs() < 1e-15);
        }
        // Non-finite entries are not inverted.
        let mut b = a.clone();
        b[[1, 1]] = f32::INFINITY;
        assert!(spd_inverse_f64(b.view(), 0.0).is_none());
        b[[1, 1]] = f32::NAN;
        assert!(spd_inverse_f64(b.view(), 0.0).is_none());
    }

    #[test]
    fn rejects_non_spd() {
        let a = ndarray::arr2(&[[1.0f64, 2.0], [2.0, 1.0]]); // indefinite
        assert!(spd_inverse(a.view()).is_none());
        let a = ndarray::arr2(&[[1.0f64, 1.0], [1.0, 1.0]]); // semidefinite
        assert!(spd_inverse(a.view()).is_none());
        let a = ndarray::arr2(&[[2.0f64, 1.0], [0.5, 2.0]]); // not symmetric
        assert!(spd_inverse(a.view()).is_none());
        let a = ndarray::arr2(&[[1.0f64, 0.0, 0.0], [0.0, 1.0, 0.0]]); // not square
        assert!(spd_inverse(a.view()).is_none());
    }
}
