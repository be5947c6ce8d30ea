//! Linear attention (Katharopoulos et al., 2020) and its decayed recurrences (RetNet, simple
//! GLA / Mamba-2 scalar gates, GLA per-key gates: the dynamical-systems view
//! S_t = exp(g_t) S_{t-1} + phi(k_t) v_t^T, out_t = phi(q_t) S_t / (phi(q_t) . z_t + eps)).
//!
//! - non-causal: phi(K)^T [V 1] first (d x (dv + 1): the normaliser z is the extra column),
//!   then phi(Q) times it: O(n d dv).
//! - causal: the chunk form of flash-linear-attention (`chunk_simple_gla`, `chunk_gla`): inside
//!   a chunk a masked, decayed phi(Q) phi(K)^T block times [V 1]; across chunks a carried state.
//! - short sequences (a decoding step with a state): the recurrence itself, no chunk overhead.
//!
//! The chunk forms accumulate the state in f64 whatever the input dtype (one conversion per chunk, d (dv+1)
//! elements, against C d (dv + 1) products), so long f32 sequences do not drift.

mod chunk;
mod dots;
mod gates;
mod global;
mod inline_rala;
mod step;

pub use inline_rala::{inline_attention, rala_attention};

use super::feature::FeatureMap;
use super::heads::{check_finite, qkv_shape, Contig, HeadShape, Output};
use crate::error::{Error, Result};
use crate::linalg::GemmElem;
use crate::simd::{Elem, Lanes};
use gates::Gate;
use ndarray::{ArrayD, ArrayViewD};
use std::cell::Cell;
use std::mem::MaybeUninit;

/// Sequences at most this long run the recurrence instead of chunks (decoding steps).
const STEP_MAX: usize = 8;

/// Log-decays g <= 0: one per head (...,), per step (..., n) or per step and key dim (..., n, d).
pub type Decay<'a, E> = Option<ArrayViewD<'a, E>>;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearOptions {
    pub feature_map: FeatureMap,
    pub causal: bool,
    pub normalize: bool,
    /// Multiplies q.k (applied to phi(q)); None is 1.
    pub scale: Option<f64>,
    pub eps: f64,
    pub chunk_size: usize,
}

impl Default for LinearOptions {
    fn default() -> Self {
        LinearOptions {
            feature_map: FeatureMap::Elu1,
            causal: false,
            normalize: true,
            scale: None,
            eps: 1e-6,
            chunk_size: 64,
        }
    }
}

/// A state (S (..., d, dv), z (..., d)) over q's heads.
pub struct LinearState<E> {
    pub s: ArrayD<E>,
    pub z: ArrayD<E>,
}

/// One head's inputs and options.
pub(super) struct HeadJob<'a, E> {
    pub q: &'a [E],
    pub k: &'a [E],
    pub v: &'a [E],
    pub gate: Gate<'a, E>,
    pub n: usize,
    pub s: usize,
    pub d: usize,
    pub dv: usize,
    pub opts: LinearOptions,
    pub scale: E,
    /// Whether every element of q and of k the maps saw was finite (checked in their pass),
    /// and of v where a pass checks it block by block (`check_v`).
    pub q_finite: Cell<bool>,
    pub k_finite: Cell<bool>,
    pub v_finite: Cell<bool>,
}

impl<'a, E: GemmElem + Lanes> HeadJob<'a, E> {
    /// Query head h's job over contiguous q, k, v.
    pub fn new(
        hs: &HeadShape,
        h: usize,
        qkv: (&'a [E], &'a [E], &'a [E]),
        gate: Gate<'a, E>,
        opts: LinearOptions,
        scale: E,
    ) -> Self {
        let (q, k, v) = hs.head_slices(h, qkv);
        HeadJob {
            q,
            k,
            v,
            gate,
            n: hs.n,
            s: hs.s,
            d: hs.d,
            dv: hs.dv,
            opts,
            scale,
            q_finite: Cell::new(true),
            k_finite: Cell::new(true),
            v_finite: Cell::new(true),
        }
    }

    /// ValueError (from `func`) when the maps met NaN or infinity in q or k.
    pub fn inputs_finite(&self, func: &str) -> Result<()> {
        let flags = [
            (self.q_finite.get(), "q"),
            (self.k_finite.get(), "k"),
            (self.v_finite.get(), "v"),
        ];
        for (ok, what) in flags {
            if !ok {
                return Err(Error::Invalid(format!(
                    "{func}: {what} contains NaN or infinity"
                )));
            }
        }
        Ok(())
    }

    /// y = s phi(x) for rows of q, noting whether they were finite.
    pub fn phi_q(&self, x: &[E], y: &mut [E]) {
        let ok = self.opts.feature_map.apply(x, y, self.d, self.scale);
        self.q_finite.set(self.q_finite.get() && ok);
    }

    /// y = phi(x) for rows of k, noting whether they were finite.
    pub fn phi_k(&self, x: &[E], y: &mut [E]) {
        let ok = self.opts.feature_map.apply(x, y, self.d, E::ONE);
        self.k_finite.set(self.k_finite.get() && ok);
    }

    /// Notes whether a block of v is finite (the non-causal pass checks v block by block,
    /// just before its product reads the block, instead of in a separate pass over all of v).
    pub fn check_v(&self, v: &[E]) {
        let ok = crate::simd::all_finite(v);
        self.v_finite.set(self.v_finite.get() && ok);
    }

    /// Writes out = O / (den + eps) (or O) for rows of O of dv elements.
    pub fn finish(&self, o: &[E], den: &[E], out: &mut [MaybeUninit<E>]) {
        let eps = E::from_f64(self.opts.eps);
        let normalize = self.opts.normalize;
        let inv = |dn: E| {
            if normalize {
                E::ONE / (dn + eps)
            } else {
                E::ONE
            }
        };
        dots::scale_rows_into(o, den, inv, self.dv, out);
    }
}

/// The state rows (d rows of dv + 1: S's row, then z) from the initial S and z, or zeros.
fn load_state<A: Elem, E: Elem>(
    st: &mut Vec<A>,
    init: Option<(&[E], Option<&[E]>)>,
    d: usize,
    dv: usize,
) {
    st.clear();
    st.resize(d * (dv + 1), A::ZERO);
    let Some((s0, z0)) = init else { return };
    for (c, row) in st.chunks_exact_mut(dv + 1).enumerate() {
        row[..dv]
            .iter_mut()
            .zip(&s0[c * dv..][..dv])
            .for_each(|(a, b)| *a = A::from_f64(b.to_f64()));
        row[dv] = z0.map_or(A::ZERO, |z| A::from_f64(z[c].to_f64()));
    }
}

/// Writes the state rows (d x (dv + 1)) as S (d x dv) and z (d).
fn write_state<A: Elem, E: Elem>(
    st: &[A],
    dv: usize,
    s: &mut [MaybeUninit<E>],
    z: &mut [MaybeUninit<E>],
) {
    for ((row, srow), zc) in st.chunks_exact(dv + 1).zip(s.chunks_exact_mut(dv)).zip(z) {
        for (x, &y) in srow.iter_mut().zip(row) {
            x.write(E::from_f64(y.to_f64()));
        }
        zc.write(E::from_f64(row[dv].to_f64()));
    }
}

/// One head's task: its index and its output rows, S and z.
type HeadTask<'a, E> = (
    usize,
    &'a mut [MaybeUninit<E>],
    &'a mut [MaybeUninit<E>],
    &'a mut [MaybeUninit<E>],
);

/// Linear attention over q (..., n, d), k (..., s, d), v (..., s, dv) (grouped heads allowed;
/// causal needs s = n). Returns the output (..., n, dv) and the state after the sequence.
pub fn linear_attention<E: GemmElem + Lanes>(
    q: ArrayViewD<'_, E>,
    k: ArrayViewD<'_, E>,
    v: ArrayViewD<'_, E>,
    decay: Decay<'_, E>,
    initial: Option<(ArrayViewD<'_, E>, Option<ArrayViewD<'_, E>>)>,
    opts: &LinearOptions,
) -> Result<(ArrayD<E>, LinearState<E>)> {
    const F: &str = "linear_attention";
    let hs = qkv_shape(F, q.shape(), k.shape(), v.shape())?;
    if opts.chunk_size == 0 {
        return Err(Error::Invalid(format!(
            "{F}: chunk_size must be >= 1, got 0"
        )));
    }
    if opts.causal && hs.s != hs.n {
        return Err(Error::Invalid(format!(
            "{F}: causal needs k and v as long as q (s = n), got n = {}, s = {}",
            hs.n, hs.s
        )));
    }
    if decay.is_some() && !opts.causal {
        return Err(Error::Invalid(format!(
            "{F}: decay is a causal recurrence; pass causal=True"
        )));
    }
    let scale = opts.scale.unwrap_or(1.0);
    if !scale.is_finite() || !opts.eps.is_finite() || opts.eps < 0.0 {
        return Err(Error::Invalid(format!(
            "{F}: scale and eps must be finite (eps >= 0), got scale = {scale}, eps = {}",
            opts.eps
        )));
    }
    let nd = q.ndim();
    let (qc, kc, vc) = (Contig::new(q.view()), Contig::new(k), Contig::new(v));
    // q and k are checked in the feature maps' pass over them (every element of both is mapped
    // when there is a head); v by the non-causal pass block by block, otherwise here.
    if hs.heads() == 0 {
        check_finite(F, "q", qc.slice())?;
        check_finite(F, "k", kc.slice())?;
    }
    if hs.heads() == 0 || opts.causal {
        check_finite(F, "v", vc.slice())?;
    }
    let gates = gates::Gates::new(F, decay, q.shape(), &hs)?;
    let batch = &q.shape()[..nd - 2];
    // The recurrence checks the incoming state within its one pass over it.
    let step_path = opts.causal && hs.n <= STEP_MAX;
    let init = initial
        .map(|(s, z)| state_in(F, s, z, batch, &hs, !step_path))
        .transpose()?;
    let (d, dv) = (hs.d, hs.dv);
    let heads = hs.heads();
    let (sd, zd) = (hs.d * hs.dv, hs.d);
    let mut out = Output::<E>::new(F, heads * hs.n * hs.dv)?;
    let mut s_out = Output::<E>::new(F, heads * sd)?;
    let mut z_out = Output::<E>::new(F, heads * zd)?;
    let tasks: Vec<_> = if heads == 0 {
        Vec::new()
    } else {
        out.uninit()
            .chunks_mut((hs.n * hs.dv).max(1))
            .chain(std::iter::repeat_with(|| &mut [][..]))
            .zip(s_out.uninit().chunks_mut(sd))
            .zip(z_out.uninit().chunks_mut(zd))
            .enumerate()
            .map(|(h, ((o, s), z))| (h, o, s, z))
            .take(heads)
            .collect()
    };
    let (qs, ks, vs) = (qc.slice(), kc.slice(), vc.slice());
    let run = |st: &mut Vec<f64>, (h, o, s, z): HeadTask<'_, E>| {
        let job = HeadJob::new(
            &hs,
            h,
            (qs, ks, vs),
            gates.head(h),
            *opts,
            E::from_f64(scale),
        );
        let s0 = init.as_ref().map(|(s0, z0)| {
            (
                &s0.slice()[h * d * dv..][..d * dv],
                z0.as_ref().map(|z| &z.slice()[h * d..][..d]),
            )
        });
        if step_path {
            // A few tokens (a decoding step): the recurrence in the dtype itself, straight from
            // the caller's state into the output state (it checks the state's finiteness).
            let state_ok = step::recurrent(&job, s0, o, s, z);
            job.inputs_finite(F)?;
            if !state_ok {
                return Err(Error::Invalid(format!(
                    "{F}: initial_state contains NaN or infinity"
                )));
            }
            return Ok(());
        }
        load_state(st, s0, d, dv);
        if opts.causal {
            chunk::causal(&job, st, o);
        } else {
            chunk::noncausal(&job, st, o);
        }
        write_state(st, dv, s, z);
        job.inputs_finite(F)
    };
    let results = crate::threads::map_tasks(tasks, Vec::new, run);
    results.into_iter().collect::<Result<()>>()?;
    let mut sshape = batch.to_vec();
    sshape.extend([hs.d, hs.dv]);
    let mut zshape = batch.to_vec();
    zshape.push(hs.d);
    // SAFETY: every head task wrote its output rows and its state.
    unsafe {
        Ok((
            out.assume_init(&HeadShape::out_shape(q.shape(), hs.dv))?,
            LinearState {
                s: s_out.assume_init(&sshape)?,
                z: z_out.assume_init(&zshape)?,
            },
        ))
    }
}

/// The initial state (S, z), checked and borrowed contiguous.
type StateIn<'a, E> = (Contig<'a, E>, Option<Contig<'a, E>>);

fn state_in<'a, E: GemmElem + Lanes>(
    f: &str,
    s: ArrayViewD<'a, E>,
    z: Option<ArrayViewD<'a, E>>,
    batch: &[usize],
    hs: &HeadShape,
    check: bool,
) -> Result<StateIn<'a, E>> {
    let (d, dv) = (hs.d, hs.dv);
    let want_s: Vec<usize> = batch.iter().copied().chain([d, dv]).collect();
    let want_z: Vec<usize> = batch.iter().copied().chain([d]).collect();
    if s.shape() != want_s.as_slice() {
        return Err(Error::Shape {
            what: "initial_state S",
            expected: want_s,
            got: s.shape().to_vec(),
        });
    }
    if let Some(z) = &z {
        if z.shape() != want_z.as_slice() {
            return Err(Error::Shape {
                what: "initial_state z",
                expected: want_z,
                got: z.shape().to_vec(),
            });
        }
    }
    let sc = Contig::new(s);
    let zc = z.map(Contig::new);
    if check {
        check_finite(f, "initial_state S", sc.slice())?;
        if let Some(zc) = &zc {
            check_finite(f, "initial_state z", zc.slice())?;
        }
    }
    Ok((sc, zc))
}

/// fast-transformers' `causal_dot_product`: sum_{j <= i} (q_i . k_j) v_j, unnormalised (the
/// identity map, no decay, scale 1).
pub fn causal_dot_product<E: GemmElem + Lanes>(
    q: ArrayViewD<'_, E>,
    k: ArrayViewD<'_, E>,
    v: ArrayViewD<'_, E>,
) -> Result<ArrayD<E>> {
    let opts = LinearOptions {
        feature_map: FeatureMap::Identity,
        causal: true,
        normalize: false,
        ..LinearOptions::default()
    };
    linear_attention(q, k, v, None, None, &opts).map(|(o, _)| o)
}
