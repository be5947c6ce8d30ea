//! Power-Softmax (Zimerman et al., "Power-Softmax: Towards Secure LLM Inference over Encrypted
//! Data", 2024): y_i = x_i^p / (eps + sum_j x_j^p) for a positive even p, a polynomial
//! replacement of softmax that homomorphic encryption can evaluate.
//!
//! Computed on x / m with m = max |x| over the row: with eps = 0 the function is scale
//! invariant, and eps becomes eps / m^p, so no power overflows (x^p overflows f32 from |x| ~ 4e9
//! at p = 4, and f64 from ~1e77). Powers and sums are in double precision.

// Elements per parallel task: the softmax driver's, fixed, independent of the thread count.
use super::driver::TASK_ELEMS;
use crate::error::{normalize_axis, Error, Result};
use crate::simd::Elem;
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rayon::prelude::*;

/// One (n x inner) block: lane i holds x[j * inner + i] for j < n. `kept` = None keeps all.
fn block<E: Elem>(x: &[E], kept: Option<&[bool]>, y: &mut [E], n: usize, p: i32, eps: f64) {
    let inner = x.len() / n;
    let keep = |k: usize| kept.is_none_or(|m| m[k]);
    let (mut m, mut count) = (vec![0.0f64; inner], vec![0usize; inner]);
    for j in 0..n {
        for i in 0..inner {
            let k = j * inner + i;
            if keep(k) {
                let a = x[k].to_f64().abs();
                // NaN wins, so a NaN row stays NaN.
                m[i] = if a > m[i] || a.is_nan() { a } else { m[i] };
                count[i] += 1;
            }
        }
    }
    // eps / m^p (0 without eps: (1/m)^p may overflow, and 0 * inf is NaN).
    let mut s: Vec<f64> = m
        .iter()
        .map(|&mi| {
            if eps > 0.0 {
                eps * (1.0 / mi).powi(p)
            } else {
                0.0
            }
        })
        .collect();
    for j in 0..n {
        for i in 0..inner {
            let k = j * inner + i;
            if keep(k) {
                s[i] += (x[k].to_f64() / m[i]).powi(p);
            }
        }
    }
    for j in 0..n {
        for i in 0..inner {
            let k = j * inner + i;
            y[k] = if !keep(k) || count[i] == 0 {
                E::ZERO
            } else if m[i] == 0.0 {
                // All kept entries are 0: 0 / eps, or 0/0 without eps.
                if eps > 0.0 {
                    E::ZERO
                } else {
                    E::NAN
                }
            } else {
                E::from_f64((x[k].to_f64() / m[i]).powi(p) / s[i])
            };
        }
    }
}

/// Power-Softmax of x along `axis`. Masked entries (mask false) are left out of the sum and give
/// 0; a row with nothing kept gives 0s. An all-zero row with eps = 0 is 0/0 and gives NaN (as
/// softmax of an all -inf row); a NaN or an infinity gives a NaN row.
pub fn power_softmax<E: Elem>(
    x: ArrayViewD<'_, E>,
    p: u32,
    axis: isize,
    eps: f64,
    mask: Option<ArrayViewD<'_, bool>>,
) -> Result<ArrayD<E>> {
    if p == 0 || p % 2 == 1 || p > 1024 {
        return Err(Error::Invalid(format!(
            "power_softmax: p must be a positive even integer (at most 1024), got {p}"
        )));
    }
    if !(eps >= 0.0 && eps.is_finite()) {
        return Err(Error::Invalid(format!(
            "power_softmax: eps must be finite and >= 0, got {eps}"
        )));
    }
    let ax = normalize_axis(axis, x.ndim())?;
    let shape = x.shape().to_vec();
    let (n, inner) = (shape[ax], shape[ax + 1..].iter().product::<usize>());
    let xs = x.as_standard_layout();
    let xs = xs
        .as_slice()
        .ok_or_else(|| Error::Invalid("internal: layout".into()))?;
    let ms: Option<Vec<bool>> = match mask {
        Some(m) => {
            let mb = m.broadcast(x.raw_dim()).ok_or_else(|| Error::Shape {
                what: "where",
                expected: shape.clone(),
                got: m.shape().to_vec(),
            })?;
            Some(mb.iter().copied().collect())
        }
        None => None,
    };
    let mut out = vec![E::ZERO; xs.len()];
    let len = n * inner;
    if len > 0 {
        let per = len * (TASK_ELEMS / len).max(1);
        crate::threads::install(|| {
            out.par_chunks_mut(per).enumerate().for_each(|(c, yc)| {
                let base = c * per;
                for (b, yb) in yc.chunks_mut(len).enumerate() {
                    let lo = base + b * len;
                    let kept = ms.as_deref().map(|m| &m[lo..lo + len]);
                    block(&xs[lo..lo + len], kept, yb, n, p as i32, eps);
                }
            })
        });
    }
    ArrayD::from_shape_vec(IxDyn(&shape), out).map_err(|e| Error::Invalid(e.to_string()))
}
