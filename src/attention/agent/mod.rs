//! Agent attention (Han et al., 2024, "Agent attention: on the integration of softmax and
//! linear attention", LeapLabTHU/Agent-Attention): na agent tokens A (pooled from q unless
//! given) attend to the keys, V_A = softmax(s A K^T + B1) V, then the queries attend to the
//! agents, out = softmax(s Q A^T + B2) V_A. Both score matrices are na x s and n x na (never
//! n x s). The agents' softmax over keys is taken down the columns of K At (s x na), so
//! neither K nor the scores are ever transposed; each product is the crate's small
//! register-blocked kernel.

mod pool;
mod softmax;

use super::heads::{check_finite, qkv_shape, Contig, HeadShape, Output};
use super::overflow;
use crate::error::{Error, Result};
use crate::linalg::{small_gemm, GemmElem, SmallGemm};
use crate::simd::{self, dispatch, Lanes};
use ndarray::{ArrayD, ArrayViewD};
pub use pool::agent_pool;
use pool::Bias;
use softmax::{SoftmaxCols, SoftmaxRows};
use std::mem::MaybeUninit;

/// Query rows per block of the second softmax.
const QUERY_BLOCK: usize = 256;

#[derive(Clone, Debug, Default)]
pub struct AgentOptions<'a, E> {
    /// (..., na, d) agent tokens; None pools q.
    pub agents: Option<ArrayViewD<'a, E>>,
    pub num_agents: usize,
    /// The token grid (h, w) of q for the official 2-D pooling.
    pub grid: Option<(usize, usize)>,
    /// None is d^-0.5.
    pub scale: Option<f64>,
    /// Added to s A K^T, broadcastable to (..., na, s).
    pub agent_bias: Option<ArrayViewD<'a, E>>,
    /// Added to s Q A^T, broadcastable to (..., n, na).
    pub query_bias: Option<ArrayViewD<'a, E>>,
}

/// Agent attention over q (..., n, d), k (..., s, d), v (..., s, dv) (grouped heads allowed):
/// out (..., n, dv).
pub fn agent_attention<E: GemmElem + Lanes>(
    q: ArrayViewD<'_, E>,
    k: ArrayViewD<'_, E>,
    v: ArrayViewD<'_, E>,
    opts: &AgentOptions<'_, E>,
) -> Result<ArrayD<E>> {
    const F: &str = "agent_attention";
    let hs = qkv_shape(F, q.shape(), k.shape(), v.shape())?;
    let scale = opts.scale.unwrap_or(1.0 / (hs.d as f64).sqrt());
    if !scale.is_finite() {
        return Err(Error::Invalid(format!(
            "{F}: scale must be finite, got {scale}"
        )));
    }
    let nd = q.ndim();
    let batch = &q.shape()[..nd - 2];
    let pooled;
    let agents = match &opts.agents {
        Some(a) => {
            if a.ndim() < 2 || a.shape()[a.ndim() - 2] == 0 {
                return Err(Error::Invalid(format!(
                    "{F}: agents must be (..., na, d) with na >= 1, got shape {:?}",
                    a.shape()
                )));
            }
            let mut want = batch.to_vec();
            let na = a.shape()[a.ndim() - 2];
            want.extend([na, hs.d]);
            a.broadcast(want.clone()).ok_or_else(|| {
                Error::Invalid(format!(
                    "{F}: agents of shape {:?} do not broadcast to (..., na, d) = {want:?}",
                    a.shape()
                ))
            })?
        }
        None => {
            if hs.n == 0 {
                return Err(Error::Invalid(format!(
                    "{F}: pooling agents from q needs n >= 1 (or pass agents)"
                )));
            }
            pooled = agent_pool(q.view(), opts.num_agents, opts.grid)
                .map_err(|e| Error::Invalid(e.to_string().replace("agent_pool", F)))?;
            pooled.view()
        }
    };
    let na = agents.shape()[nd - 2];
    if na == 0 {
        return Err(Error::Invalid(format!(
            "{F}: agents holds no agents (na = 0)"
        )));
    }
    let full = |r: usize, c: usize| {
        let mut s = batch.to_vec();
        s.extend([r, c]);
        s
    };
    let b1 = opts
        .agent_bias
        .as_ref()
        .map(|b| Bias::new(F, "agent_bias", b, &full(na, hs.s)))
        .transpose()?;
    let b2 = opts
        .query_bias
        .as_ref()
        .map(|b| Bias::new(F, "query_bias", b, &full(hs.n, na)))
        .transpose()?;
    let (qc, kc, vc) = (Contig::new(q.view()), Contig::new(k), Contig::new(v));
    let ac = Contig::new(agents);
    for (what, x) in [
        ("q", qc.slice()),
        ("k", kc.slice()),
        ("v", vc.slice()),
        ("agents", ac.slice()),
    ] {
        check_finite(F, what, x)?;
    }
    // Scores the dtype cannot hold (s a.k or s q.a, plus a bias) have no computable softmax:
    // refused up front (a pass over the inputs, small beside the products).
    let bias_max = [&b1, &b2]
        .iter()
        .map(|b| b.as_ref().map_or(0.0, |b| b.max_abs()))
        .sum::<f64>();
    let qk_max = overflow::max_abs(qc.slice()).max(overflow::max_abs(kc.slice()));
    let bound = overflow::score_bound(scale, hs.d, &[ac.slice()]) * qk_max + bias_max;
    if overflow::may_overflow::<E>(bound) {
        return Err(overflow::overflow_error::<E>(
            F,
            (
                "scale * a.k or scale * q.a (plus the biases)",
                "q, k and agents",
            ),
            bound,
        ));
    }
    let heads = hs.heads();
    let mut out = Output::<E>::new(F, heads * hs.n * hs.dv)?;
    let tasks: Vec<_> = if hs.n * hs.dv == 0 {
        Vec::new()
    } else {
        out.uninit().chunks_mut(hs.n * hs.dv).enumerate().collect()
    };
    let (qs, ks, vs, as_) = (qc.slice(), kc.slice(), vc.slice(), ac.slice());
    let isa = simd::active();
    let run = |_: &mut (), (h, o): (usize, &mut [MaybeUninit<E>])| {
        let (q, k, v) = hs.head_slices(h, (qs, ks, vs));
        let head = AgentHead {
            q,
            k,
            v,
            a: &as_[h * na * hs.d..][..na * hs.d],
            na,
            hs,
            scale: E::from_f64(scale),
            isa,
        };
        head.run(h, b1.as_ref(), b2.as_ref(), o)
    };
    let results = crate::threads::map_tasks(tasks, || (), run);
    results.into_iter().collect::<Result<()>>()?;
    // SAFETY: every head task wrote its n x dv outputs.
    unsafe { out.assume_init(&HeadShape::out_shape(q.shape(), hs.dv)) }
}

struct AgentHead<'a, E> {
    q: &'a [E],
    k: &'a [E],
    v: &'a [E],
    a: &'a [E],
    na: usize,
    hs: HeadShape,
    scale: E,
    isa: simd::Isa,
}

impl<E: GemmElem + Lanes> AgentHead<'_, E> {
    fn run(
        &self,
        h: usize,
        b1: Option<&Bias<'_, E>>,
        b2: Option<&Bias<'_, E>>,
        out: &mut [MaybeUninit<E>],
    ) -> Result<()> {
        let (na, s, n, d, dv) = (self.na, self.hs.s, self.hs.n, self.hs.d, self.hs.dv);
        // At = s A^T (d x na): the B of both score products.
        let mut at = vec![E::ZERO; d * na];
        for (i, row) in self.a.chunks_exact(d).enumerate() {
            for (c, &x) in row.iter().enumerate() {
                at[c * na + i] = x * self.scale;
            }
        }
        // Agents attend to the keys: S1^T (s x na) = K At, + B1^T, the softmax of each agent
        // down its column; V_A = P1 V = (S1^T)^T V / column sums.
        let mut va = vec![E::ZERO; na * dv];
        if s > 0 {
            let mut s1t = vec![E::ZERO; s * na];
            small_gemm(SmallGemm::rows(s, na, d), self.k, &at, &mut s1t);
            if let Some(b) = b1 {
                b.add_transposed(h, &mut s1t, s, na)?;
            }
            let mut sums = vec![E::ZERO; na];
            dispatch(
                self.isa,
                SoftmaxCols {
                    x: &mut s1t,
                    cols: na,
                    sums: &mut sums,
                },
            );
            small_gemm(SmallGemm::at_b(na, dv, s), &s1t, self.v, &mut va);
            for (row, &t) in va.chunks_exact_mut(dv).zip(&sums) {
                let inv = if t > E::ZERO { E::ONE / t } else { E::ZERO };
                row.iter_mut().for_each(|y| *y = *y * inv);
            }
        }
        // Queries attend to the agents, a block of rows at a time.
        let mut s2 = vec![E::ZERO; QUERY_BLOCK * na];
        let mut o = vec![E::ZERO; QUERY_BLOCK * dv];
        for r0 in (0..n).step_by(QUERY_BLOCK) {
            let b = QUERY_BLOCK.min(n - r0);
            let sc = &mut s2[..b * na];
            small_gemm(
                SmallGemm::rows(b, na, d),
                &self.q[r0 * d..(r0 + b) * d],
                &at,
                sc,
            );
            if let Some(bias) = b2 {
                bias.add(h, r0, sc, na)?;
            }
            dispatch(self.isa, SoftmaxRows { x: sc, cols: na });
            small_gemm(SmallGemm::rows(b, dv, na), sc, &va, &mut o[..b * dv]);
            for (dst, &x) in out[r0 * dv..(r0 + b) * dv].iter_mut().zip(&o[..b * dv]) {
                dst.write(x);
            }
        }
        Ok(())
    }
}
