//! The recurrence itself, one token at a time, for short sequences (a decoding step with a
//! state): S <- diag(exp(g_t)) S + phi(k_t) v_t^T, z <- exp(g_t) z + phi(k_t),
//! o_t = s phi(q_t)^T S / (s phi(q_t) . z + eps), in the element type (the state is in the dtype
//! between calls anyway). The first token reads the caller's state and writes the output state;
//! later tokens update it in place: one pass over S per token, and for a decoding step one pass
//! in all (the finiteness check of the incoming state rides along).

use super::gates::Gate;
use super::HeadJob;
use crate::linalg::GemmElem;
use crate::simd::{self, dispatch, Kernel, Lanes, Simd};
use crate::softmax::online_tile::{load_upto, store_upto};
use std::mem::MaybeUninit;

/// The incoming state of one head: S (d x dv) and z (d), each optional (zeros).
pub(super) type StateSlices<'a, E> = Option<(&'a [E], Option<&'a [E]>)>;

/// Runs tokens 0..n of `job` from the state `init` into `s_out` (d x dv) and `z_out` (d).
/// Returns false when the incoming state holds NaN or infinity.
pub(super) fn recurrent<E: GemmElem + Lanes>(
    job: &HeadJob<'_, E>,
    init: StateSlices<'_, E>,
    out: &mut [MaybeUninit<E>],
    s_out: &mut [MaybeUninit<E>],
    z_out: &mut [MaybeUninit<E>],
) -> bool {
    let (d, dv) = (job.d, job.dv);
    let (s_in, z_in) = match init {
        Some((s, z)) => (Some(s), z),
        None => (None, None),
    };
    let (ps, pz) = (
        s_out.as_mut_ptr().cast::<E>(),
        z_out.as_mut_ptr().cast::<E>(),
    );
    if job.n == 0 {
        let finite =
            s_in.is_none_or(crate::simd::all_finite) && z_in.is_none_or(crate::simd::all_finite);
        for (i, x) in s_out.iter_mut().enumerate() {
            x.write(s_in.map_or(E::ZERO, |s| s[i]));
        }
        for (i, x) in z_out.iter_mut().enumerate() {
            x.write(z_in.map_or(E::ZERO, |z| z[i]));
        }
        return finite;
    }
    let (mut qf, mut kf) = (vec![E::ZERO; d], vec![E::ZERO; d]);
    let mut decay = vec![E::ONE; d];
    let mut o = vec![E::ZERO; dv + 1];
    let mut finite = true;
    for t in 0..job.n {
        job.phi_q(&job.q[t * d..][..d], &mut qf);
        job.phi_k(&job.k[t * d..][..d], &mut kf);
        match job.gate {
            Gate::None => {}
            Gate::Head(g) => decay.fill(E::from_f64(g.exp())),
            Gate::Step(g) => decay.fill(E::from_f64(g[t].to_f64().exp())),
            Gate::Key(g) => decay
                .iter_mut()
                .zip(&g[t * d..][..d])
                .for_each(|(a, b)| *a = E::from_f64(b.to_f64().exp())),
        }
        // Token 0 reads the caller's state (or zeros); later tokens the output, in place.
        let (src_s, src_z) = if t == 0 {
            (s_in.map(<[E]>::as_ptr), z_in.map(<[E]>::as_ptr))
        } else {
            (Some(ps.cast_const()), Some(pz.cast_const()))
        };
        let ok = dispatch(
            simd::active(),
            StepRows {
                src_s,
                src_z,
                dst_s: ps,
                dst_z: pz,
                d,
                v: &job.v[t * dv..][..dv],
                kf: &kf,
                qf: &qf,
                decay: &decay,
                o: &mut o,
            },
        );
        finite &= ok || t > 0;
        job.finish(&o[..dv], &o[dv..], &mut out[t * dv..][..dv]);
    }
    finite
}

/// One token: every row c of S becomes decay_c S_c + kf_c v (from `src` into `dst`, which may
/// be the same rows), z_c likewise with 1 for v; o accumulates qf_c S_c and, last, qf . z.
/// Returns whether every element read from `src` was finite.
struct StepRows<'a, E> {
    src_s: Option<*const E>,
    src_z: Option<*const E>,
    dst_s: *mut E,
    dst_z: *mut E,
    d: usize,
    v: &'a [E],
    kf: &'a [E],
    qf: &'a [E],
    decay: &'a [E],
    o: &'a mut [E],
}

impl<E: Lanes> Kernel<E> for StepRows<'_, E> {
    type Output = bool;
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) -> bool {
        let (dv, lanes) = (self.v.len(), S::LANES);
        let zero = S::splat(E::ZERO);
        self.o.fill(E::ZERO);
        let (po, pv) = (self.o.as_mut_ptr(), self.v.as_ptr());
        // 0 * x is 0 for finite x and NaN otherwise (as `simd::all_finite`).
        let mut check = zero;
        let mut zcheck = E::ZERO;
        let mut den = E::ZERO;
        for c in 0..self.d {
            let (f, kc, qc) = (
                S::splat(self.decay[c]),
                S::splat(self.kf[c]),
                S::splat(self.qf[c]),
            );
            // SAFETY: src and dst hold d x dv (S) and d (z) elements, v and o dv and dv + 1;
            // every access below stays inside row c or element c. Each vector of dst is
            // written after the same vector of src was read, so src = dst is fine.
            unsafe {
                let dst = self.dst_s.add(c * dv);
                let src = self.src_s.map(|p| p.add(c * dv));
                let mut j = 0;
                while j < dv {
                    let k = (dv - j).min(lanes);
                    let old = match src {
                        Some(p) => load_upto::<S>(p.add(j), k, E::ZERO),
                        None => zero,
                    };
                    check = S::fma(old, zero, check);
                    let s = S::fma(kc, load_upto::<S>(pv.add(j), k, E::ZERO), S::mul(f, old));
                    store_upto::<S>(dst.add(j), k, s);
                    let acc = S::fma(qc, s, load_upto::<S>(po.add(j), k, E::ZERO));
                    store_upto::<S>(po.add(j), k, acc);
                    j += k;
                }
                let zold = self.src_z.map_or(E::ZERO, |p| *p.add(c));
                zcheck = zcheck + zold * E::ZERO;
                let z = self.decay[c] * zold + self.kf[c];
                *self.dst_z.add(c) = z;
                den = den + self.qf[c] * z;
            }
        }
        self.o[dv] = den;
        zcheck == E::ZERO && S::reduce_add(check) == E::ZERO
    }
}
