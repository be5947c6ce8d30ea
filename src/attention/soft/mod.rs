//! SOFT attention (Lu et al., "SOFT: Softmax-free Transformer with Linear Complexity", NeurIPS
//! 2021): the Gaussian kernel K(x, y) = exp(-||x - y||^2 / 2) with keys tied to queries, made
//! linear in n through landmarks L (given: learned in SOFT; or segment means of q):
//!
//! ```text
//! out = K(q, L) (pinv(K(L, L)) (K(L, q) v))            (never an n x n matrix)
//! ```
//!
//! and, with `normalize`, SOFT's symmetric normalisation
//!
//! ```text
//! out = K(q, L) D^-1/2 pinv(K(L, L)) D^-1/2 K(L, q) v,  D = diag(K(L, L) 1).
//! ```
//!
//! Squared distances are ||x||^2 + ||y||^2 - 2 x.y, clamped at 0 before the exponential. The
//! heads run on the register-blocked kernels of `soft_head`; `gaussian_kernel` (K alone, for
//! Rust callers) forms x.y with the crate's GEMM.

mod blocks;
#[cfg(test)]
mod formula_tests;
mod head;
mod project;
#[cfg(test)]
mod tests;
mod weights;

use self::blocks::{load_cols, store_cols};
pub use self::head::{soft_head, HeadScratch};
use super::heads::Output;
use crate::error::{Error, Result};
use crate::linalg::{matmul, GemmElem, PinvOptions};
use crate::simd::exp::{exp_poly_on, ExpPoly};
use crate::simd::{self, all_finite, dispatch, Kernel, Lanes, Simd};
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, Axis};
use std::mem::MaybeUninit;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SoftOptions {
    /// Landmarks when none are given: segment means of q over this many segments (at most n).
    pub num_landmarks: usize,
    pub pinv: PinvOptions,
    pub normalize: bool,
}

/// K[i, j] = exp(min(g[i, j] - a[i] - b[j], 0)) in place, where g = x.y, a = ||x||^2/2,
/// b = ||y||^2/2: the Gaussian kernel with squared distances clamped at 0.
struct GaussRows<'a, E> {
    g: &'a mut [E],
    a: &'a [E],
    b: &'a [E],
}

impl<E: Lanes> Kernel<E> for GaussRows<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        let l = self.b.len();
        if l == 0 {
            return;
        }
        let w = S::LANES;
        let poly = ExpPoly::<S>::softmax(S::splat(E::ONE));
        let zero = S::splat(E::ZERO);
        for (row, &ai) in self.g.chunks_exact_mut(l).zip(self.a) {
            let av = S::splat(ai);
            let (q, pb) = (row.as_mut_ptr(), self.b.as_ptr());
            let mut j = 0;
            // SAFETY: row and b both have l elements; accesses stay below l.
            unsafe {
                while j + w <= l {
                    let t = S::sub(S::sub(S::load(q.add(j)), av), S::load(pb.add(j)));
                    S::store(q.add(j), exp_poly_on::<S>(S::min(zero, t), &poly));
                    j += w;
                }
                if j < l {
                    let n = l - j;
                    let t = S::sub(
                        S::sub(S::load_partial(q.add(j), n, E::ZERO), av),
                        S::load_partial(pb.add(j), n, E::ZERO),
                    );
                    S::store_partial(q.add(j), n, exp_poly_on::<S>(S::min(zero, t), &poly));
                }
            }
        }
    }
}

/// Half squared row norms (eight partial sums per row, so contiguous rows vectorise).
fn half_sq_norms<E: GemmElem>(x: ArrayView2<'_, E>) -> Vec<E> {
    let half = E::from_f64(0.5);
    x.rows()
        .into_iter()
        .map(|r| {
            let Some(rs) = r.as_slice() else {
                return r.iter().fold(E::ZERO, |acc, &v| acc + v * v) * half;
            };
            let mut acc = [E::ZERO; 8];
            let chunks = rs.chunks_exact(8);
            let tail = chunks.remainder().iter().fold(E::ZERO, |a, &v| a + v * v);
            for c in chunks {
                for k in 0..8 {
                    acc[k] = acc[k] + c[k] * c[k];
                }
            }
            (acc.iter().fold(tail, |a, &v| a + v)) * half
        })
        .collect()
}

/// K(x, y) for rows of x (n x d) and y (l x d).
pub fn gaussian_kernel<E: GemmElem + Lanes>(
    x: ArrayView2<'_, E>,
    y: ArrayView2<'_, E>,
) -> Result<Array2<E>> {
    let mut g = matmul(x, y.t())?;
    let (a, b) = (half_sq_norms(x), half_sq_norms(y));
    let gs = g
        .as_slice_mut()
        .ok_or_else(|| Error::Invalid("internal: layout".into()))?;
    dispatch(
        simd::active(),
        GaussRows {
            g: gs,
            a: &a,
            b: &b,
        },
    );
    Ok(g)
}

/// Segment means of q's rows: segment i covers rows floor(i n / l) .. floor((i + 1) n / l).
pub fn segment_means<E: GemmElem + Lanes>(q: ArrayView2<'_, E>, l: usize) -> Array2<E> {
    let d = q.ncols();
    let q = q.as_standard_layout();
    let rows = q.as_slice().unwrap_or(&[]);
    Array2::from_shape_vec((l, d), segment_means_rows(rows, d, l)).unwrap_or_default()
}

/// `segment_means` of n = rows.len() / d contiguous rows of d elements, as l x d row-major.
pub(crate) fn segment_means_rows<E: GemmElem + Lanes>(rows: &[E], d: usize, l: usize) -> Vec<E> {
    let mut out = vec![E::ZERO; l * d];
    if d > 0 {
        dispatch(
            simd::active(),
            SegmentSums {
                rows,
                d,
                out: &mut out,
            },
        );
    }
    out
}

/// Column means of each segment, a vector of columns at a time, with two accumulators (even
/// and odd rows) so consecutive adds do not wait on each other.
struct SegmentSums<'a, E> {
    rows: &'a [E],
    d: usize,
    out: &'a mut [E],
}

impl<E: Lanes> Kernel<E> for SegmentSums<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        let (d, w) = (self.d, S::LANES);
        let n = self.rows.len() / d;
        let l = self.out.len() / d;
        let zero = S::splat(E::ZERO);
        for (i, acc) in self.out.chunks_exact_mut(d).enumerate() {
            let (lo, hi) = (i * n / l, (i + 1) * n / l);
            let inv = S::splat(E::from_f64(1.0 / (hi - lo) as f64));
            let seg = &self.rows[lo * d..hi * d];
            for c0 in (0..d).step_by(w) {
                let cols = w.min(d - c0);
                // SAFETY (loads): row r < hi - lo of the segment has d >= c0 + cols elements.
                let row = |r: usize| seg[r * d + c0..].as_ptr();
                let (mut even, mut odd) = (zero, zero);
                let mut r = 0;
                while r + 1 < hi - lo {
                    even = S::add(even, unsafe { load_cols::<S>(row(r), 0, cols) });
                    odd = S::add(odd, unsafe { load_cols::<S>(row(r + 1), 0, cols) });
                    r += 2;
                }
                if r < hi - lo {
                    even = S::add(even, unsafe { load_cols::<S>(row(r), 0, cols) });
                }
                let mean = S::mul(S::add(even, odd), inv);
                // SAFETY: acc has d >= c0 + cols elements.
                unsafe { store_cols::<S>(acc.as_mut_ptr().add(c0), 0, cols, mean) };
            }
        }
    }
}

/// Batched SOFT attention: q (..., n, d), v (..., n, dv), landmarks (..., l, d) or (l, d) shared
/// by every head, or None for segment means. Returns (..., n, dv); parallel over the batch.
pub fn soft_attention<E: GemmElem + Lanes>(
    q: ArrayViewD<'_, E>,
    v: ArrayViewD<'_, E>,
    landmarks: Option<ArrayViewD<'_, E>>,
    opts: &SoftOptions,
) -> Result<ArrayD<E>> {
    let nd = q.ndim();
    if nd < 2 || v.ndim() != nd {
        return Err(Error::Invalid(format!(
            "soft_attention: q and v must be (..., n, d) and (..., n, dv) with the same batch dims, got {:?} and {:?}",
            q.shape(),
            v.shape()
        )));
    }
    let (n, d, dv) = (q.shape()[nd - 2], q.shape()[nd - 1], v.shape()[nd - 1]);
    if v.shape()[..nd - 1] != q.shape()[..nd - 1] {
        return Err(Error::Shape {
            what: "v",
            expected: [&q.shape()[..nd - 1], &[dv]].concat(),
            got: v.shape().to_vec(),
        });
    }
    // Finite in the inputs' dtype (ridge_in refuses inf and NaN as well as 1e308 in f32).
    crate::linalg::newton_schulz::ridge_in::<E>("soft_attention", opts.pinv.ridge)?;
    let batch: usize = q.shape()[..nd - 2].iter().product();
    // Borrowed when already C-contiguous (the common case): no copy of q and v.
    let (qc, vc) = (q.as_standard_layout(), v.as_standard_layout());
    let q3 = qc
        .view()
        .into_shape_with_order((batch, n, d))
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let v3 = vc
        .view()
        .into_shape_with_order((batch, n, dv))
        .map_err(|e| Error::Invalid(e.to_string()))?;
    // Borrowed when already C-contiguous, as q and v.
    let lmc = match &landmarks {
        Some(l) => {
            let ln = l.ndim();
            let ok = ln >= 2
                && l.shape()[ln - 1] == d
                && (ln == 2 || l.shape()[..ln - 2] == q.shape()[..nd - 2]);
            if !ok || l.shape()[ln - 2] == 0 {
                return Err(Error::Invalid(format!(
                    "soft_attention: landmarks must be (l, d) or (..., l, d) with q's batch dims and d = {d}, l >= 1, got {:?}",
                    l.shape()
                )));
            }
            Some(l.as_standard_layout())
        }
        None => {
            if opts.num_landmarks == 0 {
                return Err(Error::Invalid(
                    "soft_attention: num_landmarks must be >= 1, got 0".into(),
                ));
            }
            None
        }
    };
    let lm3 = match &lmc {
        Some(l) => {
            let ln = l.ndim();
            let slice = l
                .as_slice()
                .ok_or_else(|| Error::Invalid("internal: landmark layout".into()))?;
            if !all_finite(slice) {
                return Err(Error::Invalid(
                    "soft_attention: landmarks contain NaN or infinity".into(),
                ));
            }
            let lb = if ln == 2 { 1 } else { batch };
            Some(
                l.view()
                    .into_shape_with_order((lb, l.shape()[ln - 2], d))
                    .map_err(|e| Error::Invalid(e.to_string()))?,
            )
        }
        None => None,
    };
    let qs = q3
        .as_slice()
        .ok_or_else(|| Error::Invalid("internal: q layout".into()))?;
    let vs = v3
        .as_slice()
        .ok_or_else(|| Error::Invalid("internal: v layout".into()))?;
    if n * dv == 0 && !(all_finite(qs) && all_finite(vs)) {
        // No head runs (the output is empty), but bad input is still an error.
        return Err(Error::Invalid(
            "soft_attention: q or v contains NaN or infinity".into(),
        ));
    }
    // Every element is written by its head before `assume_init` (or dropped unread).
    let mut out = Output::<E>::new("soft_attention", batch * n * dv)?;
    // One head: the scratch is reused across the heads a worker split runs (also in one thread).
    let head =
        |scratch: &mut HeadScratch<E>, (b, ob): (usize, &mut [MaybeUninit<E>])| -> Result<()> {
            // Non-finite q or v is detected inside the head (see `soft_head`).
            if n == 0 {
                return Ok(());
            }
            let shape = |l: usize| (n, d, dv, l);
            let (qh, vh) = (&qs[b * n * d..][..n * d], &vs[b * n * dv..][..n * dv]);
            match &lm3 {
                Some(l) => {
                    let lb = l.index_axis(Axis(0), if l.shape()[0] == 1 { 0 } else { b });
                    let lm = lb
                        .as_slice()
                        .ok_or_else(|| Error::Invalid("internal: landmark layout".into()))?;
                    soft_head(qh, vh, lm, shape(lb.nrows()), opts, ob, scratch)
                }
                None => {
                    let l = opts.num_landmarks.min(n);
                    let lm = segment_means_rows(qh, d, l);
                    soft_head(qh, vh, &lm, shape(l), opts, ob, scratch)
                }
            }
        };
    let results = crate::threads::map_chunks_mut(out.uninit(), n * dv, HeadScratch::default, head);
    results.into_iter().collect::<Result<()>>()?;
    let mut shape = q.shape().to_vec();
    shape[nd - 1] = dv;
    // SAFETY: every head succeeded, so all elements were written (`soft_head` writes its whole
    // n x dv block; heads with n = 0 have none).
    unsafe { out.assume_init(&shape) }
}
