//! Register-blocked micro-kernels of one SOFT head, written once over `Simd` (every ISA, f32 and
//! f64). The three n x l x d products of the formula are all skinny (l ~ 49, d ~ 32), where a
//! general GEMM spends much of its time packing and in edge cases; here each product keeps a
//! block of outputs in registers for its whole reduction, as the micro-kernels of BLIS/GotoBLAS
//! do, and the kernel values K^T are laid out for all three at once: in panels of one tile of
//! tokens each (every landmark's values for the tile contiguous, one panel after another), so
//! all three products read K^T from a few KiB of consecutive memory.
//!
//! Block sizes: AVX-512 has 32 vector registers, AVX2 and the scalar path 16. A block of JB x TV
//! accumulators plus the TV (or CV) operand vectors and one broadcast must fit, and there must be
//! more than latency x ports = 8 independent accumulators to keep both FMA pipes busy.

use crate::simd::{Elem, Simd};

/// Whether this ISA has 32 vector registers (64-byte vectors: AVX-512).
#[inline(always)]
pub(super) fn wide<S: Simd>() -> bool {
    S::LANES * std::mem::size_of::<S::E>() == 64
}

/// Landmarks per block in the distance and projection products.
#[inline(always)]
pub(super) fn landmark_block<S: Simd>() -> usize {
    if wide::<S>() {
        7
    } else {
        4
    }
}

/// Token vectors per tile in the distance product (the tile is TV * LANES tokens). Three on
/// every ISA, so a tile is a whole number of expansion blocks.
pub(super) const TOKEN_VECTORS: usize = 3;

/// Output columns per block in the projection and expansion products, in vectors.
pub(super) const CV: usize = 2;

/// Tokens per block in the expansion product: a divisor of the tile (48 tokens of f32 on
/// AVX-512, 24 on AVX2, 3 on the scalar path), so a block never straddles two panels of K^T.
#[inline(always)]
pub(super) fn expand_rows<S: Simd>() -> usize {
    if wide::<S>() {
        12
    } else if S::LANES == 1 {
        3
    } else {
        6
    }
}

/// One JB x (TV * LANES) block of the exponents of K^T: rows `lm` (JB landmarks, stride d),
/// tokens from the packed tile `qt` (d rows of TV vectors); stores min(q.l - a - b, 0) with a, b
/// the half squared norms, where the caller has scaled the landmarks, a and b by log2 e, so
/// that 2^ of it (a pass of its own, `exp2_nonpositive_run`) is the Gaussian kernel with squared
/// distances clamped at 0.
///
/// # Safety
/// `qt` holds d * TV * LANES elements, `lm` JB * d, `b` JB, and `out` rows j < JB of TV * LANES
/// elements at stride `ldk`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) unsafe fn gauss_block<S: Simd, const JB: usize, const TV: usize>(
    qt: *const S::E,
    d: usize,
    lm: *const S::E,
    b: *const S::E,
    a: &[S::V; TV],
    out: *mut S::E,
    ldk: usize,
) {
    let w = S::LANES;
    let zero = S::splat(S::E::ZERO);
    // The sums start at -(a + b), so the epilogue needs no subtractions.
    let mut acc = [[zero; TV]; JB];
    // SAFETY (whole body): the caller guarantees every offset below is inside its buffer.
    unsafe {
        for (j, row) in acc.iter_mut().enumerate() {
            let bj = S::splat(*b.add(j));
            for t in 0..TV {
                row[t] = S::sub(S::sub(zero, a[t]), bj);
            }
        }
        for k in 0..d {
            let mut x = [zero; TV];
            for (t, xt) in x.iter_mut().enumerate() {
                *xt = S::load(qt.add(k * TV * w + t * w));
            }
            for (j, row) in acc.iter_mut().enumerate() {
                let y = S::splat(*lm.add(j * d + k));
                for t in 0..TV {
                    row[t] = S::fma(y, x[t], row[t]);
                }
            }
        }
        for (j, row) in acc.iter().enumerate() {
            for (t, &r) in row.iter().enumerate() {
                S::store(out.add(j * ldk + t * w), S::min(zero, r));
            }
        }
    }
}

/// C[j, :] += sum over `tokens` tokens of K^T[j, i] v[i, :] for JB landmarks and the first `cols`
/// (<= CV * LANES) columns; `FULL` when cols == CV * LANES (no masked loads).
///
/// # Safety
/// `kt` rows j < JB hold `tokens` elements at stride `ldk`; v rows i < tokens hold `cols`
/// elements at stride `ldv`; `c` rows j < JB hold CV * LANES elements at stride `ldc`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) unsafe fn project_block<S: Simd, const JB: usize, const FULL: bool>(
    kt: *const S::E,
    ldk: usize,
    v: *const S::E,
    ldv: usize,
    cols: usize,
    tokens: usize,
    c: *mut S::E,
    ldc: usize,
) {
    let w = S::LANES;
    let zero = S::splat(S::E::ZERO);
    let mut acc = [[zero; CV]; JB];
    // SAFETY (whole body): the caller guarantees every offset below is inside its buffer.
    unsafe {
        for i in 0..tokens {
            let mut x = [zero; CV];
            for (u, xu) in x.iter_mut().enumerate() {
                *xu = if FULL {
                    S::load(v.add(i * ldv + u * w))
                } else {
                    load_cols::<S>(v.add(i * ldv), u, cols)
                };
            }
            for (j, row) in acc.iter_mut().enumerate() {
                let y = S::splat(*kt.add(j * ldk + i));
                for u in 0..CV {
                    row[u] = S::fma(y, x[u], row[u]);
                }
            }
        }
        for (j, row) in acc.iter().enumerate() {
            for (u, &r) in row.iter().enumerate() {
                let p = c.add(j * ldc + u * w);
                S::store(p, S::add(S::load(p), r));
            }
        }
    }
}

/// Vector u of a row's first `cols` elements, zero past them (never reads past them).
///
/// # Safety
/// `row[..cols]` must be readable.
#[inline(always)]
pub(super) unsafe fn load_cols<S: Simd>(row: *const S::E, u: usize, cols: usize) -> S::V {
    let w = S::LANES;
    let lo = u * w;
    // SAFETY: reads only row[lo..min(cols, lo + w)], inside the caller's row.
    unsafe {
        if lo + w <= cols {
            S::load(row.add(lo))
        } else if lo < cols {
            S::load_partial(row.add(lo), cols - lo, S::E::ZERO)
        } else {
            S::splat(S::E::ZERO)
        }
    }
}

/// Stores the lanes of vector u that fall in a row's first `cols` elements (never writes past).
///
/// # Safety
/// `row[..cols]` must be writable.
#[inline(always)]
pub(super) unsafe fn store_cols<S: Simd>(row: *mut S::E, u: usize, cols: usize, x: S::V) {
    let w = S::LANES;
    let lo = u * w;
    // SAFETY: writes only row[lo..min(cols, lo + w)], inside the caller's row.
    unsafe {
        if lo + w <= cols {
            S::store(row.add(lo), x);
        } else if lo < cols {
            S::store_partial(row.add(lo), cols - lo, x);
        }
    }
}

/// out[i, :] = sum over j < l of K^T[j, i] W[j, :] for IB tokens (the first `rows` are stored)
/// and the first `cols` (<= CV * LANES) columns.
///
/// # Safety
/// `kt` rows j < l hold IB elements at stride `ldk`; `wp` rows j < l hold CV * LANES elements at
/// stride `ldw`; `out` rows i < rows hold `cols` elements at stride `ldo`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) unsafe fn expand_block<S: Simd, const IB: usize>(
    kt: *const S::E,
    ldk: usize,
    l: usize,
    wp: *const S::E,
    ldw: usize,
    out: *mut S::E,
    ldo: usize,
    rows: usize,
    cols: usize,
) {
    let w = S::LANES;
    let zero = S::splat(S::E::ZERO);
    let mut acc = [[zero; CV]; IB];
    // SAFETY (whole body): the caller guarantees every offset below is inside its buffer.
    unsafe {
        for j in 0..l {
            let mut x = [zero; CV];
            for (u, xu) in x.iter_mut().enumerate() {
                *xu = S::load(wp.add(j * ldw + u * w));
            }
            for (t, row) in acc.iter_mut().enumerate() {
                let y = S::splat(*kt.add(j * ldk + t));
                for u in 0..CV {
                    row[u] = S::fma(y, x[u], row[u]);
                }
            }
        }
        for (t, row) in acc.iter().enumerate().take(rows) {
            for (u, &r) in row.iter().enumerate() {
                store_cols::<S>(out.add(t * ldo), u, cols, r);
            }
        }
    }
}
