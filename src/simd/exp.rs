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

/// The extended-exponent form of e^x: (p, n) with e^x = p * 2^n, p in [0.7, 1.42], n an
/// integer-valued float. Never overflows. x below `EXT_X_MIN` (including -inf) is clamped to it;
/// `softmax::extexp` explains why that is exact. NaN and +inf give a NaN p.
#[inline(always)]
pub fn exp_parts<S: Simd>(x: S::V) -> (S::V, S::V) {
    let x = S::max(S::splat(S::E::EXT_X_MIN), x);
    let n = S::round(S::mul(x, S::splat(S::E::LOG2E)));
    let r = S::reduce_ln2(x, n);
    (exp_poly::<S>(r), n)
}
