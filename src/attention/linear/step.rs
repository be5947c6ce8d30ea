//! The recurrence itself, one token at a time, for short sequences (a decoding step with a
//! state): S <- diag(exp(g_t)) S + phi(k_t) [v_t 1]^T, o_t = scale phi(q_t)^T S, in f64, one
//! pass over S per token (update and output together).

use super::gates::Gate;
use super::HeadJob;
use crate::linalg::GemmElem;
use crate::simd::{self, dispatch, Kernel, Lanes, Simd};
use crate::softmax::online_tile::{load_upto, store_upto};
use std::mem::MaybeUninit;

/// Runs tokens 0..n of `job` through the recurrence on the f64 state `st` (d x (dv + 1)).
pub(super) fn recurrent<E: GemmElem + Lanes>(
    job: &HeadJob<'_, E>,
    st: &mut [f64],
    out: &mut [MaybeUninit<E>],
) {
    let (d, dv, w) = (job.d, job.dv, job.dv + 1);
    let map = job.opts.feature_map;
    let (mut qe, mut ke) = (vec![E::ZERO; d], vec![E::ZERO; d]);
    let (mut qf, mut kf, mut vp) = (vec![0.0; d], vec![0.0; d], vec![1.0; w]);
    let mut decay = vec![1.0; d];
    let mut o = vec![0.0; w];
    let mut oe = vec![E::ZERO; w];
    for t in 0..job.n {
        map.apply(&job.q[t * d..][..d], &mut qe, d, job.scale);
        map.apply(&job.k[t * d..][..d], &mut ke, d, E::ONE);
        qf.iter_mut().zip(&qe).for_each(|(a, b)| *a = b.to_f64());
        kf.iter_mut().zip(&ke).for_each(|(a, b)| *a = b.to_f64());
        vp[..dv]
            .iter_mut()
            .zip(&job.v[t * dv..][..dv])
            .for_each(|(a, b)| *a = b.to_f64());
        match job.gate {
            Gate::None => {}
            Gate::Head(g) => decay.fill(g.exp()),
            Gate::Step(g) => decay.fill(g[t].to_f64().exp()),
            Gate::Key(g) => decay
                .iter_mut()
                .zip(&g[t * d..][..d])
                .for_each(|(a, b)| *a = b.to_f64().exp()),
        }
        dispatch(
            simd::active(),
            StepRows {
                st: &mut *st,
                w,
                kf: &kf,
                qf: &qf,
                vp: &vp,
                decay: &decay,
                o: &mut o,
            },
        );
        oe.iter_mut()
            .zip(&o)
            .for_each(|(a, &b)| *a = E::from_f64(b));
        job.finish(&oe[..dv], &oe[dv..], &mut out[t * dv..][..dv]);
    }
}

/// One token: every row c of S becomes decay_c S_c + kf_c vp, and o accumulates qf_c S_c.
struct StepRows<'a> {
    st: &'a mut [f64],
    w: usize,
    kf: &'a [f64],
    qf: &'a [f64],
    vp: &'a [f64],
    decay: &'a [f64],
    o: &'a mut [f64],
}

impl Kernel<f64> for StepRows<'_> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = f64>>(self) {
        let (w, lanes) = (self.w, S::LANES);
        self.o.fill(0.0);
        let (po, pv) = (self.o.as_mut_ptr(), self.vp.as_ptr());
        for (c, row) in self.st.chunks_exact_mut(w).enumerate() {
            let (f, kc, qc) = (
                S::splat(self.decay[c]),
                S::splat(self.kf[c]),
                S::splat(self.qf[c]),
            );
            let pr = row.as_mut_ptr();
            let mut j = 0;
            // SAFETY: row, vp and o all hold w elements; every access is below w.
            unsafe {
                while j < w {
                    let k = (w - j).min(lanes);
                    let s = load_upto::<S>(pr.add(j), k, 0.0);
                    let v = load_upto::<S>(pv.add(j), k, 0.0);
                    let s = S::fma(kc, v, S::mul(f, s));
                    store_upto::<S>(pr.add(j), k, s);
                    let acc = S::fma(qc, s, load_upto::<S>(po.add(j), k, 0.0));
                    store_upto::<S>(po.add(j), k, acc);
                    j += k;
                }
            }
        }
    }
}
