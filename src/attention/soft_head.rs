//! One SOFT head on the active ISA, in two passes over the tokens:
//!
//! 1. per tile of tokens: pack q^T (tokens in lanes), K^T = exp(min(L q^T - a - b, 0)) for every
//!    landmark block, and at once C += K^T v for the tile while it is still in L1;
//! 2. after W = pinv(K(L, L)) C (l x l, tiny): out = K W, token block by token block.
//!
//! Non-finite input needs no pass of its own: a NaN or infinity in a row of q makes its squared
//! norm (computed while packing) non-finite, and one in v makes a column of C non-finite (K >= 0,
//! and 0 * inf is NaN). Only when one of those is seen are q and v scanned to be sure (a finite
//! but huge q can overflow its norm).

use super::soft_blocks::{
    expand_block, expand_rows, gauss_block, landmark_block, project_block, token_vectors, wide, CV,
};
use super::SoftOptions;
use crate::error::{Error, Result};
use crate::linalg::{matmul, pinv, GemmElem};
use crate::simd::exp::ExpPoly;
use crate::simd::{self, all_finite, dispatch, Elem, Kernel, Lanes, Simd};
use ndarray::{Array2, ArrayView2};
use std::mem::MaybeUninit;

fn round_up(x: usize, m: usize) -> usize {
    x.div_ceil(m) * m
}

/// The layout of K^T (in the caller's buffer: rows are landmarks padded to the landmark block,
/// stride `ldk`) and C = K^T v.
struct Projection<E> {
    ldk: usize,
    c: Vec<E>,
    ldc: usize,
    /// Sum of a * 0 over every token: NaN when some squared norm is not finite.
    norm_check: E,
}

/// Products 1 and 2 for `x` (n x d, contiguous) against landmarks `lm` (l x d); `v` (n x dv)
/// may have dv = 0 (then only K^T is formed).
struct Project<'a, E> {
    x: &'a [E],
    n: usize,
    d: usize,
    lm: &'a [E],
    l: usize,
    v: &'a [E],
    dv: usize,
    /// Receives K^T; grown as needed, never shrunk (reused across heads).
    kt: &'a mut Vec<E>,
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
    let tokens = if d == 0 { 0 } else { rows.len() / d };
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

/// Product 3: out (n x dv, contiguous) = K W, with W padded to whole column blocks.
struct Expand<'a, E> {
    kt: &'a [E],
    ldk: usize,
    l: usize,
    wp: &'a [E],
    ldw: usize,
    out: &'a mut [MaybeUninit<E>],
    n: usize,
    dv: usize,
}

impl<E: Lanes> Kernel<E> for Expand<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        if wide::<S>() {
            expand::<S, 12>(self)
        } else {
            expand::<S, 6>(self)
        }
    }
}

#[inline(always)]
fn expand<S: Simd, const IB: usize>(e: Expand<'_, S::E>) {
    debug_assert!(IB == expand_rows::<S>());
    let (n, dv) = (e.n, e.dv);
    for c0 in (0..dv).step_by(CV * S::LANES) {
        let cols = (CV * S::LANES).min(dv - c0);
        for i0 in (0..n).step_by(IB) {
            let rows = IB.min(n - i0);
            // SAFETY: kt rows j < l hold columns up to i0 + IB <= ldk; wp rows hold ldw >=
            // c0 + CV * LANES; out rows i0 .. i0 + rows have dv >= c0 + cols elements.
            unsafe {
                expand_block::<S, IB>(
                    e.kt.as_ptr().add(i0),
                    e.ldk,
                    e.l,
                    e.wp.as_ptr().add(c0),
                    e.ldw,
                    e.out.as_mut_ptr().add(i0 * dv + c0).cast::<S::E>(),
                    dv,
                    rows,
                    cols,
                );
            }
        }
    }
}

fn non_finite() -> Error {
    Error::Invalid("soft_attention: q or v contains NaN or infinity".into())
}

/// SOFT attention for one head: q (n x d), v (n x dv), landmarks (l x d), all contiguous;
/// writes out (n x dv, contiguous).
#[allow(clippy::too_many_arguments)]
pub fn soft_head<E: GemmElem + Lanes>(
    q: &[E],
    v: &[E],
    lm: &[E],
    (n, d, dv, l): (usize, usize, usize, usize),
    opts: &SoftOptions,
    out: &mut [MaybeUninit<E>],
    scratch: &mut Vec<E>,
) -> Result<()> {
    let isa = simd::active();
    let (x, v) = (&q[..n * d], &v[..n * dv]);
    let kt = &mut *scratch;
    let pr = dispatch(
        isa,
        Project {
            x,
            n,
            d,
            lm,
            l,
            v,
            dv,
            kt,
        },
    );
    if !pr.norm_check.is_finite() && !all_finite(x) {
        return Err(non_finite());
    }
    let ldc = pr.ldc;
    let c = Array2::from_shape_fn((l, dv), |(j, k)| pr.c[j * ldc + k]);
    if !all_finite(c.as_slice().unwrap_or(&[])) && !all_finite(v) {
        return Err(non_finite());
    }
    // K(L, L) by the same kernel (it is symmetric in exact arithmetic; averaging makes it so in
    // floating point too, so `pinv` recognises it as SPD and takes the direct start).
    let mut klt = Vec::new();
    let kl = dispatch(
        isa,
        Project {
            x: lm,
            n: l,
            d,
            lm,
            l,
            v: &[],
            dv: 0,
            kt: &mut klt,
        },
    );
    let mut kll = Array2::from_shape_fn((l, l), |(j, i)| klt[j * kl.ldk + i]);
    let half = E::from_f64(0.5);
    for i in 0..l {
        for j in 0..i {
            let s = (kll[[i, j]] + kll[[j, i]]) * half;
            kll[[i, j]] = s;
            kll[[j, i]] = s;
        }
    }
    let (p, _) = pinv(kll.view(), &opts.pinv)?;
    let w = if opts.normalize {
        // SOFT's symmetric normalisation: D^-1/2 P D^-1/2 with D = diag(K(L, L) 1).
        let dinv: Vec<E> = kll
            .rows()
            .into_iter()
            .map(|r| E::from_f64(1.0 / r.iter().fold(0.0, |s, &x| s + x.to_f64()).sqrt()))
            .collect();
        let scale = |mut m: Array2<E>| {
            for (mut row, &s) in m.rows_mut().into_iter().zip(&dinv) {
                row.mapv_inplace(|x| x * s);
            }
            m
        };
        scale(matmul(p.view(), scale(c).view())?)
    } else {
        matmul(p.view(), c.view())?
    };
    expand_into(isa, scratch, pr.ldk, w.view(), &mut out[..n * dv], n);
    Ok(())
}

fn expand_into<E: GemmElem + Lanes>(
    isa: simd::Isa,
    kt: &[E],
    ldk: usize,
    w: ArrayView2<'_, E>,
    out: &mut [MaybeUninit<E>],
    n: usize,
) {
    let (l, dv) = w.dim();
    let ldw = round_up(dv, CV * 16);
    let mut wp = vec![E::ZERO; l * ldw];
    for (j, row) in w.rows().into_iter().enumerate() {
        for (k, &x) in row.iter().enumerate() {
            wp[j * ldw + k] = x;
        }
    }
    dispatch(
        isa,
        Expand {
            kt,
            ldk,
            l,
            wp: &wp,
            ldw,
            out,
            n,
            dv,
        },
    );
}
