//! One split of split-KV decoding: the partial softmax of a group of query heads (the heads that
//! share one k/v head) over a range of keys, as FlashDecoding's per-split kernel (Dao et al.,
//! "Flash-Decoding", 2023; `flash_fwd_splitkv_kernel` in Dao-AILab/flash-attention). Keys stream
//! through in blocks of KEY_BLOCK: scores of every head of the group against the block (each key
//! row read from memory once, then from L1 for the other heads), the block's exponentials in
//! vector passes, then o += p V. Partial per head, laid out as [m, l, o_0 .. o_dv):
//! - synchronised: m the running max, l = sum e^(x - m), o = sum e^(x - m) v (rescaled when m
//!   grows, FlashAttention-2's online form);
//! - unified (FlashDecoding++'s asynchronised softmax, Hong et al. 2024): l = sum e^(x - phi),
//!   o = sum e^(x - phi) v with the caller's phi, no rescaling; m is still the max of the scores,
//!   kept only so the caller can tell whether every score stayed in the safe range of phi.

use crate::simd::exp::ExpPoly;
use crate::simd::{Elem, Kernel, Lanes, Simd};
use crate::softmax::online_tile::{exp_sub_sum, load_upto, row_max, store_upto};

/// Keys per block: the K phase and the V phase of a block each read one long run of rows
/// (256 KiB at d = 128 in f32, in L2 on every machine kind for the other heads of a group), so
/// the hardware prefetchers see two plain sequential streams. Blocks of 32 keys switching
/// between K and V every 16 KiB read at half the speed.
pub(super) const KEY_BLOCK: usize = 512;

/// Vectors of o held in registers across a block's rows (128 f32 on AVX-512).
const RUN: usize = 8;

pub(super) struct SplitPartial<'a, E> {
    /// The group's g query rows (g x d), already multiplied by the scale.
    pub q: &'a [E],
    /// The split's key rows (rows x d) and value rows (rows x dv).
    pub k: &'a [E],
    pub v: &'a [E],
    /// Per head of the group: how many of the split's keys it sees (a prefix; ragged caches).
    pub visible: &'a [usize],
    /// phi of the unified-max form; None for the synchronised form.
    pub unified: Option<E>,
    /// g x KEY_BLOCK scores.
    pub scores: &'a mut [E],
    /// g partials of dv + 2 elements each.
    pub out: &'a mut [E],
}

impl<E: Lanes> Kernel<E> for SplitPartial<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        let g = self.visible.len();
        let d = self.q.len() / g.max(1);
        let stride = self.out.len() / g.max(1);
        let rows = self.k.len() / d.max(1);
        let poly = ExpPoly::<S>::softmax(S::splat(E::ONE));
        for p in self.out.chunks_exact_mut(stride) {
            p[0] = E::NEG_INFINITY;
            p[1..].fill(E::ZERO);
        }
        for b0 in (0..rows).step_by(KEY_BLOCK) {
            let bk = KEY_BLOCK.min(rows - b0);
            block_scores::<S>(self.q, self.k, b0, bk, d, &mut self.scores[..g * KEY_BLOCK]);
            for h in 0..g {
                let row = &mut self.scores[h * KEY_BLOCK..h * KEY_BLOCK + bk];
                let seen = self.visible[h].saturating_sub(b0).min(bk);
                row[seen..].fill(E::NEG_INFINITY);
                let part = &mut self.out[h * stride..(h + 1) * stride];
                let mt = row_max::<S>(row);
                let m_old = part[0];
                let m_new = if mt > m_old { mt } else { m_old };
                part[0] = m_new;
                if let Some(phi) = self.unified {
                    part[1] = part[1] + exp_sub_sum::<S>(row, phi, &poly);
                } else {
                    if m_new == E::NEG_INFINITY {
                        // Every visible score -inf, or NaN (which the max skips): NaN marks
                        // the split for the merge, which makes the row NaN.
                        if row[..seen].iter().any(|x| x.is_nan()) {
                            part[1] = E::NAN;
                        }
                        row.fill(E::ZERO);
                        continue;
                    }
                    let sum = exp_sub_sum::<S>(row, m_new, &poly);
                    if m_old != m_new {
                        let a = E::from_f64((m_old.to_f64() - m_new.to_f64()).exp());
                        part[1] = part[1] * a;
                        part[2..].iter_mut().for_each(|x| *x = *x * a);
                    }
                    part[1] = part[1] + sum;
                }
                add_pv::<S>(&row[..seen], self.v, b0, &mut part[2..]);
            }
        }
    }
}

/// scores[h][j] = q_h . k_j for the block's keys, one key row at a time for every head of the
/// group: K is read strictly in order (four rows side by side, each hinted ahead in software,
/// read K markedly slower: benches/README.md, decode_attention).
#[inline(always)]
fn block_scores<S: Simd>(
    q: &[S::E],
    k: &[S::E],
    b0: usize,
    bk: usize,
    d: usize,
    scores: &mut [S::E],
) {
    let g = q.len() / d;
    for j in 0..bk {
        let kj = &k[(b0 + j) * d..(b0 + j + 1) * d];
        for h in 0..g {
            scores[h * KEY_BLOCK + j] = dot::<S>(&q[h * d..(h + 1) * d], kj);
        }
    }
}

/// x . y (equal lengths): two vector accumulators over whole vectors, then the tail.
#[inline(always)]
fn dot<S: Simd>(x: &[S::E], y: &[S::E]) -> S::E {
    let (d, w) = (x.len(), S::LANES);
    let zero = S::splat(S::E::ZERO);
    let (mut a0, mut a1) = (zero, zero);
    let (px, py) = (x.as_ptr(), y.as_ptr());
    let mut c = 0;
    // SAFETY: x and y hold d elements; every access is below d.
    unsafe {
        while c + 2 * w <= d {
            a0 = S::fma(S::load(px.add(c)), S::load(py.add(c)), a0);
            a1 = S::fma(S::load(px.add(c + w)), S::load(py.add(c + w)), a1);
            c += 2 * w;
        }
        while c < d {
            let k = (d - c).min(w);
            let xv = load_upto::<S>(px.add(c), k, S::E::ZERO);
            a0 = S::fma(xv, load_upto::<S>(py.add(c), k, S::E::ZERO), a0);
            c += k;
        }
    }
    S::reduce_add(S::add(a0, a1))
}

/// o += sum_j p_j v_j over the visible rows of the block at b0 of v: dv in runs of four whole vectors held in
/// registers across the rows (branch-free), then the tail one partial vector at a time.
#[inline(always)]
fn add_pv<S: Simd>(p: &[S::E], v: &[S::E], b0: usize, o: &mut [S::E]) {
    let (dv, w) = (o.len(), S::LANES);
    let vb = &v[b0 * dv..(b0 + p.len()) * dv];
    let (pv, po) = (vb.as_ptr(), o.as_mut_ptr());
    let mut c0 = 0;
    // SAFETY: o holds dv elements and vb at least p.len() * dv; every access is below those.
    unsafe {
        while c0 + RUN * w <= dv {
            let mut acc: [S::V; RUN] = std::array::from_fn(|u| S::load(po.add(c0 + u * w)));
            for (j, &pj) in p.iter().enumerate() {
                let pj = S::splat(pj);
                let row = pv.add(j * dv + c0);
                for (u, a) in acc.iter_mut().enumerate() {
                    *a = S::fma(pj, S::load(row.add(u * w)), *a);
                }
            }
            for (u, a) in acc.iter().enumerate() {
                S::store(po.add(c0 + u * w), *a);
            }
            c0 += RUN * w;
        }
        while c0 < dv {
            let k = (dv - c0).min(w);
            let mut acc = load_upto::<S>(po.add(c0), k, S::E::ZERO);
            for (j, &pj) in p.iter().enumerate() {
                let x = load_upto::<S>(pv.add(j * dv + c0), k, S::E::ZERO);
                acc = S::fma(S::splat(pj), x, acc);
            }
            store_upto::<S>(po.add(c0), k, acc);
            c0 += k;
        }
    }
}

/// The partials of `k` on `isa` (the caller's dispatch).
pub(super) fn split_partial<E: Lanes>(isa: crate::simd::Isa, k: SplitPartial<'_, E>) {
    crate::simd::dispatch(isa, k)
}

/// Half of the exponential's overflow threshold (44.4 in f32, 354.9 in f64): with every score x
/// in phi +- this, e^(x - phi) and its sums over a split do not overflow, and the only terms lost
/// to underflow are those below e^-(this) of the largest (2e-19 in f32, 1e-154 in f64: far
/// under the dtype's rounding).
pub(super) fn safe_range<E: Elem>() -> f64 {
    0.5 * E::EXP_OVERFLOW.to_f64()
}
