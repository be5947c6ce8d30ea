//! The polynomial method for tensor attention (Alman & Song, 2023, section on the upper bound):
//! e^x ~ T_g(x) = sum_{t <= g} x^t / t!, and with x = (s q) . (k1 o k2),
//!   x^t = <(s q)^(x)t, k1^(x)t o k2^(x)t>,
//! so T_g(x_ijl) = U1_i . (U2_j o U3_l) with U1 = [(s q)^(x)t / t!]_t, U2 = [k1^(x)t]_t,
//! U3 = [k2^(x)t]_t (D = sum_t d^t features). Then
//!   out_i = U1_i [(U2^T V1) o (U3^T V2)] / U1_i [(U2^T 1) o (U3^T 1)]:
//! O((n + s1 + s2) D dv) instead of O(n s1 s2 d). Sums in f64.
//!
//! Error: with |x_ijl| <= B for every pair, each weight's relative error is at most
//! eps = B^(g+1) e^B / (g+1)! (the Lagrange remainder over e^x), so every output moves by at
//! most 2 eps / (1 - eps) max |v1 o v2| from the exact path. Odd g can make the normaliser
//! non-positive (T_g < 0 far below 0): a ValueError, never a silent division.

use super::Heads;
use crate::error::{Error, Result};
use crate::linalg::GemmElem;
use crate::simd::Lanes;
use std::mem::MaybeUninit;

/// Most features per head (D), so a call's memory stays bounded: 2^20 f64 x (dv + 1).
const MAX_FEATURES: usize = 1 << 20;

/// [c_0, c_1 x, c_2 x^(x)2, ..., c_g x^(x)g] (tensor powers, row-major) into `out`, g + 1 =
/// c.len().
fn features<E: Lanes>(x: &[E], c: &[f64], out: &mut Vec<f64>) {
    out.clear();
    out.push(1.0);
    let (mut start, mut len) = (0, 1);
    for _ in 1..c.len() {
        let next = out.len();
        for p in start..start + len {
            let base = out[p];
            out.extend(x.iter().map(|&y| base * y.to_f64()));
        }
        (start, len) = (next, out.len() - next);
    }
    let (mut s0, mut l) = (0, 1);
    for &ct in c {
        out[s0..s0 + l].iter_mut().for_each(|y| *y *= ct);
        s0 += l;
        l *= x.len();
    }
}

pub(super) fn run<E: GemmElem + Lanes>(
    func: &str,
    x: &Heads<'_, E>,
    g: usize,
    out: &mut [MaybeUninit<E>],
) -> Result<()> {
    let hs = x.hs;
    let (d, dv) = (hs.d, hs.dv);
    let mut feats = 0usize;
    let mut pow = 1usize;
    // Every degree adds at least one feature, so this stops within MAX_FEATURES + 1 steps
    // whatever g is (a huge degree is an error, not a hang).
    for _ in 0..=g {
        feats = feats.saturating_add(pow);
        if feats > MAX_FEATURES {
            break;
        }
        pow = pow.saturating_mul(d);
    }
    if feats > MAX_FEATURES {
        return Err(Error::Invalid(format!(
            "{func}: degree {g} with d = {d} needs {feats} features per head (limit {MAX_FEATURES}); lower the degree"
        )));
    }
    let fact: Vec<f64> = (0..=g)
        .scan(1.0, |f, t| {
            if t > 0 {
                *f *= t as f64;
            }
            Some(*f)
        })
        .collect();
    let ones = vec![1.0; g + 1];
    let qc: Vec<f64> = (0..=g).map(|t| x.scale.powi(t as i32) / fact[t]).collect();
    let per_head = hs.n * dv;
    if per_head == 0 {
        return Ok(());
    }
    let tasks: Vec<_> = out.chunks_mut(per_head).enumerate().collect();
    let run = |_: &mut (), (h, o): (usize, &mut [MaybeUninit<E>])| -> Result<()> {
        let [q, k1, k2, v1, v2] = x.head(h);
        // W1 = U2^T [V1 1], W2 = U3^T [V2 1] (D x (dv + 1)).
        let side = |k: &[E], v: &[E]| {
            let mut w = vec![0.0f64; feats * (dv + 1)];
            let mut f = Vec::with_capacity(feats);
            for (krow, vrow) in k.chunks_exact(d).zip(v.chunks_exact(dv)) {
                features(krow, &ones, &mut f);
                for (m, &fm) in f.iter().enumerate() {
                    let wrow = &mut w[m * (dv + 1)..(m + 1) * (dv + 1)];
                    wrow[..dv]
                        .iter_mut()
                        .zip(vrow)
                        .for_each(|(a, &b)| *a += fm * b.to_f64());
                    wrow[dv] += fm;
                }
            }
            w
        };
        let mut w = side(k1, v1);
        let w2 = side(k2, v2);
        w.iter_mut().zip(&w2).for_each(|(a, &b)| *a *= b);
        let mut f = Vec::with_capacity(feats);
        let mut acc = vec![0.0f64; dv + 1];
        for (i, (qrow, dst)) in q.chunks_exact(d).zip(o.chunks_exact_mut(dv)).enumerate() {
            features(qrow, &qc, &mut f);
            acc.fill(0.0);
            for (m, &fm) in f.iter().enumerate() {
                acc.iter_mut()
                    .zip(&w[m * (dv + 1)..(m + 1) * (dv + 1)])
                    .for_each(|(a, &b)| *a += fm * b);
            }
            let den = acc[dv];
            if !(den > 0.0 && den.is_finite()) {
                return Err(Error::Invalid(format!(
                    "{func}: degree {g}: the approximation's normaliser is not positive for query row {i} (odd degrees go negative on large negative scores; use an even degree, or the exact path)"
                )));
            }
            for (y, &a) in dst.iter_mut().zip(&acc[..dv]) {
                y.write(E::from_f64(a / den));
            }
        }
        Ok(())
    };
    let results = crate::threads::map_tasks(tasks, || (), run);
    results.into_iter().collect()
}
