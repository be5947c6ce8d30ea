//! inline_attention and rala_attention: the head loop around `global`'s two passes.
//!
//! InLine (official `InLineAttention.forward`, inline_deit.py): with s = scale,
//!   out_i = sum_j w_ij v_j,  w_ij = s (phi(q_i) . phi(k_j) - phi(q_i) . mean phi(k)) + 1/N,
//! i.e. out = phi(Q) [s sum_j (phi(k_j) - kbar) v_j^T] + vbar: rows of w sum to 1 with no
//! division, and weights may be negative. The official code writes s = d^-0.5 / N as
//! `self.scale / n` and adds a depthwise 3x3 convolution of v (a model part, not here).
//!
//! RALA (official `GateLinearAttentionNoSilu.forward`, qhfan/RALA classfication/RALA.py):
//!   phi = elu + 1; alpha = softmax_l(s mean_i(phi(q_i)) . phi(k_l)); k'_l = N alpha_l phi(k_l);
//!   out_i = phi(q_i)^T (sum_l k'_l v_l^T / N) / (phi(q_i) . mean_l k'_l + eps).
//! The official layer applies RoPE to phi(q) and k' in the numerator only and adds LePE (a 5x5
//! depthwise convolution of v) and an output gate: model parts, not here.

use super::gates::Gates;
use super::global::{key_stats, query_mean, query_pass, KeyStats};
use super::HeadJob;
use super::LinearOptions;
use crate::attention::feature::FeatureMap;
use crate::attention::heads::{qkv_shape, Contig, HeadShape, Output};
use crate::error::{Error, Result};
use crate::linalg::GemmElem;
use crate::simd::{all_finite, Lanes};
use ndarray::{ArrayD, ArrayViewD};
use std::mem::MaybeUninit;

/// Which of the two forms a head computes.
#[derive(Clone, Copy)]
enum Form {
    /// InLine with its scale on the centred scores.
    Inline(f64),
    /// RALA with the scale of its key-reweighting softmax and eps.
    Rala(f64, f64),
}

/// InLine attention: q (..., n, d), k (..., s, d), v (..., s, dv); scale None is d^-0.5 / s;
/// feature maps identity, relu, elu1.
pub fn inline_attention<E: GemmElem + Lanes>(
    q: ArrayViewD<'_, E>,
    k: ArrayViewD<'_, E>,
    v: ArrayViewD<'_, E>,
    scale: Option<f64>,
    feature_map: FeatureMap,
) -> Result<ArrayD<E>> {
    const F: &str = "inline_attention";
    if feature_map == FeatureMap::Exp {
        return Err(Error::Invalid(format!(
            "{F}: feature_map must be 'identity', 'relu' or 'elu1', got 'exp'"
        )));
    }
    let hs = qkv_shape(F, q.shape(), k.shape(), v.shape())?;
    let scale = scale.unwrap_or(1.0 / ((hs.d as f64).sqrt() * hs.s.max(1) as f64));
    heads(F, q, k, v, hs, feature_map, Form::Inline(scale))
}

/// RALA's attention core: q (..., n, d), k (..., s, d), v (..., s, dv); scale None is d^-0.5.
pub fn rala_attention<E: GemmElem + Lanes>(
    q: ArrayViewD<'_, E>,
    k: ArrayViewD<'_, E>,
    v: ArrayViewD<'_, E>,
    scale: Option<f64>,
    eps: f64,
) -> Result<ArrayD<E>> {
    const F: &str = "rala_attention";
    let hs = qkv_shape(F, q.shape(), k.shape(), v.shape())?;
    if !eps.is_finite() || eps < 0.0 {
        return Err(Error::Invalid(format!(
            "{F}: eps must be finite and >= 0, got {eps}"
        )));
    }
    let scale = scale.unwrap_or(1.0 / (hs.d as f64).sqrt());
    heads(F, q, k, v, hs, FeatureMap::Elu1, Form::Rala(scale, eps))
}

fn heads<E: GemmElem + Lanes>(
    func: &str,
    q: ArrayViewD<'_, E>,
    k: ArrayViewD<'_, E>,
    v: ArrayViewD<'_, E>,
    hs: HeadShape,
    feature_map: FeatureMap,
    form: Form,
) -> Result<ArrayD<E>> {
    let s = match form {
        Form::Inline(s) | Form::Rala(s, _) => s,
    };
    if !s.is_finite() {
        return Err(Error::Invalid(format!(
            "{func}: scale must be finite, got {s}"
        )));
    }
    if hs.s == 0 && hs.n > 0 && hs.heads() > 0 {
        return Err(Error::Invalid(format!(
            "{func}: k and v need at least one key (s >= 1): the form averages over keys"
        )));
    }
    let qshape = q.shape().to_vec();
    let (qc, kc, vc) = (Contig::new(q), Contig::new(k), Contig::new(v));
    let gates = Gates::new(func, None, &qshape, &hs)?;
    let heads = hs.heads();
    let mut out = Output::<E>::new(func, heads * hs.n * hs.dv)?;
    let tasks: Vec<_> = if hs.n * hs.dv == 0 {
        Vec::new()
    } else {
        out.uninit().chunks_mut(hs.n * hs.dv).enumerate().collect()
    };
    let (qs, ks, vs) = (qc.slice(), kc.slice(), vc.slice());
    let opts = LinearOptions {
        feature_map,
        ..LinearOptions::default()
    };
    let run = |_: &mut (), (h, o): (usize, &mut [MaybeUninit<E>])| {
        let job = HeadJob::new(&hs, h, (qs, ks, vs), gates.head(h), opts, E::ONE);
        head(func, &job, form, o)
    };
    let results = crate::threads::map_tasks(tasks, || (), run);
    results.into_iter().collect::<Result<()>>()?;
    // q, k and v are checked in the passes over them when a head runs; here when none did.
    if heads == 0 || hs.n * hs.dv == 0 {
        for (what, x) in [("q", qs), ("k", ks), ("v", vs)] {
            if !all_finite(x) {
                return Err(Error::Invalid(format!(
                    "{func}: {what} contains NaN or infinity"
                )));
            }
        }
    }
    // SAFETY: every head task wrote its n x dv outputs.
    unsafe { out.assume_init(&HeadShape::out_shape(&qshape, hs.dv)) }
}

/// One head: the key pass, then the query pass.
fn head<E: GemmElem + Lanes>(
    func: &str,
    job: &HeadJob<'_, E>,
    form: Form,
    out: &mut [MaybeUninit<E>],
) -> Result<()> {
    let (d, dv) = (job.d, job.dv);
    let cast = |x: &[f64], f: f64| -> Vec<E> { x.iter().map(|&y| E::from_f64(y * f)).collect() };
    match form {
        Form::Inline(s) => {
            let st = key_stats(job, None);
            v_finite(func, job, &st)?;
            job.inputs_finite(func)?;
            let inv = 1.0 / job.s as f64;
            // s sum_j (phi(k_j) - kbar) v_j^T = s (S - z vbar^T).
            let mut m = vec![E::ZERO; d * dv];
            for (c, row) in m.chunks_exact_mut(dv).enumerate() {
                for (e, x) in row.iter_mut().enumerate() {
                    *x = E::from_f64(s * (st.s[c * dv + e] - st.z[c] * st.v[e] * inv));
                }
            }
            let bias = cast(&st.v, inv);
            query_pass(job, &m, None, Some(&bias), out);
        }
        Form::Rala(s, eps) => {
            let qbar = query_mean(job);
            let st = key_stats(job, Some((&qbar, E::from_f64(s))));
            v_finite(func, job, &st)?;
            job.inputs_finite(func)?;
            // With w_l = e^(a_l - m) and l = sum w: k'_l = N w_l / l phi(k_l), so
            // sum k'_l v_l^T / N = S / l and mean k' = z / l.
            let inv = 1.0 / st.l;
            let (m, z) = (cast(&st.s, inv), cast(&st.z, inv));
            query_pass(job, &m, Some((&z, E::from_f64(eps))), None, out);
        }
    }
    job.inputs_finite(func)
}

/// ValueError naming v when it holds NaN or infinity: its sum is finite otherwise (up to an
/// f64 overflow of finite values, told apart by an exact scan only then).
fn v_finite<E: GemmElem + Lanes>(func: &str, job: &HeadJob<'_, E>, st: &KeyStats) -> Result<()> {
    if st.v.iter().all(|x| x.is_finite()) || all_finite(job.v) {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "{func}: v contains NaN or infinity"
    )))
}
