//! The recurrence itself, one token at a time, for short sequences (a decoding step with a
//! state): S <- diag(exp(g_t)) S + phi(k_t) [v_t 1]^T, o_t = scale phi(q_t)^T S, in the
//! element type, one pass over S per token (update and output together).

use super::gates::Gate;
use super::HeadJob;
use crate::linalg::GemmElem;
use crate::simd::{self, dispatch, Kernel, Lanes, Simd};
use crate::softmax::online_tile::{load_upto, store_upto};
use std::mem::MaybeUninit;

/// Runs tokens 0..n of `job` through the recurrence on the state `st` (d x (dv + 1)).
pub(super) fn recurrent<E: GemmElem + Lanes>(
    job: &HeadJob<'_, E>,
    st: &mut [E],
    out: &mut [MaybeUninit<E>],
) {
    let (d, dv, w) = (job.d, job.dv, job.dv + 1);
    let map = job.opts.feature_map;
    let (mut qf, mut kf, mut vp) = (vec![E::ZERO; d], vec![E::ZERO; d], vec![E::ONE; w]);
    let mut decay = vec![E::ONE; d];
    let mut o = vec![E::ZERO; w];
    for t in 0..job.n {
        map.apply(&job.q[t * d..][..d], &mut qf, d, job.scale);
        map.apply(&job.k[t * d..][..d], &mut kf, d, E::ONE);
        vp[..dv].copy_from_slice(&job.v[t * dv..][..dv]);
        match job.gate {
            Gate::None => {}
            Gate::Head(g) => decay.fill(E::from_f64(g.exp())),
            Gate::Step(g) => decay.fill(E::from_f64(g[t].to_f64().exp())),
            Gate::Key(g) => decay
                .iter_mut()
                .zip(&g[t * d..][..d])
                .for_each(|(a, b)| *a = E::from_f64(b.to_f64().exp())),
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
        job.finish(&o[..dv], &o[dv..], &mut out[t * dv..][..dv]);
    }
}

/// One token: every row c of S becomes decay_c S_c + kf_c vp, and o accumulates qf_c S_c.
struct StepRows<'a, E> {
    st: &'a mut [E],
    w: usize,
    kf: &'a [E],
    qf: &'a [E],
    vp: &'a [E],
    decay: &'a [E],
    o: &'a mut [E],
}

impl<E: Lanes> Kernel<E> for StepRows<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        let (w, lanes) = (self.w, S::LANES);
        self.o.fill(E::ZERO);
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
                    let s = load_upto::<S>(pr.add(j), k, E::ZERO);
                    let v = load_upto::<S>(pv.add(j), k, E::ZERO);
                    let s = S::fma(kc, v, S::mul(f, s));
                    store_upto::<S>(pr.add(j), k, s);
                    let acc = S::fma(qc, s, load_upto::<S>(po.add(j), k, E::ZERO));
                    store_upto::<S>(po.add(j), k, acc);
                    j += k;
                }
            }
        }
    }
}
