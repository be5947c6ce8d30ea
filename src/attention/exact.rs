//! Exact softmax attention, tiled with the online softmax (FlashAttention's schedule, Dao et
//! al. 2022/2023; on CPUs as in PyTorch's `cpu/FlashAttentionKernel.cpp`): for a block of
//! queries, key blocks stream through S = scale Q K^T (the crate's GEMM), the online update of
//! `softmax::online_tile` (running max and rescaled sum per row), and O <- alpha O + P V; the
//! n x s matrix is never formed. Causal and sliding-window tiles with no visible key are
//! skipped, not masked; only tiles crossing a boundary (or under a user mask) are masked.
//!
//! Visibility is bottom-right aligned, as PyTorch's and FlashAttention's `causal`: key j is
//! visible to query i when j <= i + s - n; `window = w` keeps i + s - n - w < j <= i + s - n.

use super::heads::{check_finite, head_view, qkv_shape, Contig, HeadShape, Output};
use super::overflow;
use crate::error::{Error, Result};
use crate::linalg::{small_gemm, GemmElem, SmallGemm};
use crate::simd::{self, Lanes};
use crate::softmax::online_tile::{online_tile_with, OnlineTile};
use ndarray::{ArrayD, ArrayView2, ArrayViewD};
use std::mem::MaybeUninit;

/// Query rows per task and key rows per tile: a 64 x 256 score tile (64 KiB in f32) stays in
/// L2 beside the K and V tiles on every machine kind; 64 queries amortise the GEMM's packing of
/// each K and V tile.
const QUERY_BLOCK: usize = 64;
const KEY_BLOCK: usize = 256;
/// Row stride of a K^T tile: KEY_BLOCK keys plus 16 elements, so the d rows of a tile are not
/// 1 KiB apart (a multiple of 4 KiB / 4: a column panel's rows would share a quarter of L1's
/// sets and evict each other).
const TILE_LD: usize = KEY_BLOCK + 16;

/// Elements of one head's K^T tiles.
fn tiles_len(s: usize, d: usize) -> usize {
    s.div_ceil(KEY_BLOCK) * d * TILE_LD
}

#[derive(Clone, Debug, Default)]
pub struct ExactOptions<'a> {
    /// Multiplies q.k; None is d^-0.5.
    pub scale: Option<f64>,
    pub causal: bool,
    /// Sliding window: the last `w` keys up to the causal diagonal (implies the causal bound).
    pub window: Option<usize>,
    /// True = attend; broadcastable to (..., n, s).
    pub mask: Option<ArrayViewD<'a, bool>>,
}

/// The visible key range [lo, hi) of query row i.
#[derive(Clone, Copy)]
struct Visible {
    off: isize,
    s: usize,
    bounded: bool,
    window: Option<usize>,
}

impl Visible {
    fn range(&self, i: usize) -> (usize, usize) {
        let clamp = |x: isize| x.clamp(0, self.s as isize) as usize;
        let top = i as isize + self.off + 1;
        let hi = if self.bounded { clamp(top) } else { self.s };
        let lo = self.window.map_or(0, |w| {
            clamp(top.saturating_sub(w.min(isize::MAX as usize) as isize))
        });
        (lo, hi)
    }
}

#[derive(Default)]
struct Scratch<E> {
    qs: Vec<E>,
    sc: Vec<E>,
    acc: Vec<E>,
    m: Vec<E>,
    l: Vec<E>,
    alpha: Vec<E>,
}

/// Exact attention: (out (..., n, dv), lse (..., n)). q (..., n, d), k (..., s, d), v (..., s,
/// dv), grouped heads allowed. A row with nothing visible gives 0s and lse = -inf.
pub fn softmax_attention<E: GemmElem + Lanes>(
    q: ArrayViewD<'_, E>,
    k: ArrayViewD<'_, E>,
    v: ArrayViewD<'_, E>,
    opts: &ExactOptions<'_>,
) -> Result<(ArrayD<E>, ArrayD<E>)> {
    const F: &str = "softmax_attention";
    let hs = qkv_shape(F, q.shape(), k.shape(), v.shape())?;
    if opts.window == Some(0) {
        return Err(Error::Invalid(format!("{F}: window must be >= 1, got 0")));
    }
    let scale = opts.scale.unwrap_or(1.0 / (hs.d as f64).sqrt());
    if !scale.is_finite() {
        return Err(Error::Invalid(format!(
            "{F}: scale must be finite, got {scale}"
        )));
    }
    let nd = q.ndim();
    let mask = match &opts.mask {
        Some(m) => {
            let mut full = q.shape()[..nd - 1].to_vec();
            full.push(hs.s);
            Some(m.broadcast(full.clone()).ok_or_else(|| {
                Error::Invalid(format!(
                    "{F}: mask of shape {:?} does not broadcast to {full:?}",
                    m.shape()
                ))
            })?)
        }
        None => None,
    };
    let (qc, kc, vc) = (Contig::new(q.view()), Contig::new(k), Contig::new(v));
    check_finite(F, "q", qc.slice())?;
    check_finite(F, "k", kc.slice())?;
    check_finite(F, "v", vc.slice())?;
    let vis = Visible {
        off: hs.s as isize - hs.n as isize,
        s: hs.s,
        bounded: opts.causal || opts.window.is_some(),
        window: opts.window,
    };
    let mut out = Output::<E>::new(F, hs.heads() * hs.n * hs.dv)?;
    let mut lse = Output::<E>::new(F, hs.heads() * hs.n)?;
    let mut tasks = Vec::new();
    if hs.n > 0 {
        let heads = out.uninit().chunks_mut(hs.n * hs.dv);
        for (h, (oh, lh)) in heads.zip(lse.uninit().chunks_mut(hs.n)).enumerate() {
            let blocks = oh.chunks_mut(QUERY_BLOCK * hs.dv);
            for (b, (ob, lb)) in blocks.zip(lh.chunks_mut(QUERY_BLOCK)).enumerate() {
                tasks.push((h, b * QUERY_BLOCK, ob, lb));
            }
        }
    }
    let (qs, vs) = (qc.slice(), vc.slice());
    let kts = key_tiles(kc.slice(), hs.s, hs.d);
    let isa = simd::active();
    let run =
        |sc: &mut Scratch<E>,
         (h, r0, ob, lb): (usize, usize, &mut [MaybeUninit<E>], &mut [MaybeUninit<E>])| {
            let kv = hs.kv_head(h);
            let head_mask = mask.as_ref().map(|m| head_view(m.view(), h)).transpose()?;
            let block = Block {
                q: &qs[(h * hs.n + r0) * hs.d..][..lb.len() * hs.d],
                kt: &kts[kv * tiles_len(hs.s, hs.d)..][..tiles_len(hs.s, hs.d)],
                v: &vs[kv * hs.s * hs.dv..][..hs.s * hs.dv],
                r0,
                hs,
                scale: E::from_f64(scale),
                vis,
                mask: head_mask,
            };
            block.run(isa, sc, ob, lb)
        };
    let results = crate::threads::map_tasks(tasks, Scratch::default, run);
    results.into_iter().collect::<Result<()>>()?;
    let oshape = HeadShape::out_shape(q.shape(), hs.dv);
    let lshape = &q.shape()[..nd - 1];
    // SAFETY: every task wrote its whole output and lse block, and the tasks cover both.
    let (out, lse) = unsafe { (out.assume_init(&oshape)?, lse.assume_init(lshape)?) };
    let sees_keys = |r: usize| {
        let (h, i) = (r / hs.n.max(1), r % hs.n.max(1));
        let (lo, hi) = vis.range(i);
        lo < hi
            && mask.as_ref().is_none_or(|m| {
                head_view(m.view(), h)
                    .is_ok_and(|m| m.row(i).iter().skip(lo).take(hi - lo).any(|&b| b))
            })
    };
    overflow::check_rows(
        lse.as_slice().unwrap_or(&[]),
        sees_keys,
        || overflow::score_bound(scale, hs.d, &[qs, kc.slice()]),
        F,
        ("scale * q.k", "q and k"),
    )?;
    Ok((out, lse))
}

/// Every k/v head's keys (s x d) as K^T per tile of KEY_BLOCK keys: tile t (keys j0 = t KB ..
/// j0 + w, w = min(KB, s - j0)) at offset t d TILE_LD of the head, d rows of w (row stride
/// TILE_LD). Once per call, so every query block's S = Q K^T reads a contiguous tile.
fn key_tiles<E: Copy + Default>(k: &[E], s: usize, d: usize) -> Vec<E> {
    if s * d == 0 {
        return Vec::new();
    }
    let per_head = tiles_len(s, d);
    let mut out = vec![E::default(); k.len() / (s * d) * per_head];
    for (src, dst) in k.chunks_exact(s * d).zip(out.chunks_exact_mut(per_head)) {
        for (t, tile) in dst.chunks_exact_mut(d * TILE_LD).enumerate() {
            let j0 = t * KEY_BLOCK;
            let w = KEY_BLOCK.min(s - j0);
            for (jj, row) in src[j0 * d..(j0 + w) * d].chunks_exact(d).enumerate() {
                for (c, &x) in row.iter().enumerate() {
                    tile[c * TILE_LD + jj] = x;
                }
            }
        }
    }
    out
}

/// One block of query rows of one head.
struct Block<'a, E> {
    q: &'a [E],
    /// The k/v head's keys as `key_tiles` lays them out.
    kt: &'a [E],
    v: &'a [E],
    r0: usize,
    hs: HeadShape,
    scale: E,
    vis: Visible,
    mask: Option<ArrayView2<'a, bool>>,
}

impl<E: GemmElem + Lanes> Block<'_, E> {
    fn run(
        &self,
        isa: simd::Isa,
        sc: &mut Scratch<E>,
        out: &mut [MaybeUninit<E>],
        lse: &mut [MaybeUninit<E>],
    ) -> Result<()> {
        let (d, dv) = (self.hs.d, self.hs.dv);
        let rows = lse.len();
        let (r0, r1) = (self.r0, self.r0 + rows);
        sc.qs.clear();
        sc.qs.extend(self.q.iter().map(|&x| x * self.scale));
        sc.acc.clear();
        sc.acc.resize(rows * dv, E::ZERO);
        for (buf, init) in [
            (&mut sc.m, E::NEG_INFINITY),
            (&mut sc.l, E::ZERO),
            (&mut sc.alpha, E::ONE),
        ] {
            buf.clear();
            buf.resize(rows, init);
        }
        sc.sc.resize(rows * KEY_BLOCK, E::ZERO);
        // Rows' visible ranges only move right, so the block's keys are [lo(r0), hi(r1 - 1)).
        let (kmin, hi0) = self.vis.range(r0);
        let (lo1, kmax) = self.vis.range(r1 - 1);
        // Tiles start at multiples of KEY_BLOCK (the layout of `kt`); a first tile reaching
        // below kmin is masked like any tile crossing a boundary.
        let mut j0 = kmin / KEY_BLOCK * KEY_BLOCK;
        while j0 < kmax {
            let j1 = (j0 + KEY_BLOCK).min(kmax);
            let bk = j1 - j0;
            let tile = &mut sc.sc[..rows * bk];
            // S = Q K^T from this key tile's K^T (d rows of up to KEY_BLOCK keys, laid out
            // once per call by `key_tiles`): the small product's B, no packing per block.
            let g = SmallGemm {
                m: rows,
                n: bk,
                k: d,
                ars: d,
                acs: 1,
                ldb: TILE_LD,
                ldc: bk,
                accumulate: false,
            };
            let t = j0 / KEY_BLOCK;
            small_gemm(g, &sc.qs, &self.kt[t * d * TILE_LD..], tile);
            let crosses = j1 > hi0 || j0 < lo1;
            if crosses || self.mask.is_some() {
                self.mask_tile(tile, bk, j0);
            }
            online_tile_with(
                isa,
                OnlineTile {
                    s: tile,
                    ld: bk,
                    cols: bk,
                    m: &mut sc.m,
                    l: &mut sc.l,
                    alpha: &mut sc.alpha,
                },
            );
            for (row, &a) in sc.acc.chunks_exact_mut(dv).zip(&sc.alpha) {
                if a != E::ONE {
                    row.iter_mut().for_each(|x| *x = *x * a);
                }
            }
            let vt = &self.v[j0 * dv..j1 * dv];
            small_gemm(
                SmallGemm::rows(rows, dv, bk).accumulate(),
                &sc.sc,
                vt,
                &mut sc.acc,
            );
            j0 = j1;
        }
        for r in 0..rows {
            let (m, l) = (sc.m[r], sc.l[r]);
            let dst = &mut out[r * dv..(r + 1) * dv];
            if l == E::ZERO {
                dst.iter_mut().for_each(|x| {
                    x.write(E::ZERO);
                });
                lse[r].write(E::NEG_INFINITY);
            } else {
                let inv = E::ONE / l;
                for (x, &a) in dst.iter_mut().zip(&sc.acc[r * dv..(r + 1) * dv]) {
                    x.write(a * inv);
                }
                lse[r].write(E::from_f64(m.to_f64() + l.to_f64().ln()));
            }
        }
        Ok(())
    }

    /// -inf where key j0 + c is not visible to the tile's row r (bounds, then the user mask).
    fn mask_tile(&self, tile: &mut [E], bk: usize, j0: usize) {
        for (r, row) in tile.chunks_exact_mut(bk).enumerate() {
            let i = self.r0 + r;
            let (lo, hi) = self.vis.range(i);
            // The visible keys of the row are one run [lo, hi): fill what lies either side.
            let a = lo.saturating_sub(j0).min(bk);
            let b = hi.saturating_sub(j0).clamp(a, bk);
            row[..a].fill(E::NEG_INFINITY);
            row[b..].fill(E::NEG_INFINITY);
            if let Some(m) = &self.mask {
                let mrow = m.row(i);
                for (x, &keep) in row.iter_mut().zip(mrow.iter().skip(j0)) {
                    if !keep {
                        *x = E::NEG_INFINITY;
                    }
                }
            }
        }
    }
}
