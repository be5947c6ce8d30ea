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

use super::blocks::{expand_block, expand_rows, wide, CV};
use super::project::Project;
use super::weights::weights;
use super::SoftOptions;
use crate::error::{Error, Result};
use crate::linalg::GemmElem;
use crate::simd::{self, all_finite, dispatch, Isa, Kernel, Lanes, Simd};
use ndarray::Array2;
use std::mem::MaybeUninit;

/// Product 3: out (n x dv, contiguous) = K W, with W padded to whole column blocks and K^T in
/// the projection's panels.
struct Expand<'a, E> {
    kt: &'a [E],
    tile: usize,
    panel: usize,
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
        } else if S::LANES == 1 {
            expand::<S, 3>(self)
        } else {
            expand::<S, 6>(self)
        }
    }
}

#[inline(always)]
fn expand<S: Simd, const IB: usize>(e: Expand<'_, S::E>) {
    debug_assert!(IB == expand_rows::<S>());
    let (n, dv, tile) = (e.n, e.dv, e.tile);
    // Blocks never straddle panels (and so never read past one).
    assert!(tile.is_multiple_of(IB) && e.kt.len() >= n.div_ceil(tile) * e.panel);
    for c0 in (0..dv).step_by(CV * S::LANES) {
        let cols = (CV * S::LANES).min(dv - c0);
        for i0 in (0..n).step_by(IB) {
            let rows = IB.min(n - i0);
            // SAFETY: the panel of i0 has rows j < l of `tile` >= i0 % tile + IB elements; wp
            // rows hold ldw >= c0 + CV * LANES; out rows i0 .. i0 + rows have dv >= c0 + cols.
            unsafe {
                expand_block::<S, IB>(
                    e.kt.as_ptr().add(i0 / tile * e.panel + i0 % tile),
                    tile,
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

/// Buffers a worker reuses across the heads it runs (grown as needed, never shrunk): K^T of the
/// tokens (n x l, the largest allocation of a head) and of the landmarks (l x l).
#[derive(Default)]
pub struct HeadScratch<E> {
    kt: Vec<E>,
    klt: Vec<E>,
}

fn non_finite() -> Error {
    Error::Invalid("soft_attention: q or v contains NaN or infinity".into())
}

/// SOFT attention for one head: q (n x d), v (n x dv), landmarks (l x d, l >= 1), all
/// contiguous; writes out (n x dv, contiguous).
#[allow(clippy::too_many_arguments)]
pub fn soft_head<E: GemmElem + Lanes>(
    q: &[E],
    v: &[E],
    lm: &[E],
    dims: (usize, usize, usize, usize),
    opts: &SoftOptions,
    out: &mut [MaybeUninit<E>],
    scratch: &mut HeadScratch<E>,
) -> Result<()> {
    soft_head_with(simd::active(), q, v, lm, dims, opts, out, scratch)
}

/// `soft_head` on a given ISA (one `Isa::supported()` returns; tests compare them all).
#[allow(clippy::too_many_arguments)]
pub(super) fn soft_head_with<E: GemmElem + Lanes>(
    isa: Isa,
    q: &[E],
    v: &[E],
    lm: &[E],
    (n, d, dv, l): (usize, usize, usize, usize),
    opts: &SoftOptions,
    out: &mut [MaybeUninit<E>],
    scratch: &mut HeadScratch<E>,
) -> Result<()> {
    if l == 0 {
        return Err(Error::Invalid("soft_head: no landmarks (l = 0)".into()));
    }
    let (x, v) = (&q[..n * d], &v[..n * dv]);
    let HeadScratch { kt, klt } = scratch;
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
            kt: &mut *kt,
        },
    );
    if !pr.norm_check.is_finite() && !all_finite(x) {
        return Err(non_finite());
    }
    let ldc = pr.ldc;
    let c_finite = (0..l).all(|j| all_finite(&pr.c[j * ldc..j * ldc + dv]));
    if !c_finite && !all_finite(v) {
        return Err(non_finite());
    }
    // K(L, L) by the same kernel, so that landmarks equal to tokens give identical kernel values.
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
            kt: &mut *klt,
        },
    );
    let kll_e = || {
        Array2::from_shape_vec((l, l), kl.square(klt, l)).map_err(|e| Error::Invalid(e.to_string()))
    };
    let w = weights(isa, kl.square_f64(klt, l), l, kll_e, &pr.c, ldc, dv, opts)?;
    dispatch(
        isa,
        Expand {
            kt: kt.as_slice(),
            tile: pr.tile,
            panel: pr.panel,
            l,
            wp: &w.wp,
            ldw: w.ldw,
            out: &mut out[..n * dv],
            n,
            dv,
        },
    );
    Ok(())
}
