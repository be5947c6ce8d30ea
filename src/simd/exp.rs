//! Vector e^x, written once for every ISA.
//!
//! Range reduction x = n ln2 + r with n = round(x log2 e) and |r| <= ln2/2 (Cody–Waite, two
//! constants), then e^r ~= 1 + r + r^2 q(r). The coefficients of q were fitted for this crate by
//! a linear-programming minimax of the relative error on [-ln2/2, ln2/2] (degree 4 for f32: 0.1 ULP
//! approximation error, so rounding dominates; degree 9 for f64), then rounded to the element
//! type. The structure follows the "rr2_p5" kernels of XNNPACK and the Two-Pass Softmax paper
//! (Dukhan & Ablavatski, 2020), with one more term for f32 to stay within 2 ULP.

use super::vector::{Elem, Simd};

/// e^r for |r| <= ln2/2 by Horner's rule on 1 + r(1 + r q(r)): every step a single FMA.
#[inline(always)]
pub fn exp_poly<S: Simd>(r: S::V) -> S::V {
    let q = S::E::EXP_Q;
    let mut acc = S::splat(q[0]);
    for &c in &q[1..] {
        acc = S::fma(acc, r, S::splat(c));
    }
    acc = S::fma(acc, r, S::splat(S::E::ONE));
    S::fma(acc, r, S::splat(S::E::ONE))
}

/// Splatted (and optionally scaled) Horner coefficients of 1 + r + r^2 q(r), highest degree
/// first. Scaling by s gives s e^r at no extra cost per element: the softmax write pass folds its
/// 1/sum into the polynomial instead of multiplying every output.
#[derive(Clone, Copy)]
pub struct ExpPoly<S: Simd> {
    c: [S::V; 12],
    len: usize,
}

impl<S: Simd> ExpPoly<S> {
    /// The softmax kernels' polynomial (`EXP_Q_SOFTMAX`), times `scale` (per lane).
    #[inline(always)]
    pub fn softmax(scale: S::V) -> Self {
        let q = S::E::EXP_Q_SOFTMAX;
        let len = q.len() + 2;
        let mut c = [scale; 12];
        for (k, &v) in q.iter().enumerate() {
            c[k] = S::mul(S::splat(v), scale);
        }
        ExpPoly { c, len }
    }

    /// The softmax polynomial in base 2: 2^r = e^(r ln2) for |r| <= 1/2, so the coefficient of
    /// r^k is that of `softmax` times ln2^k (formed in f64, rounded once): the same
    /// approximation error, plus at most that rounding.
    #[inline(always)]
    pub fn softmax_exp2(scale: S::V) -> Self {
        let mut p = Self::softmax(scale);
        let q = S::E::EXP_Q_SOFTMAX;
        let deg = p.len - 1;
        for (k, c) in p.c[..p.len].iter_mut().enumerate() {
            let ck = q.get(k).map_or(1.0, |x| x.to_f64());
            let f = ck * std::f64::consts::LN_2.powi((deg - k) as i32);
            *c = S::mul(S::splat(S::E::from_f64(f)), scale);
        }
        p
    }

    /// `eval` on U vectors, each Horner step across all of them: U independent FMAs side by
    /// side, so the FMA pipes stay busy instead of waiting on one chain's latency.
    #[inline(always)]
    pub fn eval_many<const U: usize>(&self, r: [S::V; U]) -> [S::V; U] {
        let mut acc = [self.c[0]; U];
        for k in 1..self.len {
            for u in 0..U {
                acc[u] = S::fma(acc[u], r[u], self.c[k]);
            }
        }
        acc
    }

    #[inline(always)]
    pub fn eval(&self, r: S::V) -> S::V {
        let mut acc = self.c[0];
        for k in 1..self.len {
            acc = S::fma(acc, r, self.c[k]);
        }
        acc
    }
}

/// round(x log2 e) as (x log2 e + M) - M with M = 1.5 * 2^(digits-1): an FMA and a subtraction,
/// which balance the FMA and add ports better than a multiply and a rounding instruction. Exact
/// nearest-even rounding of the fused product for |x log2 e| < 2^(digits-2), which every
/// clamped input satisfies; NaN and infinities pass through.
#[inline(always)]
fn round_log2e<S: Simd>(x: S::V) -> S::V {
    let magic = S::E::from_f64(1.5 * 2f64.powi(S::E::MANTISSA_DIGITS as i32 - 1));
    S::sub(
        S::fma(x, S::splat(S::E::LOG2E), S::splat(magic)),
        S::splat(magic),
    )
}

/// The extended-exponent parts with the softmax polynomial: (poly(r), n) with
/// e^x = poly(r) 2^n / scale.
#[inline(always)]
pub fn exp_parts_on<S: Simd>(x: S::V, poly: &ExpPoly<S>) -> (S::V, S::V) {
    let x = S::max(S::splat(S::E::EXT_X_MIN), x);
    let n = round_log2e::<S>(x);
    (poly.eval(S::reduce_ln2(x, n)), n)
}

/// e^x * scale for the softmax kernels (`exp` semantics, softmax polynomial).
#[inline(always)]
pub fn exp_poly_on<S: Simd>(x: S::V, poly: &ExpPoly<S>) -> S::V {
    let x = S::max(S::splat(S::E::EXP_UNDERFLOW), x);
    let x = S::min(S::splat(S::E::EXP_OVERFLOW + S::E::ONE), x);
    let n = round_log2e::<S>(x);
    S::ldexp(poly.eval(S::reduce_ln2(x, n)), n)
}

/// 2^t for U vectors of t <= 0 (or NaN) with `ExpPoly::softmax_exp2`, each step across all U
/// vectors. For callers that fold log2 e into their inputs (the SOFT kernel): n = round(t) by
/// adding and removing 1.5 * 2^(digits-1) and r = t - n (exact) take adds, not FMAs, so beside
/// the polynomial no work lands on the FMA pipes; base e needs an FMA for n and two for the
/// Cody–Waite reduction. 2^t below half the smallest subnormal is +0, 2^-inf = 0, NaN
/// propagates.
#[inline(always)]
pub fn exp2_nonpositive_many<S: Simd, const U: usize>(
    t: [S::V; U],
    poly: &ExpPoly<S>,
) -> [S::V; U] {
    // EXP_UNDERFLOW log2 e: 2^-151.5 (f32) and 2^-1076.3 (f64) times p(r) < 1.42 round to 0.
    let lo = S::splat(S::E::from_f64(
        S::E::EXP_UNDERFLOW.to_f64() * std::f64::consts::LOG2_E,
    ));
    // t as the second operand: a NaN survives the clamp.
    let t: [S::V; U] = std::array::from_fn(|u| S::max(lo, t[u]));
    // Nearest-even rounding for |t| < 2^(digits-2), far beyond the clamp.
    let magic = S::splat(S::E::from_f64(
        1.5 * 2f64.powi(S::E::MANTISSA_DIGITS as i32 - 1),
    ));
    let n: [S::V; U] = std::array::from_fn(|u| S::sub(S::add(t[u], magic), magic));
    let r: [S::V; U] = std::array::from_fn(|u| S::sub(t[u], n[u]));
    let p = poly.eval_many(r);
    std::array::from_fn(|u| S::ldexp(p[u], n[u]))
}

/// In place `exp2_nonpositive_many` over `count` vectors at `p`, U at a time.
///
/// # Safety
/// `p` must hold count * LANES readable and writable elements.
#[inline(always)]
pub unsafe fn exp2_nonpositive_run<S: Simd, const U: usize>(
    p: *mut S::E,
    count: usize,
    poly: &ExpPoly<S>,
) {
    let w = S::LANES;
    let mut i = 0;
    // SAFETY (whole body): vectors i < count lie inside the caller's buffer.
    unsafe {
        while i + U <= count {
            let t: [S::V; U] = std::array::from_fn(|u| S::load(p.add((i + u) * w)));
            let e = exp2_nonpositive_many(t, poly);
            for (u, &e) in e.iter().enumerate() {
                S::store(p.add((i + u) * w), e);
            }
            i += U;
        }
        while i < count {
            let [e] = exp2_nonpositive_many([S::load(p.add(i * w))], poly);
            S::store(p.add(i * w), e);
            i += 1;
        }
    }
}

/// e^x with IEEE behaviour at the edges: +inf above the overflow threshold, gradual underflow to
/// +0, e^-inf = 0, e^+inf = inf, NaN propagates.
#[inline(always)]
pub fn exp<S: Simd>(x: S::V) -> S::V {
    // Clamp with x as the second operand so a NaN x survives both.
    let x = S::max(S::splat(S::E::EXP_UNDERFLOW), x);
    let x = S::min(S::splat(S::E::EXP_OVERFLOW + S::E::ONE), x);
    let n = S::round(S::mul(x, S::splat(S::E::LOG2E)));
    let r = S::reduce_ln2(x, n);
    S::ldexp(exp_poly::<S>(r), n)
}
