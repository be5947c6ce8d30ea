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
pub fn exp_parts_with<S: Simd>(x: S::V, poly: &ExpPoly<S>) -> (S::V, S::V) {
    let x = S::max(S::splat(S::E::EXT_X_MIN), x);
    let n = round_log2e::<S>(x);
    (poly.eval(S::reduce_ln2(x, n)), n)
}

/// e^x * scale for the softmax kernels (`exp` semantics, softmax polynomial).
#[inline(always)]
pub fn exp_with<S: Simd>(x: S::V, poly: &ExpPoly<S>) -> S::V {
    let x = S::max(S::splat(S::E::EXP_UNDERFLOW), x);
    let x = S::min(S::splat(S::E::EXP_OVERFLOW + S::E::ONE), x);
    let n = round_log2e::<S>(x);
    S::ldexp(poly.eval(S::reduce_ln2(x, n)), n)
}

/// e^x with IEEE behaviour at the edges: +inf above the overflow threshold, gradual underflow to
/// +0, e^-inf = 0, e^+inf = inf, NaN propagates.
/// `exp_with` for x <= 0 (or NaN): no overflow clamp.
#[inline(always)]
pub fn exp_nonpositive_with<S: Simd>(x: S::V, poly: &ExpPoly<S>) -> S::V {
    let x = S::max(S::splat(S::E::EXP_UNDERFLOW), x);
    let n = round_log2e::<S>(x);
    S::ldexp(poly.eval(S::reduce_ln2(x, n)), n)
}

#[inline(always)]
pub fn exp<S: Simd>(x: S::V) -> S::V {
    // Clamp with x as the second operand so a NaN x survives both.
    let x = S::max(S::splat(S::E::EXP_UNDERFLOW), x);
    let x = S::min(S::splat(S::E::EXP_OVERFLOW + S::E::ONE), x);
    let n = S::round(S::mul(x, S::splat(S::E::LOG2E)));
    let r = S::reduce_ln2(x, n);
    S::ldexp(exp_poly::<S>(r), n)
}
