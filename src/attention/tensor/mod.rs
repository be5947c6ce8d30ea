//! Tensor (Kronecker, triple-wise) attention (Alman & Song, 2023, "How to capture higher-order
//! correlations: generalizing matrix softmax attention to Kronecker computation"; the
//! 2-simplicial attention of Clift et al. 2019 and Roy et al. 2025): every query attends to
//! pairs of keys,
//!   x_ijl = scale sum_c q_ic k1_jc k2_lc,   out_i = sum_jl softmax_jl(x_i..) (v1_j o v2_l),
//! i.e. D^-1 exp(Q (K1 (x) K2)^T) (V1 (x) V2) with the column-wise Kronecker product.
//!
//! Exact path: for one query, x_i.. = (K1 o q_i) K2^T is a product of a block of K1 rows
//! scaled by q_i with K2^T (laid out once per call), so the pairs stream through in tiles with
//! one running max per query (the online softmax), and sum_jl p_jl v1_j o v2_l =
//! sum_j v1_j o (P V2)_j: a second product per tile, never the n s^2 score tensor or an
//! s^2 x d Kronecker matrix. Memory O(tile + n d). Causal with windows (w1, w2) restricts the
//! pairs to a w1 x w2 rectangle per query: cost O(n w1 w2 d).
//!
//! `poly`: the polynomial method (degree g Taylor expansion of exp), O(n d^g dv).

mod poly;

use super::heads::{check_finite, qkv_shape_named, Contig, HeadShape, Output};
use super::overflow;
use crate::error::{Error, Result};
use crate::linalg::{small_gemm, GemmElem, SmallGemm};
use crate::simd::{self, Lanes};
use crate::softmax::online_tile::online_weights_with;
use ndarray::{ArrayD, ArrayViewD};
use std::mem::MaybeUninit;

/// Rows of K1 per tile and columns (keys of K2) per tile: a 64 x 256 score tile (64 KiB in
/// f32) with its K1 and K2 blocks stays in L2 on every machine kind.
const JB: usize = 64;
const LB: usize = 256;
/// Queries per task.
const QB: usize = 8;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TensorOptions {
    /// Multiplies the triple product; None is d^-0.5.
    pub scale: Option<f64>,
    /// Taylor degree of the polynomial approximation; None is exact.
    pub degree: Option<usize>,
    pub causal: bool,
    /// Sliding windows over k1 and k2 (imply the causal bound).
    pub windows: Option<(usize, usize)>,
}

/// The inputs of one call, every head's.
pub struct TensorInputs<'a, E> {
    pub q: ArrayViewD<'a, E>,
    pub k1: ArrayViewD<'a, E>,
    pub k2: ArrayViewD<'a, E>,
    pub v1: ArrayViewD<'a, E>,
    pub v2: ArrayViewD<'a, E>,
}

/// Tensor attention: out (..., n, dv) for q (..., n, d), k1 (..., s1, d), k2 (..., s2, d),
/// v1 (..., s1, dv), v2 (..., s2, dv); grouped heads as softmax_attention.
pub fn tensor_attention<E: GemmElem + Lanes>(
    x: TensorInputs<'_, E>,
    opts: &TensorOptions,
) -> Result<ArrayD<E>> {
    const F: &str = "tensor_attention";
    let hs = qkv_shape_named(
        F,
        ["q", "k1", "v1"],
        x.q.shape(),
        x.k1.shape(),
        x.v1.shape(),
    )?;
    let (k1s, k2s, v2s) = (x.k1.shape(), x.k2.shape(), x.v2.shape());
    let nd = k1s.len();
    if k2s.len() != nd
        || v2s.len() != nd
        || k2s[..nd - 2] != k1s[..nd - 2]
        || v2s[..nd - 2] != k1s[..nd - 2]
    {
        return Err(Error::Invalid(format!(
            "{F}: k2 (..., s2, d) and v2 (..., s2, dv) must have k1's batch dims, got k1 {k1s:?}, k2 {k2s:?}, v2 {v2s:?}"
        )));
    }
    let s2 = k2s[nd - 2];
    if k2s[nd - 1] != hs.d || v2s[nd - 2] != s2 || v2s[nd - 1] != hs.dv {
        return Err(Error::Invalid(format!(
            "{F}: k2 must be (..., s2, d = {}) and v2 (..., s2, dv = {}), got k2 {k2s:?}, v2 {v2s:?}",
            hs.d, hs.dv
        )));
    }
    let scale = opts.scale.unwrap_or(1.0 / (hs.d as f64).sqrt());
    if !scale.is_finite() {
        return Err(Error::Invalid(format!(
            "{F}: scale must be finite, got {scale}"
        )));
    }
    let bounded = opts.causal || opts.windows.is_some();
    if let Some((w1, w2)) = opts.windows {
        if w1 == 0 || w2 == 0 {
            return Err(Error::Invalid(format!(
                "{F}: windows must be >= 1, got ({w1}, {w2})"
            )));
        }
    }
    if bounded && s2 != hs.s {
        return Err(Error::Invalid(format!(
            "{F}: causal needs k1 and k2 of one length, got s1 = {}, s2 = {s2}",
            hs.s
        )));
    }
    let qshape = x.q.shape().to_vec();
    let c: Vec<Contig<'_, E>> = [x.q, x.k1, x.k2, x.v1, x.v2]
        .into_iter()
        .map(Contig::new)
        .collect();
    for (what, ci) in ["q", "k1", "k2", "v1", "v2"].iter().zip(&c) {
        check_finite(F, what, ci.slice())?;
    }
    // Scores the dtype cannot hold have no computable softmax: refused up front (a pass over
    // the inputs, small beside the O(n s1 s2 d) products).
    let bound = overflow::score_bound(scale, hs.d, &[c[0].slice(), c[1].slice(), c[2].slice()]);
    if overflow::may_overflow::<E>(bound) {
        return Err(overflow::overflow_error::<E>(
            F,
            ("scale * sum_c q_c k1_c k2_c", "q, k1 and k2"),
            bound,
        ));
    }
    let heads = Heads {
        q: c[0].slice(),
        k1: c[1].slice(),
        k2: c[2].slice(),
        v1: c[3].slice(),
        v2: c[4].slice(),
        hs,
        s2,
        scale,
    };
    let mut out = Output::<E>::new(F, hs.heads() * hs.n * hs.dv)?;
    if let Some(g) = opts.degree {
        if bounded {
            return Err(Error::Invalid(format!(
                "{F}: degree (the polynomial approximation) is non-causal; pass causal=False and no windows"
            )));
        }
        poly::run(F, &heads, g, out.uninit())?;
    } else {
        let vis = Visible {
            off: hs.s as isize - hs.n as isize,
            bounded,
            windows: opts.windows,
            s1: hs.s,
            s2,
        };
        exact(&heads, vis, out.uninit());
    }
    // SAFETY: every path wrote all n x dv outputs of every head.
    unsafe { out.assume_init(&HeadShape::out_shape(&qshape, hs.dv)) }
}

/// Every head's inputs, contiguous.
pub(super) struct Heads<'a, E> {
    pub q: &'a [E],
    pub k1: &'a [E],
    pub k2: &'a [E],
    pub v1: &'a [E],
    pub v2: &'a [E],
    pub hs: HeadShape,
    pub s2: usize,
    pub scale: f64,
}

impl<'a, E> Heads<'a, E> {
    /// Query head h's q rows and its k/v head's k1, k2, v1, v2.
    pub fn head(&self, h: usize) -> [&'a [E]; 5] {
        let (hs, kv) = (self.hs, self.hs.kv_head(h));
        let (n, s1, s2, d, dv) = (hs.n, hs.s, self.s2, hs.d, hs.dv);
        [
            &self.q[h * n * d..][..n * d],
            &self.k1[kv * s1 * d..][..s1 * d],
            &self.k2[kv * s2 * d..][..s2 * d],
            &self.v1[kv * s1 * dv..][..s1 * dv],
            &self.v2[kv * s2 * dv..][..s2 * dv],
        ]
    }
}

/// The key ranges a query sees: all pairs, or j, l <= i + off with the windows.
#[derive(Clone, Copy)]
struct Visible {
    off: isize,
    bounded: bool,
    windows: Option<(usize, usize)>,
    s1: usize,
    s2: usize,
}

impl Visible {
    /// ([j0, j1), [l0, l1)) for query i.
    fn ranges(&self, i: usize) -> ((usize, usize), (usize, usize)) {
        if !self.bounded {
            return ((0, self.s1), (0, self.s2));
        }
        let top = i as isize + self.off + 1;
        let clamp = |x: isize, s: usize| x.clamp(0, s as isize) as usize;
        let (w1, w2) = self.windows.map_or((usize::MAX, usize::MAX), |w| w);
        let lo =
            |w: usize, s: usize| clamp(top.saturating_sub(w.min(isize::MAX as usize) as isize), s);
        (
            (lo(w1, self.s1), clamp(top, self.s1)),
            (lo(w2, self.s2), clamp(top, self.s2)),
        )
    }
}

#[derive(Default)]
struct Scratch<E> {
    a: Vec<E>,
    t: Vec<E>,
    u: Vec<E>,
    o: Vec<f64>,
}

/// The exact path: tasks of QB queries of one head.
fn exact<E: GemmElem + Lanes>(x: &Heads<'_, E>, vis: Visible, out: &mut [MaybeUninit<E>]) {
    let (hs, s2, d, dv) = (x.hs, x.s2, x.hs.d, x.hs.dv);
    // K2^T per k/v head (d x s2), once per call: the B of every score tile.
    let kvh = hs.outer * hs.hkv;
    let mut k2t = vec![E::ZERO; kvh * d * s2];
    for (src, dst) in
        x.k2.chunks_exact((s2 * d).max(1))
            .zip(k2t.chunks_exact_mut((s2 * d).max(1)))
    {
        for (l, row) in src.chunks_exact(d).enumerate() {
            for (c, &y) in row.iter().enumerate() {
                dst[c * s2 + l] = y;
            }
        }
    }
    let isa = simd::active();
    let per_head = hs.n * dv;
    if per_head == 0 {
        return;
    }
    let tasks: Vec<_> = out
        .chunks_mut(per_head)
        .enumerate()
        .flat_map(|(h, o)| {
            o.chunks_mut(QB * dv)
                .enumerate()
                .map(move |(b, ob)| (h, b * QB, ob))
        })
        .collect();
    let run = |sc: &mut Scratch<E>, (h, i0, ob): (usize, usize, &mut [MaybeUninit<E>])| {
        let [q, k1, _, v1, v2] = x.head(h);
        let kv = hs.kv_head(h);
        let k2t = &k2t[kv * d * s2..][..d * s2];
        for (r, dst) in ob.chunks_exact_mut(dv).enumerate() {
            let i = i0 + r;
            let qi = &q[i * d..(i + 1) * d];
            let (jr, lr) = vis.ranges(i);
            query(
                sc,
                isa,
                [qi, k1, k2t, v1, v2],
                (jr, lr),
                (s2, d, dv),
                x.scale,
            );
            let l = sc.o[dv];
            for (y, &o) in dst.iter_mut().zip(&sc.o[..dv]) {
                y.write(E::from_f64(if l > 0.0 { o / l } else { 0.0 }));
            }
        }
    };
    crate::threads::map_tasks(tasks, Scratch::default, run);
}

/// One query's numerator (sc.o[..dv]) and denominator (sc.o[dv]) over the pairs in jr x lr,
/// relative to the running max.
fn query<E: GemmElem + Lanes>(
    sc: &mut Scratch<E>,
    isa: simd::Isa,
    [qi, k1, k2t, v1, v2]: [&[E]; 5],
    ((j0, j1), (l0, l1)): ((usize, usize), (usize, usize)),
    (s2, d, dv): (usize, usize, usize),
    scale: f64,
) {
    sc.o.clear();
    sc.o.resize(dv + 1, 0.0);
    let mut m = f64::NEG_INFINITY;
    sc.a.resize(JB * d, E::ZERO);
    sc.t.resize(JB * LB, E::ZERO);
    sc.u.resize(JB * dv, E::ZERO);
    let qs: Vec<E> = qi.iter().map(|&y| y * E::from_f64(scale)).collect();
    for jb in (j0..j1).step_by(JB) {
        let nj = JB.min(j1 - jb);
        for (arow, krow) in
            sc.a.chunks_exact_mut(d)
                .zip(k1[jb * d..(jb + nj) * d].chunks_exact(d))
        {
            for ((a, &k), &qv) in arow.iter_mut().zip(krow).zip(&qs) {
                *a = k * qv;
            }
        }
        for lb in (l0..l1).step_by(LB) {
            let nl = LB.min(l1 - lb);
            let t = &mut sc.t[..nj * nl];
            let g = SmallGemm {
                m: nj,
                n: nl,
                k: d,
                ars: d,
                acs: 1,
                ldb: s2,
                ldc: nl,
                accumulate: false,
            };
            small_gemm(g, &sc.a, &k2t[lb..], t);
            let (m_new, sum) = online_weights_with(isa, t, m);
            if m_new > m && m > f64::NEG_INFINITY {
                let f = (m - m_new).exp();
                sc.o.iter_mut().for_each(|y| *y *= f);
            }
            m = m_new;
            sc.o[dv] += sum;
            let u = &mut sc.u[..nj * dv];
            small_gemm(
                SmallGemm::rows(nj, dv, nl),
                t,
                &v2[lb * dv..(lb + nl) * dv],
                u,
            );
            for (urow, vrow) in u
                .chunks_exact(dv)
                .zip(v1[jb * dv..(jb + nj) * dv].chunks_exact(dv))
            {
                for ((o, &uu), &vv) in sc.o.iter_mut().zip(urow).zip(vrow) {
                    *o += (uu * vv).to_f64();
                }
            }
        }
    }
}
