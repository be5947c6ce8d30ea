//! Non-causal linear forms built from whole-sequence key statistics: InLine (Han et al., 2024,
//! "Bridging the divide: reconsidering softmax and linear attention", LeapLabTHU/InLine) and
//! RALA (Fan et al., 2025, "Breaking the low-rank dilemma of linear attention", qhfan/RALA).
//! Both are one pass over K and V (phi(K)^T V, phi(K)^T 1 and V^T 1 accumulated in f64 over
//! blocks of keys, through the crate's small products), then one pass over Q:
//! out = phi(Q) M / den + bias, where M, den and bias come from those statistics.

use super::dots::add_dots;
use super::HeadJob;
use crate::linalg::{gemm_rows, GemmElem};
use crate::simd::{self, Lanes};
use crate::softmax::online_tile::online_weights_with;
use std::mem::MaybeUninit;

/// Rows per block of the non-causal passes (any size is exact: the statistics are sums): 2048
/// rows of 64 features are 512 KiB in f32, in L2 on every machine kind beside their V block,
/// and long enough for the GEMM's packing to pay (shorter blocks through the small-product
/// kernel were slower; benches/README.md).
pub(super) const BLOCK: usize = 2048;

/// Sums over one head's keys, in f64: s = sum w_j phi(k_j) v_j^T (d x dv), z = sum w_j phi(k_j),
/// v = sum v_j (unweighted: its finiteness stands in for a separate check of V).
pub(super) struct KeyStats {
    pub s: Vec<f64>,
    pub z: Vec<f64>,
    pub v: Vec<f64>,
    /// RALA's softmax normaliser of the weights (1 when unweighted).
    pub l: f64,
}

/// The key pass. With `query_mean = Some(qbar)` the weights are RALA's w_j = e^(a_j - m) with
/// a_j = scale qbar . phi(k_j), m the running max (the online softmax: s and z rescaled when m
/// grows), and `l` their sum, so w_j / l is the softmax over keys; otherwise w_j = 1.
pub(super) fn key_stats<E: GemmElem + Lanes>(
    job: &HeadJob<'_, E>,
    query_mean: Option<(&[E], E)>,
) -> KeyStats {
    let (d, dv) = (job.d, job.dv);
    let mut st = KeyStats {
        s: vec![0.0; d * dv],
        z: vec![0.0; d],
        v: vec![0.0; dv],
        l: 0.0,
    };
    let mut m = f64::NEG_INFINITY;
    let mut xc = vec![E::ZERO; BLOCK * d];
    let mut t = vec![E::ZERO; d * dv];
    let mut a = [E::ZERO; BLOCK];
    for r0 in (0..job.s).step_by(BLOCK) {
        let b = BLOCK.min(job.s - r0);
        let x = &mut xc[..b * d];
        job.phi_k(&job.k[r0 * d..(r0 + b) * d], x);
        let vb = &job.v[r0 * dv..(r0 + b) * dv];
        for row in vb.chunks_exact(dv) {
            st.v.iter_mut()
                .zip(row)
                .for_each(|(s, &y)| *s += y.to_f64());
        }
        if let Some((qbar, scale)) = query_mean {
            let a = &mut a[..b];
            a.fill(E::ZERO);
            add_dots(x, qbar, a);
            a.iter_mut().for_each(|y| *y = *y * scale);
            let (m_new, sum) = online_weights_with(simd::active(), a, m);
            if m_new > m && m > f64::NEG_INFINITY {
                let f = (m - m_new).exp();
                st.s.iter_mut().chain(st.z.iter_mut()).for_each(|y| *y *= f);
                st.l *= f;
            }
            m = m_new;
            st.l += sum;
            for (row, &w) in x.chunks_exact_mut(d).zip(a.iter()) {
                row.iter_mut().for_each(|y| *y = *y * w);
            }
        }
        gemm_rows(E::ZERO, &mut t, (d, dv, b), E::ONE, x, true, vb, false);
        st.s.iter_mut().zip(&t).for_each(|(s, &y)| *s += y.to_f64());
        for row in x.chunks_exact(d) {
            st.z.iter_mut()
                .zip(row)
                .for_each(|(s, &y)| *s += y.to_f64());
        }
    }
    if query_mean.is_none() {
        st.l = 1.0;
    }
    st
}

/// The query pass: out_i = phi(q_i) m / (phi(q_i) . z + eps) (with `den = Some((z, eps))`) or
/// phi(q_i) m + bias, for the head's rows of q (m: d x dv in the element type).
pub(super) fn query_pass<E: GemmElem + Lanes>(
    job: &HeadJob<'_, E>,
    m: &[E],
    den: Option<(&[E], E)>,
    bias: Option<&[E]>,
    out: &mut [MaybeUninit<E>],
) {
    let (d, dv) = (job.d, job.dv);
    let mut xc = vec![E::ZERO; BLOCK * d];
    let mut o = vec![E::ZERO; BLOCK * dv];
    let mut dn = [E::ZERO; BLOCK];
    let zero = vec![E::ZERO; dv];
    let bias = bias.unwrap_or(&zero);
    for r0 in (0..job.n).step_by(BLOCK) {
        let b = BLOCK.min(job.n - r0);
        job.phi_q(&job.q[r0 * d..(r0 + b) * d], &mut xc[..b * d]);
        gemm_rows(E::ZERO, &mut o, (b, dv, d), E::ONE, &xc, false, m, false);
        let dst = &mut out[r0 * dv..(r0 + b) * dv];
        if let Some((z, eps)) = den {
            dn[..b].fill(eps);
            add_dots(&xc[..b * d], z, &mut dn[..b]);
            for ((orow, drow), &x) in o.chunks_exact(dv).zip(dst.chunks_exact_mut(dv)).zip(&dn) {
                let inv = E::ONE / x;
                drow.iter_mut().zip(orow).for_each(|(y, &v)| {
                    y.write(v * inv);
                });
            }
        } else {
            for (orow, drow) in o.chunks_exact(dv).zip(dst.chunks_exact_mut(dv)) {
                for ((y, &v), &c) in drow.iter_mut().zip(orow).zip(bias) {
                    y.write(v + c);
                }
            }
        }
    }
}

/// mean_i phi(q_i) over the head's queries (RALA's query summary), in the element type.
pub(super) fn query_mean<E: GemmElem + Lanes>(job: &HeadJob<'_, E>) -> Vec<E> {
    let d = job.d;
    let mut xc = vec![E::ZERO; BLOCK * d];
    let mut sum = vec![0.0f64; d];
    for r0 in (0..job.n).step_by(BLOCK) {
        let b = BLOCK.min(job.n - r0);
        job.phi_q(&job.q[r0 * d..(r0 + b) * d], &mut xc[..b * d]);
        for row in xc[..b * d].chunks_exact(d) {
            sum.iter_mut().zip(row).for_each(|(s, &y)| *s += y.to_f64());
        }
    }
    let inv = 1.0 / job.n.max(1) as f64;
    sum.iter().map(|&s| E::from_f64(s * inv)).collect()
}
