//! Decoding attention: one query per head against a KV cache, split-KV (FlashDecoding, Dao et
//! al. 2023): the valid keys of each sequence are cut into `num_splits` ranges computed as
//! independent tasks, whose partials (m, l, o) are merged with FlashAttention-2's guards (a split
//! with nothing visible contributes nothing; nothing visible at all gives 0s and lse = -inf).
//! With `unified_max = phi` every split uses e^(x - phi) and the merge is a plain sum
//! (FlashDecoding++, Hong et al. 2024, "asynchronized softmax with unified max value"); a row
//! whose scores leave phi +- `split::safe_range` (or whose sums are not finite) is recomputed
//! with the synchronised merge, so the answer never depends on phi.
//!
//! The splits are fixed by the inputs and `num_splits`, never by the thread count, so results
//! are bitwise identical for any number of threads.

mod merge;
mod split;
#[cfg(test)]
mod tests;

use super::heads::{check_finite, head_blocks, qkv_shape, Contig};
use super::overflow;
use crate::error::{Error, Result};
use crate::simd::all_finite;
use crate::simd::{self, Lanes};
use merge::{merge_row, Partials};
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use split::{split_partial, SplitPartial, KEY_BLOCK};

/// Keys per split when `num_splits` is None: 2048 keys are 1 MiB of K and V at d = 128 in f32,
/// enough work per task (a megabyte read at memory speed) to hide its start, and enough tasks for two
/// or more threads from s = 4096 on, on any machine.
const SPLIT_KEYS: usize = 2048;

#[derive(Clone, Debug, Default)]
pub struct DecodeOptions<'a> {
    /// Multiplies q.k; None is d^-0.5.
    pub scale: Option<f64>,
    /// Valid cache length per sequence (shape q.shape[:-2]) or per query head (q.shape[:-1]);
    /// 0-d: the same for all. None: every key.
    pub kv_len: Option<ArrayViewD<'a, i64>>,
    pub num_splits: Option<usize>,
    /// phi of FlashDecoding++'s unified max, compared with the scaled scores.
    pub unified_max: Option<f64>,
}

/// What a call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeInfo {
    pub num_splits: usize,
    /// Query heads (rows) recomputed with the synchronised merge (unified_max only).
    pub fallback_rows: usize,
}

/// Decoding attention: (out (..., hq, dv), lse (..., hq), info) for q (..., hq, d), k (..., hkv,
/// s, d), v (..., hkv, s, dv), hq a multiple of hkv; or q (..., d) with k (..., s, d).
pub fn decode_attention<E: Lanes>(
    q: ArrayViewD<'_, E>,
    k: ArrayViewD<'_, E>,
    v: ArrayViewD<'_, E>,
    opts: &DecodeOptions<'_>,
) -> Result<(ArrayD<E>, ArrayD<E>, DecodeInfo)> {
    const F: &str = "decode_attention";
    let nq = q.ndim();
    if nq == 0 || k.ndim() != nq + 1 || v.ndim() != nq + 1 {
        return Err(Error::Invalid(format!(
            "{F}: q must be (..., hq, d) with k (..., hkv, s, d) and v (..., hkv, s, dv) (one more dim than q), got q {:?}, k {:?}, v {:?}",
            q.shape(), k.shape(), v.shape()
        )));
    }
    let mut q4 = q.shape().to_vec();
    q4.insert(nq - 1, 1);
    let hs = qkv_shape(F, &q4, k.shape(), v.shape())?;
    let scale = opts.scale.unwrap_or(1.0 / (hs.d as f64).sqrt());
    if !scale.is_finite() {
        return Err(Error::Invalid(format!(
            "{F}: scale must be finite, got {scale}"
        )));
    }
    if let Some(phi) = opts.unified_max.filter(|p| !p.is_finite()) {
        return Err(Error::Invalid(format!(
            "{F}: unified_max must be finite, got {phi}"
        )));
    }
    let heads = hs.heads();
    let lens = kv_lens(F, opts.kv_len.as_ref(), q.shape(), heads, hs.s)?;
    let g = hs.hq / hs.hkv.max(1);
    let groups = heads.checked_div(g).unwrap_or(0);
    let group_len: Vec<usize> = (0..groups)
        .map(|gi| {
            lens[gi * g..(gi + 1) * g]
                .iter()
                .copied()
                .max()
                .unwrap_or(0)
        })
        .collect();
    let longest = group_len.iter().copied().max().unwrap_or(0);
    let splits = opts
        .num_splits
        .unwrap_or(longest.div_ceil(SPLIT_KEYS))
        .clamp(1, longest.max(1));
    let qshape = q.shape().to_vec();
    let qc = Contig::new(q);
    check_finite(F, "q", qc.slice())?;
    let qs: Vec<E> = qc.slice().iter().map(|&x| x * E::from_f64(scale)).collect();
    // Each k/v head's rows borrowed in place when they are contiguous (a cache sliced along s
    // is), else the whole input copied once.
    let (kh, vh) = (head_blocks(&k), head_blocks(&v));
    let (kc, vc) = (
        kh.is_none().then(|| Contig::new(k)),
        vh.is_none().then(|| Contig::new(v)),
    );
    let kheads = per_head(&kc, kh, hs.s * hs.d);
    let vheads = per_head(&vc, vh, hs.s * hs.dv);
    let job = Job {
        q: &qs,
        k: &kheads,
        v: &vheads,
        lens: &lens,
        group_len: &group_len,
        g,
        d: hs.d,
        dv: hs.dv,
        splits,
        isa: simd::active(),
    };
    // phi in the element type, and the merge's lse from that same rounded value.
    let phi = opts.unified_max.map(E::from_f64);
    let phi64 = phi.map(|p| p.to_f64());
    let partials = job.partials(phi)?;
    let mut out = vec![E::ZERO; heads * hs.dv];
    let mut lse = vec![E::ZERO; heads];
    let mut fallback = Vec::new();
    for h in 0..heads {
        let p = partials.head(h);
        let row = &mut out[h * hs.dv..(h + 1) * hs.dv];
        if !merge_row(&p, lens[h], phi64, row, &mut lse[h]) {
            fallback.push(h);
        }
    }
    let redo = crate::threads::map_tasks(fallback.clone(), || (), |_, h| job.head_sync(h));
    for (&h, r) in fallback.iter().zip(redo) {
        let p = r?;
        let row = &mut out[h * hs.dv..(h + 1) * hs.dv];
        merge_row(&p.head(0), lens[h], None, row, &mut lse[h]);
    }
    // A non-finite lse of a row that sees finite keys: the scores overflowed (q is finite).
    // Rows whose keys hold NaN or inf keep their NaN (the documented propagation).
    for h in 0..heads {
        let (l, len) = (lse[h], lens[h]);
        if l.is_finite() || (l == E::NEG_INFINITY && len == 0) {
            continue;
        }
        let keys = &kheads[h / g.max(1)][..len * hs.d];
        let qh = &qs[h * hs.d..(h + 1) * hs.d];
        if all_finite(keys) {
            let b = overflow::score_bound(1.0, hs.d, &[qh, keys]);
            if overflow::may_overflow::<E>(b) {
                return Err(overflow::overflow_error::<E>(
                    F,
                    ("scale * q.k", "q and k"),
                    b,
                ));
            }
        }
    }
    let mut oshape = qshape.clone();
    oshape[nq - 1] = hs.dv;
    let shape_err = |e: ndarray::ShapeError| Error::Invalid(format!("internal: {e}"));
    let info = DecodeInfo {
        num_splits: splits,
        fallback_rows: fallback.len(),
    };
    Ok((
        ArrayD::from_shape_vec(IxDyn(&oshape), out).map_err(shape_err)?,
        ArrayD::from_shape_vec(IxDyn(&qshape[..nq - 1]), lse).map_err(shape_err)?,
        info,
    ))
}

/// Every k/v head's rows: the borrowed blocks, or `len`-element chunks of the copy.
fn per_head<'a, E: Lanes>(
    copy: &'a Option<Contig<'_, E>>,
    blocks: Option<Vec<&'a [E]>>,
    len: usize,
) -> Vec<&'a [E]> {
    blocks.unwrap_or_else(|| {
        let all = copy.as_ref().map_or(&[][..], |c| c.slice());
        all.chunks(len.max(1)).collect()
    })
}

/// The valid length of every query head's cache: kv_len 0-d, per sequence (q.shape[:-2]) or per
/// head (q.shape[:-1]); each in [0, s].
fn kv_lens(
    func: &str,
    kv_len: Option<&ArrayViewD<'_, i64>>,
    qshape: &[usize],
    heads: usize,
    s: usize,
) -> Result<Vec<usize>> {
    let Some(kl) = kv_len else {
        return Ok(vec![s; heads]);
    };
    let nq = qshape.len();
    let per = if kl.ndim() == 0 {
        heads.max(1)
    } else if nq >= 2 && kl.shape() == &qshape[..nq - 2] {
        qshape[nq - 2]
    } else if kl.shape() == &qshape[..nq - 1] {
        1
    } else {
        return Err(Error::Invalid(format!(
            "{func}: kv_len must have shape {:?} (per sequence) or {:?} (per query head), got {:?}",
            &qshape[..nq.saturating_sub(2)],
            &qshape[..nq - 1],
            kl.shape()
        )));
    };
    let mut lens = Vec::with_capacity(heads);
    for &x in kl.iter() {
        if x < 0 || x as u64 > s as u64 {
            return Err(Error::Invalid(format!(
                "{func}: kv_len must be in [0, s = {s}], got {x}"
            )));
        }
        lens.extend(std::iter::repeat_n(x as usize, per));
    }
    lens.truncate(heads);
    Ok(lens)
}

/// The inputs of one call, shared by every task.
struct Job<'a, E> {
    /// Scaled queries, heads x d (the heads of group gi are gi g .. (gi + 1) g).
    q: &'a [E],
    /// Every k/v head's rows (s x d and s x dv).
    k: &'a [&'a [E]],
    v: &'a [&'a [E]],
    lens: &'a [usize],
    group_len: &'a [usize],
    g: usize,
    d: usize,
    dv: usize,
    splits: usize,
    isa: simd::Isa,
}

impl<E: Lanes> Job<'_, E> {
    /// Split `si`'s key range [lo, hi) of a cache with `len` valid keys.
    fn range(&self, len: usize, si: usize) -> (usize, usize) {
        let size = len.div_ceil(self.splits);
        ((si * size).min(len), ((si + 1) * size).min(len))
    }

    /// Every group's partials, one task per (group, split).
    fn partials(&self, phi: Option<E>) -> Result<Partials<E>> {
        let (g, stride) = (self.g, self.dv + 2);
        let groups = self.group_len.len();
        let mut p = Partials::new(groups, g, self.splits, stride)?;
        let init = || vec![E::ZERO; g * KEY_BLOCK];
        crate::threads::map_chunks_mut(&mut p.buf, g * stride, init, |sc, (t, out)| {
            let (gi, si) = (t / self.splits, t % self.splits);
            let heads = gi * g..(gi + 1) * g;
            self.run(
                gi,
                si,
                &self.q[heads.start * self.d..heads.end * self.d],
                &self.lens[heads],
                phi,
                sc,
                out,
            );
        });
        Ok(p)
    }

    /// Query head h's synchronised partials over every split (the fallback of unified_max).
    fn head_sync(&self, h: usize) -> Result<Partials<E>> {
        let stride = self.dv + 2;
        let mut p = Partials::new(1, 1, self.splits, stride)?;
        let mut sc = vec![E::ZERO; KEY_BLOCK];
        let q = &self.q[h * self.d..(h + 1) * self.d];
        for (si, out) in p.buf.chunks_exact_mut(stride).enumerate() {
            self.run(h / self.g, si, q, &self.lens[h..h + 1], None, &mut sc, out);
        }
        Ok(p)
    }

    /// Split si of group gi for the query rows `q` with valid lengths `lens`.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        gi: usize,
        si: usize,
        q: &[E],
        lens: &[usize],
        phi: Option<E>,
        scores: &mut [E],
        out: &mut [E],
    ) {
        let (lo, hi) = self.range(self.group_len[gi], si);
        let visible: Vec<usize> = lens.iter().map(|&l| l.min(hi).saturating_sub(lo)).collect();
        let (kh, vh) = (self.k[gi], self.v[gi]);
        split_partial(
            self.isa,
            SplitPartial {
                q,
                k: &kh[lo * self.d..hi * self.d],
                v: &vh[lo * self.dv..hi * self.dv],
                visible: &visible,
                unified: phi,
                scores,
                out,
            },
        );
    }
}
