//! Products 1 and 2 of a SOFT head, one tile of tokens at a time: pack q^T (tokens in lanes),
//! K^T = exp(min(L q^T - a - b, 0)) for every landmark block, and C += K^T v for the tile while
//! its K^T is still in L1.

use super::soft_blocks::{
    expand_rows, gauss_block, landmark_block, project_block, token_vectors, wide, CV,
};
use crate::simd::exp::ExpPoly;
use crate::simd::{Elem, Kernel, Lanes, Simd};

pub(super) fn round_up(x: usize, m: usize) -> usize {
    x.div_ceil(m) * m
}

/// The layout of K^T (in the caller's buffer: rows are landmarks padded to the landmark block,
/// stride `ldk`) and C = K^T v.
pub(super) struct Projection<E> {
    pub(super) ldk: usize,
    pub(super) c: Vec<E>,
    pub(super) ldc: usize,
    /// Sum of a * 0 over every token: NaN when some squared norm is not finite.
    pub(super) norm_check: E,
}

/// Products 1 and 2 for `x` (n x d, contiguous) against landmarks `lm` (l x d); `v` (n x dv)
/// may have dv = 0 (then only K^T is formed).
pub(super) struct Project<'a, E> {
    pub(super) x: &'a [E],
    pub(super) n: usize,
    pub(super) d: usize,
    pub(super) lm: &'a [E],
    pub(super) l: usize,
    pub(super) v: &'a [E],
    pub(super) dv: usize,
    /// Receives K^T; grown as needed, never shrunk (reused across heads).
    pub(super) kt: &'a mut Vec<E>,
}

impl<E: Lanes> Kernel<E> for Project<'_, E> {
    type Output = Projection<E>;
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) -> Projection<E> {
        if wide::<S>() {
            project::<S, 7, 3>(self)
        } else {
            project::<S, 3, 4>(self)
        }
    }
}

#[inline(always)]
fn project<S: Simd, const JB: usize, const TV: usize>(p: Project<'_, S::E>) -> Projection<S::E> {
    debug_assert!(JB == landmark_block::<S>() && TV == token_vectors::<S>());
    let (n, d, l, dv) = (p.n, p.d, p.l, p.dv);
    let w = S::LANES;
    let tile = TV * w;
    let lp = round_up(l, JB);
    let zero = S::E::ZERO;
    // Landmarks padded with zero rows to whole blocks, and their half squared norms.
    let mut lmp = vec![zero; lp * d];
    lmp[..l * d].copy_from_slice(&p.lm[..l * d]);
    let half = S::E::from_f64(0.5);
    let b: Vec<S::E> = lmp
        .chunks_exact(d.max(1))
        .map(|r| r.iter().fold(zero, |s, &x| s + x * x) * half)
        .chain(std::iter::repeat(zero))
        .take(lp)
        .collect();
    // Token stride: whole tiles, then room for the expansion's last block, then one more cache
    // line so that rows are not 4 KiB apart (L1 set aliasing).
    let ldk = round_up(round_up(n, tile) + expand_rows::<S>(), 16) + 16;
    // Every element of K^T that is read later is written first: tiles cover whole tiles of
    // every padded row, and the columns past them are zeroed here.
    let kt = p.kt;
    if kt.len() < lp * ldk {
        kt.resize(lp * ldk, zero);
    }
    let covered = round_up(n, tile);
    for row in kt[..lp * ldk].chunks_exact_mut(ldk) {
        row[covered..].fill(zero);
    }
    let ldc = round_up(dv, CV * w);
    let mut c = vec![zero; lp * ldc];
    let mut qt = vec![zero; d * tile];
    let poly = ExpPoly::<S>::softmax(S::splat(S::E::ONE));
    let (vz, vhalf) = (S::splat(zero), S::splat(half));
    let mut check = vz;
    for i0 in (0..n).step_by(tile) {
        let tokens = tile.min(n - i0);
        let mut a = [vz; TV];
        pack_tile::<S, TV>(&p.x[i0 * d..(i0 + tokens) * d], d, &mut qt, &mut a);
        for at in a.iter_mut() {
            *at = S::mul(*at, vhalf);
            check = S::add(check, S::mul(*at, vz));
        }
        for jb in (0..lp).step_by(JB) {
            // SAFETY: qt holds d * tile, lmp rows jb..jb+JB < lp, b has lp, kt row jb + JB - 1
            // ends at i0 + tile <= ldk.
            unsafe {
                gauss_block::<S, JB, TV>(
                    qt.as_ptr(),
                    d,
                    lmp.as_ptr().add(jb * d),
                    b.as_ptr().add(jb),
                    &a,
                    &poly,
                    kt.as_mut_ptr().add(jb * ldk + i0),
                    ldk,
                );
            }
        }
        for c0 in (0..dv).step_by(CV * w) {
            let cols = (CV * w).min(dv - c0);
            for jb in (0..lp).step_by(JB) {
                let kp = kt[jb * ldk + i0..].as_ptr();
                let vp = p.v[i0 * dv + c0..].as_ptr();
                let cp = c[jb * ldc + c0..].as_mut_ptr();
                // SAFETY: rows jb..jb+JB of kt and c exist; v rows i0..i0+tokens have dv
                // elements, of which columns c0..c0+cols are read.
                unsafe {
                    if cols == CV * w {
                        project_block::<S, JB, true>(kp, ldk, vp, dv, cols, tokens, cp, ldc);
                    } else {
                        project_block::<S, JB, false>(kp, ldk, vp, dv, cols, tokens, cp, ldc);
                    }
                }
            }
        }
    }
    Projection {
        ldk,
        c,
        ldc,
        norm_check: S::reduce_add(check),
    }
}

/// Writes the tile's rows (tokens, each d contiguous elements) transposed into `qt` (d rows of
/// TV vectors, zero past the last token) and sets `a` to their squared norms.
#[inline(always)]
fn pack_tile<S: Simd, const TV: usize>(
    rows: &[S::E],
    d: usize,
    qt: &mut [S::E],
    a: &mut [S::V; TV],
) {
    let w = S::LANES;
    let tile = TV * w;
    let tokens = rows.len().checked_div(d).unwrap_or(0);
    for t in 0..TV {
        let t0 = t * w;
        let mut k = 0;
        if t0 + w <= tokens {
            while k + w <= d {
                // SAFETY: rows t0 .. t0 + w have d >= k + w elements; qt rows k .. k + w hold
                // tile >= t0 + w elements.
                unsafe {
                    S::transpose(
                        rows.as_ptr().add(t0 * d + k),
                        d,
                        qt.as_mut_ptr().add(k * tile + t0),
                        tile,
                    );
                }
                k += w;
            }
        }
        for k in k..d {
            for u in 0..w {
                let i = t0 + u;
                qt[k * tile + i] = if i < tokens {
                    rows[i * d + k]
                } else {
                    S::E::ZERO
                };
            }
        }
    }
    *a = [S::splat(S::E::ZERO); TV];
    for k in 0..d {
        for (t, at) in a.iter_mut().enumerate() {
            // SAFETY: qt holds d * tile elements.
            let x = unsafe { S::load(qt.as_ptr().add(k * tile + t * w)) };
            *at = S::fma(x, x, *at);
        }
    }
}
