//! The extended-exponent sum of the Two-Pass Softmax algorithm (Dukhan & Ablavatski, 2020, §4):
//! sum_i e^{x_i} is kept as (m, e) meaning m * 2^e, so no max pass is needed and nothing
//! overflows. Each term arrives as (p, n) from `exp_parts`; accumulators are merged by the
//! max-exponent rule (m_a 2^{e_a - e} + m_b 2^{e_b - e}, e = max(e_a, e_b)), which is associative
//! up to rounding, so fixed chunks give the same bits for any thread count.
//!
//! -inf inputs: `exp_parts` clamps x up to EXT_X_MIN. In a row whose largest entry is more than
//! |EXP_UNDERFLOW| above EXT_X_MIN, the clamped term's share p 2^{n - e} is below half the smallest
//! subnormal, exactly as e^{x - max} is, so both give exact 0. Rows outside the safe range (all
//! entries near or below EXT_X_MIN, an entry above EXT_N_LIMIT / ln 2, NaN or +inf) are
//! recomputed by max subtraction, which handles every special value as the reference does.

use super::vmap::{map, map_stream, ExtLog, ExtScaleRow};
use crate::simd::exp::{exp_parts_on, ExpPoly};
use crate::simd::{Elem, Lanes, Simd};

/// m * 2^e. An empty sum has m = 0 and a finite e below every exponent a term can have.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExtSum<E> {
    pub m: E,
    pub e: E,
}

/// Initial exponent: finite (so merging two empty accumulators gives 0, not NaN) and below
/// round(EXT_X_MIN * log2 e).
#[inline(always)]
pub fn e_init<E: Elem>() -> E {
    -(E::EXT_N_LIMIT + E::EXT_N_LIMIT)
}

impl<E: Lanes> ExtSum<E> {
    pub fn empty() -> Self {
        ExtSum {
            m: E::ZERO,
            e: e_init::<E>(),
        }
    }

    /// The max-exponent merge, on the portable path (used once per chunk, not per element).
    pub fn merge(self, o: Self) -> Self {
        type S<E> = <E as Lanes>::Scalar;
        let e = S::<E>::max(self.e, o.e);
        let m = S::<E>::ldexp_ftz(self.m, self.e - e) + S::<E>::ldexp_ftz(o.m, o.e - e);
        ExtSum { m, e }
    }

    /// True when the two-pass result for this row is exact as argued in the module docs.
    pub fn is_safe(&self) -> bool {
        let low = (E::EXT_X_MIN - E::EXP_UNDERFLOW) * E::LOG2E + E::ONE + E::ONE;
        self.m.is_finite() && self.m > E::ZERO && self.e >= low && self.e <= E::EXT_N_LIMIT
    }

    /// ln(m 2^e) in double precision.
    pub fn ln(&self) -> f64 {
        self.e.to_f64() * std::f64::consts::LN_2 + self.m.to_f64().ln()
    }
}

/// One accumulation step: (m, e) += (p, n) from x.
#[inline(always)]
fn step<S: Simd>(m: &mut S::V, e: &mut S::V, x: S::V, poly: &ExpPoly<S>) {
    let (p, n) = exp_parts_on::<S>(x, poly);
    (*m, *e) = merge_v::<S>(*m, *e, p, n);
}

/// Lane-wise merge of two vector accumulators.
#[inline(always)]
pub fn merge_v<S: Simd>(ma: S::V, ea: S::V, mb: S::V, eb: S::V) -> (S::V, S::V) {
    let e = S::max(ea, eb);
    let m = S::add(
        S::ldexp_ftz(ma, S::sub(ea, e)),
        S::ldexp_ftz(mb, S::sub(eb, e)),
    );
    (m, e)
}

/// Horizontal merge of the lanes of one vector accumulator.
#[inline(always)]
pub fn reduce_v<S: Simd>(m: S::V, e: S::V) -> ExtSum<S::E> {
    let emax = S::reduce_max(e);
    let m = S::reduce_add(S::ldexp_ftz(m, S::sub(e, S::splat(emax))));
    ExtSum { m, e: emax }
}

/// Pass 1 over a contiguous slice. Each step takes four vectors: one shared exponent update
/// e' = max(e, n0..n3) and one rescale of the accumulator per step, then each term costs only
/// p 2^{n - e'} and an add (XNNPACK's per-vector merge costs a max, two scalings and an add
/// for every vector). The tail is read with a masked load padded with -inf (a zero term).
#[inline(always)]
pub fn ext_sum<S: Simd>(x: &[S::E]) -> ExtSum<S::E> {
    let w = S::LANES;
    let len = x.len();
    let p = x.as_ptr();
    let mut m = S::splat(S::E::ZERO);
    let mut e = S::splat(e_init::<S::E>());
    let mut c = S::splat(S::E::ZERO);
    let poly = ExpPoly::<S>::softmax(S::splat(S::E::ONE));
    let mut i = 0;
    // SAFETY: every full load reads p[i..i+w] with i + w <= len; the partial load reads len - i.
    unsafe {
        while i + 4 * w <= len {
            let (p0, n0) = exp_parts_on::<S>(S::load(p.add(i)), &poly);
            let (p1, n1) = exp_parts_on::<S>(S::load(p.add(i + w)), &poly);
            let (p2, n2) = exp_parts_on::<S>(S::load(p.add(i + 2 * w)), &poly);
            let (p3, n3) = exp_parts_on::<S>(S::load(p.add(i + 3 * w)), &poly);
            let en = S::max(S::max(e, S::max(n0, n1)), S::max(n2, n3));
            let t01 = S::add(
                S::ldexp_ftz(p0, S::sub(n0, en)),
                S::ldexp_ftz(p1, S::sub(n1, en)),
            );
            let t23 = S::add(
                S::ldexp_ftz(p2, S::sub(n2, en)),
                S::ldexp_ftz(p3, S::sub(n3, en)),
            );
            // Kahan's compensation, rescaled with the sum: uncompensated, the error of each
            // lane's chain of len / (4 w) additions broke issue 15's 2e-6 bound on f32 rows of
            // 65536 (benches/README.md).
            let (ms, cs) = (
                S::ldexp_ftz(m, S::sub(e, en)),
                S::ldexp_ftz(c, S::sub(e, en)),
            );
            let y = S::sub(S::add(t01, t23), cs);
            m = S::add(ms, y);
            c = S::sub(S::sub(m, ms), y);
            e = en;
            i += 4 * w;
        }
        m = S::sub(m, c);
        while i + w <= len {
            step::<S>(&mut m, &mut e, S::load(p.add(i)), &poly);
            i += w;
        }
        if i < len {
            let v = S::load_partial(p.add(i), len - i, S::E::NEG_INFINITY);
            step::<S>(&mut m, &mut e, v, &poly);
        }
    }
    reduce_v::<S>(m, e)
}

/// Pass 2 of softmax: y = p 2^{n - e} / m.
#[inline(always)]
pub fn ext_write<S: Simd>(x: &[S::E], y: &mut [S::E], s: ExtSum<S::E>, stream: bool) {
    let f = ExtScaleRow::new(s.e, S::E::ONE / s.m);
    if stream {
        map_stream::<S, _>(x, y, f);
    } else {
        map::<S, _>(x, y, f);
    }
}

/// Pass 2 of log-softmax: y = (x - e ln2) - ln m, the first difference as exact as range reduction.
#[inline(always)]
pub fn ext_write_log<S: Simd>(x: &[S::E], y: &mut [S::E], s: ExtSum<S::E>, stream: bool) {
    let ln_m = S::splat(S::E::from_f64(s.m.to_f64().ln()));
    let f = ExtLog::<S, 1> {
        e: [S::splat(s.e)],
        ln_m: [ln_m],
    };
    if stream {
        map_stream::<S, _>(x, y, f);
    } else {
        map::<S, _>(x, y, f);
    }
}
