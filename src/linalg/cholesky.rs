//! The Cholesky factorisation A = R^T R of a small symmetric positive definite matrix in double
//! precision, and solves with it: SOFT's W = (K(L, L) + ridge I)^-1 C with l ~ 49 landmarks.
//! n^3 / 3 flops to factor and 2 n^2 per right-hand side, backward stable without pivoting for
//! SPD input (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., ch. 10),
//! against n^3 for the Gauss–Jordan inverse (`spd_inverse`) and 2 n^2 per column of the product
//! with it.
//!
//! Every step is in dot form: a block of one row's results stays in registers for its whole
//! reduction over the rows before it (as the SOFT micro-kernels keep theirs), so each result is
//! stored once. Gauss–Jordan rewrites the matrix for every pivot and is bound by those stores.

use super::gemm::GemmElem;
use super::spd_inverse::{abs_sum, finite_norm1, load_symmetric, padded, PAD, PIVOT_FLOOR};
use crate::simd::{active, dispatch, Isa, Kernel, Simd};
use ndarray::ArrayView2;
use std::ops::Range;

/// A + ridge I = R^T R, in double precision.
pub struct CholeskyF64 {
    /// R: n rows of `ld`, upper triangular, zero below the diagonal and past column n.
    r: Vec<f64>,
    inv_diag: Vec<f64>,
    n: usize,
    ld: usize,
    /// ||A + ridge I||_1.
    a_norm1: f64,
    /// The ISA it was factored on, and solves with.
    isa: Isa,
}

/// The factor of A + ridge I, or None when A is not square (or empty), not exactly symmetric,
/// not finite, or A + ridge I is not numerically positive definite (a pivot at most
/// `PIVOT_FLOOR` of its diagonal entry).
pub fn cholesky_f64<E: GemmElem>(a: ArrayView2<'_, E>, ridge: f64) -> Option<CholeskyF64> {
    cholesky_f64_with(active(), a, ridge)
}

/// `cholesky_f64` on a given ISA (one `Isa::supported()` returns; tests compare them all).
pub(crate) fn cholesky_f64_with<E: GemmElem>(
    isa: Isa,
    a: ArrayView2<'_, E>,
    ridge: f64,
) -> Option<CholeskyF64> {
    let n = a.nrows();
    if n != a.ncols() || n == 0 {
        return None;
    }
    let ld = padded(n);
    let mut r = vec![0.0f64; n * ld];
    let a_norm1 = load_symmetric(a, ridge, &mut r, ld)?;
    factor(isa, r, n, ld, a_norm1)
}

/// The factor of A + ridge I for an A the caller has made exactly symmetric (SOFT's K(L, L),
/// averaged with its transpose as it is formed), given as n rows of `padded(n)` f64, zero past
/// column n: no conversion and no check of symmetry. None when A is empty, or A + ridge I is
/// not finite or not numerically positive definite.
pub(crate) fn cholesky_f64_symmetric(
    isa: Isa,
    mut m: Vec<f64>,
    n: usize,
    ridge: f64,
) -> Option<CholeskyF64> {
    let ld = padded(n);
    assert!(m.len() == n * ld);
    if n == 0 {
        return None;
    }
    for i in 0..n {
        m[i * ld + i] += ridge;
    }
    let a_norm1 = finite_norm1(&m, n, ld)?;
    factor(isa, m, n, ld, a_norm1)
}

fn factor(isa: Isa, mut r: Vec<f64>, n: usize, ld: usize, a_norm1: f64) -> Option<CholeskyF64> {
    let mut inv_diag = vec![0.0f64; n];
    let ok = dispatch(
        isa,
        Factor {
            m: &mut r,
            inv_diag: &mut inv_diag,
            n,
            ld,
        },
    );
    ok.then_some(CholeskyF64 {
        r,
        inv_diag,
        n,
        ld,
        a_norm1,
        isa,
    })
}

impl CholeskyF64 {
    pub fn dim(&self) -> usize {
        self.n
    }

    /// Overwrites B (n rows of stride `ldb`, a multiple of 8; all `ldb` columns are solved)
    /// with (A + ridge I)^-1 B.
    pub fn solve_in_place(&self, b: &mut [f64], ldb: usize) {
        assert!(ldb.is_multiple_of(PAD) && b.len() >= self.n * ldb);
        dispatch(
            self.isa,
            Solve {
                f: self,
                b,
                ldb,
                identity: false,
            },
        );
    }

    /// (A + ridge I)^-1 as n rows of stride `ld` (returned with it), zero past column n.
    pub fn inverse(&self) -> (Vec<f64>, usize) {
        let (n, ld) = (self.n, self.ld);
        let mut x = vec![0.0f64; n * ld];
        for i in 0..n {
            x[i * ld + i] = 1.0;
        }
        assert!(ld.is_multiple_of(PAD));
        dispatch(
            self.isa,
            Solve {
                f: self,
                b: &mut x,
                ldb: ld,
                identity: true,
            },
        );
        (x, ld)
    }

    /// An upper bound on `cond1` in O(n^2) flops from R alone. ||A^-1||_1 <= ||R^-1||_1
    /// ||R^-1||_inf, and for triangular R, |R^-1| <= M(R)^-1 elementwise, with M(R) the
    /// comparison matrix (|r_ii| on the diagonal, -|r_ij| off it; Higham, "Accuracy and
    /// Stability of Numerical Algorithms", 2nd ed., Thm. 8.12), so ||R^-1||_inf <= ||M(R)^-1
    /// e||_inf and ||R^-1||_1 <= ||M(R)^-T e||_inf: two triangular solves with positive terms
    /// only (no cancellation; an overflow gives +inf, a bound still). On SOFT's K(L, L) with
    /// 49 landmarks in 32 dims it came out 170 to 280 times cond_1 (~80) for landmarks drawn
    /// 0.25 N(0, 1), and 1e7 times cond_1 (~1e5) for segment means of unit-variance queries,
    /// where only `cond1` can decide.
    pub fn cond1_upper(&self) -> f64 {
        let (n, ld) = (self.n, self.ld);
        let row = |i: usize| &self.r[i * ld..i * ld + n];
        // y = M(R)^-1 e, bottom up: y_i = (1 + sum_{j > i} |r_ij| y_j) / r_ii.
        let mut y = vec![0.0f64; n];
        for i in (0..n).rev() {
            y[i] = (1.0 + abs_dot(&row(i)[i + 1..], &y[i + 1..])) * self.inv_diag[i];
        }
        // z = M(R)^-T e, top down by rows of R: z_j = acc_j / r_jj, then acc += |r_j.| z_j.
        let mut acc = vec![1.0f64; n];
        let mut z_max = 0.0f64;
        for j in 0..n {
            let zj = acc[j] * self.inv_diag[j];
            z_max = z_max.max(zj);
            for (a, r) in acc[j + 1..].iter_mut().zip(&row(j)[j + 1..]) {
                *a += r.abs() * zj;
            }
        }
        let y_max = y.iter().fold(0.0f64, |m, &x| m.max(x));
        // Rounding errors accumulate through each substitution (each entry inherits those of
        // the entries before it): at most about n^2 / 16 + 6n units of roundoff per solve with
        // these sums. Inflate by n^2 u each, so the bound holds for R as computed.
        let slack = 1.0 + 2.0 * (n * n) as f64 * f64::EPSILON;
        self.a_norm1 * z_max * y_max * slack
    }

    /// The condition number in the 1-norm, ||A||_1 ||A^-1||_1 (both symmetric, so row sums
    /// serve for column sums), with A^-1 formed by n solves: exact, not an estimate.
    pub fn cond1(&self) -> f64 {
        let (x, ld) = self.inverse();
        let inv_norm1 = x.chunks_exact(ld).map(abs_sum).fold(0.0, f64::max);
        self.a_norm1 * inv_norm1
    }
}

/// sum |a_i| b_i for b >= 0, in eight independent partial sums (vectorised).
fn abs_dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x.abs() * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k].abs() * y[k];
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// Row `out` = (init - sum over j in `rows` of coef(j) x_j) * scale, on `nv` vectors from the
/// same column in `init`, `out` and every row x_j (stride `ldx`): blocks of four vectors held
/// in registers, each reduced in two interleaved sets of accumulators (even and odd j) so that
/// no single chain of dependent FMAs sets the pace.
///
/// # Safety
/// `init` and `out` hold nv vectors; x rows j in `rows` hold nv vectors at stride ldx.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn update_row<S: Simd<E = f64>>(
    init: *const f64,
    out: *mut f64,
    nv: usize,
    rows: Range<usize>,
    coef: &impl Fn(usize) -> f64,
    x: *const f64,
    ldx: usize,
    scale: f64,
) {
    let w = S::LANES;
    let mut v = 0;
    // SAFETY (whole body): every block lies within the caller's nv vectors.
    unsafe {
        while v + 4 <= nv {
            let o = v * w;
            block::<S, 4>(init.add(o), out.add(o), &rows, coef, x.add(o), ldx, scale);
            v += 4;
        }
        let o = v * w;
        match nv - v {
            3 => block::<S, 3>(init.add(o), out.add(o), &rows, coef, x.add(o), ldx, scale),
            2 => block::<S, 2>(init.add(o), out.add(o), &rows, coef, x.add(o), ldx, scale),
            1 => block::<S, 1>(init.add(o), out.add(o), &rows, coef, x.add(o), ldx, scale),
            _ => {}
        }
    }
}

/// One block of B vectors of `update_row`.
///
/// # Safety
/// As `update_row`, for B vectors.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn block<S: Simd<E = f64>, const B: usize>(
    init: *const f64,
    out: *mut f64,
    rows: &Range<usize>,
    coef: &impl Fn(usize) -> f64,
    x: *const f64,
    ldx: usize,
    scale: f64,
) {
    let w = S::LANES;
    let zero = S::splat(0.0);
    // SAFETY (whole body): the caller guarantees every offset below is inside its buffer.
    unsafe {
        let mut even: [S::V; B] = std::array::from_fn(|u| S::load(init.add(u * w)));
        let mut odd = [zero; B];
        let mut j = rows.start;
        while j + 2 <= rows.end {
            let (f, g) = (S::splat(-coef(j)), S::splat(-coef(j + 1)));
            let (xj, xk) = (x.add(j * ldx), x.add((j + 1) * ldx));
            for u in 0..B {
                even[u] = S::fma(f, S::load(xj.add(u * w)), even[u]);
                odd[u] = S::fma(g, S::load(xk.add(u * w)), odd[u]);
            }
            j += 2;
        }
        if j < rows.end {
            let (f, xj) = (S::splat(-coef(j)), x.add(j * ldx));
            for (u, e) in even.iter_mut().enumerate() {
                *e = S::fma(f, S::load(xj.add(u * w)), *e);
            }
        }
        let s = S::splat(scale);
        for u in 0..B {
            S::store(out.add(u * w), S::mul(S::add(even[u], odd[u]), s));
        }
    }
}

/// Row by row (left-looking): row k of R is (A[k, k..] - sum_{j<k} R[j, k] R[j, k..]) / r_kk,
/// with r_kk the square root of the pivot.
struct Factor<'a> {
    m: &'a mut [f64],
    inv_diag: &'a mut [f64],
    n: usize,
    ld: usize,
}

impl Kernel<f64> for Factor<'_> {
    type Output = bool;
    #[inline(always)]
    fn run<S: Simd<E = f64>>(self) -> bool {
        let (n, ld, w) = (self.n, self.ld, S::LANES);
        assert!(self.m.len() >= n * ld && self.inv_diag.len() >= n && ld.is_multiple_of(w));
        for k in 0..n {
            let row = k * ld;
            let p = self.m.as_mut_ptr();
            let diag = self.m[row + k];
            // From the vector holding column k on; columns left of k come out as junk (rows
            // j < k are zero left of their diagonal, not of k's) and are zeroed below.
            let c0 = k / w * w;
            // SAFETY: rows j <= k hold ld >= c0 + (ld - c0) elements; row k is written only
            // after every read of its block (each block reads rows j < k and row k's init).
            unsafe {
                let coef = |j: usize| *p.add(j * ld + k);
                let init = p.add(row + c0);
                update_row::<S>(init, init, (ld - c0) / w, 0..k, &coef, p.add(c0), ld, 1.0);
            }
            let r = &mut self.m[row..row + ld];
            let pivot = r[k];
            // Also declines a NaN pivot.
            if pivot.is_nan() || pivot <= PIVOT_FLOOR * diag.abs() {
                return false;
            }
            let rkk = pivot.sqrt();
            let inv = 1.0 / rkk;
            r[..k].fill(0.0);
            r[k] = rkk;
            r[k + 1..n].iter_mut().for_each(|x| *x *= inv);
            self.inv_diag[k] = inv;
        }
        true
    }
}

/// A^-1 B for every column of B: R^T Y = B top down, then R X = Y bottom up, each row of the
/// result from the rows already solved.
struct Solve<'a> {
    f: &'a CholeskyF64,
    b: &'a mut [f64],
    ldb: usize,
    /// B is the identity: then Y = R^-T is lower triangular, and row i of the first pass needs
    /// only the vectors up to column i (half that pass's work).
    identity: bool,
}

impl Kernel<f64> for Solve<'_> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = f64>>(self) {
        let (f, ldb) = (self.f, self.ldb);
        let (n, ld, nv) = (f.n, f.ld, ldb / S::LANES);
        assert!(self.b.len() >= n * ldb && ldb.is_multiple_of(S::LANES));
        let (r, b) = (f.r.as_ptr(), self.b.as_mut_ptr());
        // SAFETY: R has n rows of ld > every column index used; B has n rows of ldb = nv
        // vectors; each row of B is written after its own block's reads.
        unsafe {
            for i in 0..n {
                let coef = |j: usize| *r.add(j * ld + i);
                let bi = b.add(i * ldb);
                let nvi = if self.identity {
                    nv.min(i / S::LANES + 1)
                } else {
                    nv
                };
                update_row::<S>(bi, bi, nvi, 0..i, &coef, b, ldb, f.inv_diag[i]);
            }
            for i in (0..n).rev() {
                let coef = |j: usize| *r.add(i * ld + j);
                let bi = b.add(i * ldb);
                update_row::<S>(bi, bi, nv, i + 1..n, &coef, b, ldb, f.inv_diag[i]);
            }
        }
    }
}

#[cfg(test)]
#[path = "cholesky_tests.rs"]
mod tests;
