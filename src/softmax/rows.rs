//! Whole-row kernels on contiguous rows: every algorithm, for softmax, log-softmax and logsumexp.
//! A call handles a batch of rows so dispatch costs once per batch, not per row.

use super::extexp::{ext_sum, ext_write, ext_write_log, ExtSum};
use super::maxsub::{
    exp_scale_write, exp_sum, log_write_max, max_pass, online_pass, scale_in_place,
};
use super::Algorithm;
use crate::simd::{Elem, Kernel, Lanes, Simd};

/// Softmax of one row with the given (concrete) algorithm.
#[inline(always)]
/// `stream`: write the two-pass output with non-temporal stores (outputs far beyond the caches).
pub fn softmax_row<S: Simd>(x: &[S::E], y: &mut [S::E], algo: Algorithm, stream: bool)
where
    S::E: Lanes,
{
    match algo {
        Algorithm::TwoPass | Algorithm::Auto => {
            let s = ext_sum::<S>(x);
            if s.is_safe() {
                ext_write::<S>(x, y, s, stream);
            } else {
                recompute::<S>(x, y);
            }
        }
        Algorithm::ThreePassRecompute => recompute::<S>(x, y),
        Algorithm::ThreePassReload => {
            let mx = max_pass::<S>(x);
            let (sum, _) = exp_sum::<S>(x, Some(y), mx);
            scale_in_place::<S>(y, S::E::ONE / sum);
        }
        Algorithm::Online => {
            let (mx, sum) = online_pass::<S>(x);
            exp_scale_write::<S>(x, y, mx, S::E::ONE / sum);
        }
    }
}

#[inline(always)]
fn recompute<S: Simd>(x: &[S::E], y: &mut [S::E]) {
    let mx = max_pass::<S>(x);
    let (sum, c) = exp_sum::<S>(x, None, mx);
    exp_scale_write::<S>(x, y, mx, c / sum);
}

/// log-softmax of one row: two passes (extended-exponent sum, then x - lse), exact fallback.
#[inline(always)]
pub fn log_softmax_row<S: Simd>(x: &[S::E], y: &mut [S::E], stream: bool)
where
    S::E: Lanes,
{
    let s = ext_sum::<S>(x);
    if s.is_safe() {
        ext_write_log::<S>(x, y, s, stream);
    } else {
        let mx = max_pass::<S>(x);
        let (sum, c) = exp_sum::<S>(x, None, mx);
        log_write_max::<S>(x, y, mx, S::E::from_f64((sum.to_f64() / c.to_f64()).ln()));
    }
}

/// logsumexp of one row, in double precision. +inf if any entry is +inf (and none is NaN), -inf
/// for an empty or all -inf row.
#[inline(always)]
pub fn logsumexp_row<S: Simd>(x: &[S::E]) -> f64
where
    S::E: Lanes,
{
    let s = ext_sum::<S>(x);
    if s.is_safe() {
        return s.ln();
    }
    let mx = max_pass::<S>(x);
    if mx == S::E::NEG_INFINITY || mx == S::E::INFINITY {
        // All -inf (or empty) gives -inf; +inf dominates unless a NaN is present (the max pass
        // need not see a NaN, so look for one: this path is rare).
        return if x.iter().any(|v| v.is_nan()) {
            f64::NAN
        } else {
            mx.to_f64()
        };
    }
    let (sum, c) = exp_sum::<S>(x, None, mx);
    mx.to_f64() + (sum.to_f64() / c.to_f64()).ln()
}

/// Which member of the family, for a whole call and for each row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Softmax(Algorithm),
    LogSoftmax,
}

/// A batch of contiguous rows of length `n`: x and y hold `x.len() / n` rows.
pub struct Rows<'a, E> {
    pub x: &'a [E],
    pub y: &'a mut [E],
    pub n: usize,
    pub op: Op,
    /// Non-temporal stores for the two-pass write.
    pub stream: bool,
}

impl<E: Lanes> Kernel<E> for Rows<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        if self.n == 0 {
            return;
        }
        for (x, y) in self
            .x
            .chunks_exact(self.n)
            .zip(self.y.chunks_exact_mut(self.n))
        {
            match self.op {
                Op::Softmax(a) => softmax_row::<S>(x, y, a, self.stream),
                Op::LogSoftmax => log_softmax_row::<S>(x, y, self.stream),
            }
        }
    }
}

/// logsumexp of a batch of contiguous rows of length `n` into `out` (one value per row).
pub struct RowsLse<'a, E> {
    pub x: &'a [E],
    pub out: &'a mut [E],
    pub n: usize,
}

impl<E: Lanes> Kernel<E> for RowsLse<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        if self.n == 0 {
            self.out.fill(E::NEG_INFINITY);
            return;
        }
        for (x, o) in self.x.chunks_exact(self.n).zip(self.out.iter_mut()) {
            *o = E::from_f64(logsumexp_row::<S>(x));
        }
    }
}

/// Pass 1 of a long row, on one chunk (for the multi-threaded split).
pub struct ChunkSum<'a, E> {
    pub x: &'a [E],
}

impl<E: Lanes> Kernel<E> for ChunkSum<'_, E> {
    type Output = ExtSum<E>;
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) -> ExtSum<E> {
        ext_sum::<S>(self.x)
    }
}

/// Pass 2 of a long row, on one chunk.
pub struct ChunkWrite<'a, E> {
    pub x: &'a [E],
    pub y: &'a mut [E],
    pub s: ExtSum<E>,
    pub log: bool,
    pub stream: bool,
}

impl<E: Lanes> Kernel<E> for ChunkWrite<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        if self.log {
            ext_write_log::<S>(self.x, self.y, self.s, self.stream);
        } else {
            ext_write::<S>(self.x, self.y, self.s, self.stream);
        }
    }
}
