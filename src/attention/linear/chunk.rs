//! The block forms of linear attention, with every product through the crate's GEMM.
//!
//! Causal (flash-linear-attention's chunk form): for a chunk of C tokens with cumulative
//! log-decays G_i (from the chunk start, G_i <= 0 and non-increasing),
//!   O = (Q o e^G) S  +  ((Q K^T) o D) [V 1],      D_ij = e^(G_i - G_j) for j <= i, else 0,
//!   S <- e^(G_C) S + (K o e^(G_C - G))^T [V 1],
//! where every exponent is <= 0, so nothing overflows (never e^(-G)). With per-key gates (GLA)
//! the intra-chunk block cannot factor into one product: sub-blocks of `SUB` tokens use the
//! reference point r at the start of the row sub-block (Q o e^(G - G_r)) (K o e^(G_r - G))^T,
//! again only non-positive exponents, and the diagonal sub-blocks are summed directly.

use super::dots::add_dots;
use super::gates::Gate;
use super::global;
use super::HeadJob;
use crate::linalg::{gemm_rows, small_gemm, GemmElem, SmallGemm};
use crate::simd::expmap::exp_affine;
use crate::simd::Lanes;
use std::mem::MaybeUninit;

/// Tokens per sub-block of the per-key-gate intra-chunk product.
const SUB: usize = 8;

/// The f64 state rows (dv + 1: S's row, then z) as S (d x dv) and z (d) in the element type.
fn state_elems<E: GemmElem>(st: &[f64], dv: usize, sf: &mut [E], zf: &mut [E]) {
    for ((row, srow), z) in st.chunks_exact(dv + 1).zip(sf.chunks_exact_mut(dv)).zip(zf) {
        srow.iter_mut()
            .zip(row)
            .for_each(|(a, &b)| *a = E::from_f64(b));
        *z = E::from_f64(row[dv]);
    }
}

/// st <- f st + [T, zsum] row by row (f per row: the decay of the chunk).
fn state_update<E: GemmElem>(st: &mut [f64], dv: usize, t: &[E], zsum: &[E], f: &[f64]) {
    for (((row, trow), &zs), &fc) in st
        .chunks_exact_mut(dv + 1)
        .zip(t.chunks_exact(dv))
        .zip(zsum)
        .zip(f)
    {
        row[..dv]
            .iter_mut()
            .zip(trow)
            .for_each(|(s, &t)| *s = fc * *s + t.to_f64());
        row[dv] = fc * row[dv] + zs.to_f64();
    }
}

/// Column sums of `rows` rows of d (the normaliser's share of a block of keys).
fn col_sums<E: GemmElem>(x: &[E], d: usize, out: &mut [E]) {
    out.fill(E::ZERO);
    for row in x.chunks_exact(d) {
        out.iter_mut().zip(row).for_each(|(a, &b)| *a = *a + b);
    }
}

/// Non-causal: S += phi(K)^T V and z += phi(K)^T 1 over blocks of keys, then phi(Q) S and
/// phi(Q) . z.
pub(super) fn noncausal<E: GemmElem + Lanes>(
    job: &HeadJob<'_, E>,
    st: &mut [f64],
    out: &mut [MaybeUninit<E>],
) {
    let (d, dv) = (job.d, job.dv);
    let mut xc = vec![E::ZERO; global::BLOCK * d];
    let mut t = vec![E::ZERO; d * dv];
    let mut zs = vec![E::ZERO; d];
    let ones = vec![1.0; d];
    for r0 in (0..job.s).step_by(global::BLOCK) {
        let b = global::BLOCK.min(job.s - r0);
        job.phi_k(&job.k[r0 * d..(r0 + b) * d], &mut xc[..b * d]);
        let vb = &job.v[r0 * dv..(r0 + b) * dv];
        job.check_v(vb);
        gemm_rows(E::ZERO, &mut t, (d, dv, b), E::ONE, &xc, true, vb, false);
        col_sums(&xc[..b * d], d, &mut zs);
        state_update(st, dv, &t, &zs, &ones);
    }
    let (mut sf, mut zf) = (vec![E::ZERO; d * dv], vec![E::ZERO; d]);
    state_elems(st, dv, &mut sf, &mut zf);
    let mut o = vec![E::ZERO; global::BLOCK * dv];
    let mut den = [E::ZERO; global::BLOCK];
    for r0 in (0..job.n).step_by(global::BLOCK) {
        let b = global::BLOCK.min(job.n - r0);
        job.phi_q(&job.q[r0 * d..(r0 + b) * d], &mut xc[..b * d]);
        gemm_rows(E::ZERO, &mut o, (b, dv, d), E::ONE, &xc, false, &sf, false);
        den[..b].fill(E::ZERO);
        add_dots(&xc[..b * d], &zf, &mut den[..b]);
        job.finish(&o[..b * dv], &den[..b], &mut out[r0 * dv..(r0 + b) * dv]);
    }
}

/// Per-chunk buffers of the causal form.
struct Chunk<E> {
    qc: Vec<E>,
    kc: Vec<E>,
    qd: Vec<E>,
    kd: Vec<E>,
    a: Vec<E>,
    o: Vec<E>,
    den: Vec<E>,
    ones: Vec<E>,
    t: Vec<E>,
    zs: Vec<E>,
    sf: Vec<E>,
    zf: Vec<E>,
    /// Cumulative log-decays (C, or C x d for per-key gates) and the state's row factors.
    g: Vec<f64>,
    f: Vec<f64>,
    dmat: Vec<f64>,
    /// Exponents and their exponentials for the per-key gates (C x d).
    t_exp: Vec<E>,
    e_exp: Vec<E>,
}

/// Causal, chunk by chunk, carrying the f64 state `st` (d rows of dv + 1).
pub(super) fn causal<E: GemmElem + Lanes>(
    job: &HeadJob<'_, E>,
    st: &mut [f64],
    out: &mut [MaybeUninit<E>],
) {
    let (d, dv) = (job.d, job.dv);
    let cs = job.opts.chunk_size.min(job.n.max(1));
    let keyed = matches!(job.gate, Gate::Key(_));
    let gl = if keyed { cs * d } else { cs };
    let mut b = Chunk {
        qc: vec![E::ZERO; cs * d],
        kc: vec![E::ZERO; cs * d],
        qd: vec![E::ZERO; cs * d],
        kd: vec![E::ZERO; cs * d],
        a: vec![E::ZERO; cs * cs],
        o: vec![E::ZERO; cs * dv],
        den: vec![E::ZERO; cs],
        ones: vec![E::ONE; cs],
        t: vec![E::ZERO; d * dv],
        zs: vec![E::ZERO; d],
        sf: vec![E::ZERO; d * dv],
        zf: vec![E::ZERO; d],
        g: vec![0.0; gl],
        f: vec![1.0; d],
        dmat: vec![0.0; cs * cs],
        t_exp: vec![E::ZERO; if keyed { cs * d } else { 0 }],
        e_exp: vec![E::ZERO; if keyed { cs * d } else { 0 }],
    };
    for t0 in (0..job.n).step_by(cs) {
        let c = cs.min(job.n - t0);
        job.phi_q(&job.q[t0 * d..(t0 + c) * d], &mut b.qc[..c * d]);
        job.phi_k(&job.k[t0 * d..(t0 + c) * d], &mut b.kc[..c * d]);
        let vc = &job.v[t0 * dv..(t0 + c) * dv];
        state_elems(st, dv, &mut b.sf, &mut b.zf);
        let gated = decay_weights(job, &mut b, t0, c, cs);
        let qd = if gated { &b.qd } else { &b.qc };
        // Inter-chunk: (Q o e^G) S and (Q o e^G) . z.
        small_gemm(SmallGemm::rows(c, dv, d), qd, &b.sf, &mut b.o);
        b.den[..c].fill(E::ZERO);
        add_dots(&qd[..c * d], &b.zf, &mut b.den[..c]);
        // Intra-chunk: the masked, decayed block times V (its row sums join the normaliser).
        if keyed {
            gla_intra(&mut b, c, d);
        } else {
            gemm_rows(
                E::ZERO,
                &mut b.a,
                (c, c, d),
                E::ONE,
                &b.qc,
                false,
                &b.kc,
                true,
            );
            for i in 0..c {
                let row = &mut b.a[i * c..(i + 1) * c];
                if gated {
                    for (x, &dd) in row[..=i].iter_mut().zip(&b.dmat[i * cs..]) {
                        *x = *x * E::from_f64(dd);
                    }
                }
                row[i + 1..].fill(E::ZERO);
            }
        }
        add_dots(&b.a[..c * c], &b.ones[..c], &mut b.den[..c]);
        small_gemm(SmallGemm::rows(c, dv, c).accumulate(), &b.a, vc, &mut b.o);
        job.finish(
            &b.o[..c * dv],
            &b.den[..c],
            &mut out[t0 * dv..(t0 + c) * dv],
        );
        // State: e^(G_C) S + (K o e^(G_C - G))^T V, and z alike.
        let kd = if gated { &b.kd } else { &b.kc };
        small_gemm(SmallGemm::at_b(d, dv, c), kd, vc, &mut b.t);
        col_sums(&kd[..c * d], d, &mut b.zs);
        state_update(st, dv, &b.t, &b.zs, &b.f);
    }
}

/// Fills qd = Q o e^G, kd = K o e^(G_C - G), the state factors f = e^(G_C) and (scalar gates)
/// the intra-chunk factors D; false when there is no gate.
fn decay_weights<E: GemmElem + Lanes>(
    job: &HeadJob<'_, E>,
    b: &mut Chunk<E>,
    t0: usize,
    c: usize,
    cs: usize,
) -> bool {
    let d = job.d;
    match job.gate {
        Gate::None => false,
        Gate::Head(_) | Gate::Step(_) => {
            let mut acc = 0.0;
            for i in 0..c {
                acc += match job.gate {
                    Gate::Head(g) => g,
                    Gate::Step(g) => g[t0 + i].to_f64(),
                    _ => 0.0,
                };
                b.g[i] = acc;
            }
            let last = b.g[c - 1];
            for i in 0..c {
                let (eq, ek) = (
                    E::from_f64(b.g[i].exp()),
                    E::from_f64((last - b.g[i]).exp()),
                );
                b.qd[i * d..(i + 1) * d]
                    .iter_mut()
                    .zip(&b.qc[i * d..])
                    .for_each(|(x, &y)| *x = y * eq);
                b.kd[i * d..(i + 1) * d]
                    .iter_mut()
                    .zip(&b.kc[i * d..])
                    .for_each(|(x, &y)| *x = y * ek);
                // D_ij = e^(G_i - G_j) as running products of e^(g) (no exponentials per pair).
                let step = (b.g[i] - if i > 0 { b.g[i - 1] } else { 0.0 }).exp();
                b.dmat[i * cs + i] = 1.0;
                for j in 0..i {
                    b.dmat[i * cs + j] = b.dmat[(i - 1) * cs + j] * step;
                }
            }
            b.f.fill(last.exp());
            true
        }
        Gate::Key(g) => {
            for i in 0..c {
                for ch in 0..d {
                    let prev = if i > 0 { b.g[(i - 1) * d + ch] } else { 0.0 };
                    b.g[i * d + ch] = prev + g[(t0 + i) * d + ch].to_f64();
                }
            }
            let (last, n) = ((c - 1) * d, c * d);
            // Exponents formed in f64 (differences of cumulative sums), exponentials in a
            // vector pass of the element type.
            let (t, e) = (&mut b.t_exp[..n], &mut b.e_exp[..n]);
            t.iter_mut()
                .zip(&b.g)
                .for_each(|(t, &g)| *t = E::from_f64(g));
            times_exp(&b.qc[..n], t, e, &mut b.qd[..n]);
            for (i, trow) in t.chunks_exact_mut(d).enumerate() {
                for (ch, x) in trow.iter_mut().enumerate() {
                    *x = E::from_f64(b.g[last + ch] - b.g[i * d + ch]);
                }
            }
            times_exp(&b.kc[..n], t, e, &mut b.kd[..n]);
            for ch in 0..d {
                b.f[ch] = b.g[last + ch].exp();
            }
            true
        }
    }
}

/// out = x o e^t, the exponentials (into `e`) in one vector pass.
fn times_exp<E: GemmElem + Lanes>(x: &[E], t: &[E], e: &mut [E], out: &mut [E]) {
    exp_affine(t, e, E::ONE, E::ZERO);
    for ((o, &x), &e) in out.iter_mut().zip(x).zip(e.iter()) {
        *o = x * e;
    }
}

/// The per-key-gate intra-chunk block A_ij = sum_c q_ic k_jc e^(G_ic - G_jc), j <= i.
fn gla_intra<E: GemmElem + Lanes>(b: &mut Chunk<E>, c: usize, d: usize) {
    b.a[..c * c].fill(E::ZERO);
    let mut qp = vec![E::ZERO; SUB * d];
    let mut kp = vec![E::ZERO; c * d];
    let (t, e) = (&mut b.t_exp, &mut b.e_exp);
    for a0 in (0..c).step_by(SUB) {
        let a1 = (a0 + SUB).min(c);
        if a0 > 0 {
            // Reference point r = a0 - 1: j <= r <= i for every pair below the diagonal blocks.
            let gr = &b.g[(a0 - 1) * d..a0 * d];
            let rows = a1 - a0;
            for (i, trow) in (a0..a1).zip(t.chunks_exact_mut(d)) {
                for (ch, x) in trow.iter_mut().enumerate() {
                    *x = E::from_f64(b.g[i * d + ch] - gr[ch]);
                }
            }
            let n = rows * d;
            times_exp(&b.qc[a0 * d..a1 * d], &t[..n], &mut e[..n], &mut qp[..n]);
            for (j, trow) in t.chunks_exact_mut(d).take(a0).enumerate() {
                for (ch, x) in trow.iter_mut().enumerate() {
                    *x = E::from_f64(gr[ch] - b.g[j * d + ch]);
                }
            }
            let n = a0 * d;
            times_exp(&b.kc[..n], &t[..n], &mut e[..n], &mut kp[..n]);
            let mut blk = vec![E::ZERO; rows * a0];
            gemm_rows(
                E::ZERO,
                &mut blk,
                (rows, a0, d),
                E::ONE,
                &qp,
                false,
                &kp,
                true,
            );
            for (r, src) in blk.chunks_exact(a0).enumerate() {
                b.a[(a0 + r) * c..(a0 + r) * c + a0].copy_from_slice(src);
            }
        }
        // Diagonal sub-block, row by row: k_j o e^(G_i - G_j) for j = a0..=i, then dots with q_i.
        for i in a0..a1 {
            let cnt = i - a0 + 1;
            for (j, trow) in (a0..=i).zip(t.chunks_exact_mut(d)) {
                for (ch, x) in trow.iter_mut().enumerate() {
                    *x = E::from_f64(b.g[i * d + ch] - b.g[j * d + ch]);
                }
            }
            let n = cnt * d;
            times_exp(
                &b.kc[a0 * d..(a0 + cnt) * d],
                &t[..n],
                &mut e[..n],
                &mut kp[..n],
            );
            add_dots(
                &kp[..n],
                &b.qc[i * d..(i + 1) * d],
                &mut b.a[i * c + a0..=i * c + i],
            );
        }
    }
}
