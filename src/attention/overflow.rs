//! Scores that overflow the dtype for finite inputs.
//!
//! softmax(s q.k) of finite q, k is defined, but when |s q.k| exceeds the dtype's largest value
//! the score is +-inf: a row whose max is +inf gives exp(inf - inf) = NaN, a row whose every
//! visible score is -inf looks like a row that sees nothing (0, lse -inf). Neither is the
//! answer, and the answer (a hard argmax over scores the dtype cannot hold) is not computable in
//! it, so such a call is an error naming the arguments. The check costs nothing on the common
//! path: it runs only when a row's lse came out non-finite, and then only decides whether that
//! row could have overflowed (|s| d max|q| max|k| at or above the dtype's range).

use crate::error::Error;
use crate::simd::Elem;

/// max |x| (0 for none).
pub(crate) fn max_abs<E: Elem>(x: &[E]) -> f64 {
    x.iter().fold(0.0f64, |m, &t| m.max(t.to_f64().abs()))
}

/// |scale| * d * prod_i max|x_i|: no score of a product of these factors can exceed it.
pub(crate) fn score_bound<E: Elem>(scale: f64, d: usize, factors: &[&[E]]) -> f64 {
    factors
        .iter()
        .fold(scale.abs() * d as f64, |b, f| b * max_abs(f))
}

/// True when a score bounded by `bound` may leave E's finite range.
pub(crate) fn may_overflow<E: Elem>(bound: f64) -> bool {
    bound.is_nan() || bound >= (-E::LOWEST).to_f64()
}

/// The error for a call whose scores overflowed: `what` is the score and the arguments it is
/// made of, ("scale * q.k", "q and k").
pub(crate) fn overflow_error<E: Elem>(func: &str, what: (&str, &str), bound: f64) -> Error {
    let dtype = if E::MANTISSA_DIGITS == 24 {
        "float32"
    } else {
        "float64"
    };
    Error::Invalid(format!(
        "{func}: {score} overflows {dtype} for these finite {args} (|scores| up to \
         {bound:.3e}): rescale {args} (or pass float64)",
        score = what.0,
        args = what.1,
    ))
}

/// Checks rows' log-sum-exps after a call: a NaN or +inf lse, or a -inf lse of a row for which
/// `sees_keys(row)` holds, is an overflow when `bound()` allows one. Rows are flat indices.
pub(crate) fn check_rows<E: Elem>(
    lse: &[E],
    sees_keys: impl Fn(usize) -> bool,
    bound: impl FnOnce() -> f64,
    func: &str,
    what: (&str, &str),
) -> Result<(), Error> {
    let suspect = |r: usize, &l: &E| !l.is_finite() && (l != E::NEG_INFINITY || sees_keys(r));
    if !lse.iter().enumerate().any(|(r, l)| suspect(r, l)) {
        return Ok(());
    }
    let b = bound();
    if may_overflow::<E>(b) {
        return Err(overflow_error::<E>(func, what, b));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_and_range() {
        let (q, k) = ([1e19f32, -2.0], [3.0f32, -4e19]);
        let b = score_bound(0.5, 2, &[&q[..], &k[..]]);
        assert_eq!(b, 0.5 * 2.0 * 1e19f32 as f64 * 4e19f32 as f64);
        assert!(may_overflow::<f32>(b) && !may_overflow::<f64>(b));
        assert!(may_overflow::<f64>(f64::NAN));
        let e = check_rows::<f32>(&[0.0, f32::NAN], |_| true, || b, "f", ("s", "q and k"));
        assert!(e
            .unwrap_err()
            .to_string()
            .starts_with("f: s overflows float32"));
        // A -inf row that sees nothing is not an overflow; a finite bound clears any row.
        assert!(check_rows::<f32>(&[f32::NEG_INFINITY], |_| false, || b, "f", ("s", "q")).is_ok());
        assert!(check_rows::<f32>(&[f32::NAN], |_| true, || 1.0, "f", ("s", "q")).is_ok());
    }
}
