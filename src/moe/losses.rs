//! Router losses and Shazeer's noisy logits.

use crate::error::{Error, Result};
use crate::simd::Lanes;
use crate::softmax::logsumexp;
use ndarray::{ArrayD, ArrayView2, ArrayViewD, Zip};

/// Which choices count towards the dispatch fractions f_i of the load-balancing loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadBalance {
    /// f_i = fraction of tokens whose first choice is i (Switch Transformer, top-1).
    First,
    /// f_i = fraction of all T k assignments that go to i (top-k; uniform routing gives 1, as
    /// with `First`; Mixtral's HF loss is k times this).
    All,
}

/// Switch's auxiliary loss E * sum_i f_i P_i, with P_i the mean router probability of expert i
/// over the tokens, from probs (T, E) and indices (T, k). Accumulates in f64.
pub fn load_balancing_loss<E: Lanes>(
    probs: ArrayView2<'_, E>,
    indices: ArrayView2<'_, i64>,
    variant: LoadBalance,
) -> Result<f64> {
    let (t, e) = probs.dim();
    if indices.nrows() != t || indices.ncols() == 0 {
        return Err(Error::Invalid(format!(
            "load_balancing_loss: indices must be (T, k) with T = {t} and k >= 1, got {:?}",
            indices.shape()
        )));
    }
    if t == 0 {
        return Err(Error::Invalid(
            "load_balancing_loss: probs and indices hold no tokens (T = 0): the loss is a mean \
             over tokens"
                .into(),
        ));
    }
    if probs.iter().any(|v| !v.is_finite()) {
        return Err(Error::Invalid(
            "load_balancing_loss: probs contains NaN or infinity".into(),
        ));
    }
    let cols = match variant {
        LoadBalance::First => 1,
        LoadBalance::All => indices.ncols(),
    };
    let mut f = vec![0.0f64; e];
    for row in indices.rows() {
        for &i in row.iter().take(cols) {
            if i < 0 || i as usize >= e {
                return Err(Error::Invalid(format!(
                    "load_balancing_loss: indices holds expert {i}, outside 0..{e} (probs' last dim)"
                )));
            }
            f[i as usize] += 1.0;
        }
    }
    let mut p = vec![0.0f64; e];
    for row in probs.rows() {
        for (pi, v) in p.iter_mut().zip(row.iter()) {
            *pi += v.to_f64();
        }
    }
    let n = (t * cols) as f64;
    let dot: f64 = f
        .iter()
        .zip(&p)
        .map(|(fi, pi)| (fi / n) * (pi / t as f64))
        .sum();
    Ok(e as f64 * dot)
}

/// ST-MoE's router z-loss: the mean over tokens of logsumexp(logits_t)^2.
pub fn router_z_loss<E: Lanes>(logits: ArrayView2<'_, E>) -> Result<f64> {
    let (t, e) = logits.dim();
    if t == 0 || e == 0 {
        return Err(Error::Invalid(format!(
            "router_z_loss: logits must be (T, E) with T, E >= 1, got {:?}",
            logits.shape()
        )));
    }
    // The softmax family's logsumexp (SIMD, threaded); NaN propagates, so a NaN row shows there.
    let lse = logsumexp(logits.into_dyn(), -1, None)?;
    let mut sum = 0.0;
    for (r, z) in lse.iter().enumerate() {
        if z.is_nan() {
            return Err(Error::Invalid(format!(
                "router_z_loss: logits row {r} contains NaN"
            )));
        }
        sum += z.to_f64() * z.to_f64();
    }
    Ok(sum / t as f64)
}

/// clean + normal * softplus(noise_logits) (Shazeer et al. 2017, noisy top-k gating), with a
/// stable softplus max(x, 0) + log1p(e^-|x|). Shapes must match; the noise is drawn by the caller.
pub fn noisy_logits<E: Lanes>(
    clean: ArrayViewD<'_, E>,
    noise_logits: ArrayViewD<'_, E>,
    normal: ArrayViewD<'_, E>,
) -> Result<ArrayD<E>> {
    for (what, a) in [("noise_logits", &noise_logits), ("normal", &normal)] {
        if a.shape() != clean.shape() {
            return Err(Error::Shape {
                what,
                expected: clean.shape().to_vec(),
                got: a.shape().to_vec(),
            });
        }
    }
    let mut out = clean.as_standard_layout().into_owned();
    Zip::from(&mut out)
        .and(&noise_logits)
        .and(&normal)
        .for_each(|o, &s, &z| {
            let s = s.to_f64();
            let sp = s.max(0.0) + (-s.abs()).exp().ln_1p();
            *o = E::from_f64(o.to_f64() + z.to_f64() * sp);
        });
    Ok(out)
}
