//! Products 1 and 2 of a SOFT head, one tile of tokens at a time: pack q^T (tokens in lanes),
//! K^T = exp(min(L q^T - a - b, 0)) for every landmark block, and C += K^T v for the tile while
//! its K^T is still in L1.
//!
//! The kernel is formed in base 2, K = 2^(min(L' q^T - a' - b', 0)) with log2 e folded into the
//! landmarks and both half squared norms (L' = log2 e L, ...; in E, so the exponent carries
//! relative errors of a few units of E's roundoff, as the distances themselves already do:
//! 2 to 3 ULP of K at K = e^-20 in f32), and exponentiated in a pass over the
//! tile's panel after its distances. Base 2 needs no FMA for the range reduction (three fewer per
//! vector than e^x, whose FMAs compete with the products'), and the separate pass interleaves
//! eight independent exponentials where the block epilogue could offer only a few (the A/B
//! figures: benches/README.md, soft_attention).

use super::blocks::{gauss_block, landmark_block, project_block, wide, CV, TOKEN_VECTORS};
use crate::linalg::padded;
use crate::simd::exp::{exp2_nonpositive_run, ExpPoly};
use crate::simd::{prefetch_run, prefetch_step, Elem, Kernel, Lanes, Simd};

pub(super) fn round_up(x: usize, m: usize) -> usize {
    x.div_ceil(m) * m
}

/// The layout of K^T (in the caller's buffer) and C = K^T v. K^T is stored in panels, one per
/// tile of tokens: panel t holds rows j < lp (landmarks padded to the landmark block) of `tile`
/// tokens each, so K[i, j] is at (i / tile) * panel + j * tile + i % tile.
pub(super) struct Projection<E> {
    pub(super) tile: usize,
    pub(super) panel: usize,
    pub(super) c: Vec<E>,
    pub(super) ldc: usize,
    /// Sum of a * 0 over every token: NaN when some squared norm is not finite.
    pub(super) norm_check: E,
}

impl<E: Elem> Projection<E> {
    /// `square` in f64, rows padded to `linalg::padded(l)` with zeros: the layout the Cholesky
    /// factorisation takes. For f32 K, (K + K^T) / 2 is exact in f64 (the factorisation gets
    /// the average before rounding to E) and rounds to `square`'s value; for f64 it is that
    /// value. l >= 1.
    pub(super) fn square_f64(&self, kt: &[E], l: usize) -> Vec<f64> {
        self.symmetrised(kt, l, padded(l), |x| x.to_f64(), 0.5)
    }

    /// K(x, L) for a projection of x = L itself (n = l tokens), symmetrised: (K + K^T) / 2,
    /// l x l, rows contiguous. Symmetric in exact arithmetic; averaging makes it exactly so, as
    /// the SPD inverse requires.
    pub(super) fn square(&self, kt: &[E], l: usize) -> Vec<E> {
        self.symmetrised(kt, l, l, |x| x, E::from_f64(0.5))
    }

    /// (K + K^T) / 2 in T (entries converted by `to`), l rows of `ld` >= l, zero past column l.
    fn symmetrised<T: Elem>(
        &self,
        kt: &[E],
        l: usize,
        ld: usize,
        to: impl Fn(E) -> T,
        half: T,
    ) -> Vec<T> {
        let mut k = vec![T::ZERO; l * ld];
        // Row j of K^T is column j of K: a contiguous run of each panel.
        for (j, row) in k.chunks_exact_mut(ld.max(1)).enumerate() {
            for (t, part) in row[..l].chunks_mut(self.tile).enumerate() {
                let src = &kt[t * self.panel + j * self.tile..][..part.len()];
                part.iter_mut().zip(src).for_each(|(o, &x)| *o = to(x));
            }
        }
        for i in 0..l {
            for j in 0..i {
                let s = (k[i * ld + j] + k[j * ld + i]) * half;
                k[i * ld + j] = s;
                k[j * ld + i] = s;
            }
        }
        k
    }
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
            project::<S, 7, TOKEN_VECTORS>(self)
        } else {
            project::<S, 4, TOKEN_VECTORS>(self)
        }
    }
}

#[inline(always)]
fn project<S: Simd, const JB: usize, const TV: usize>(p: Project<'_, S::E>) -> Projection<S::E> {
    debug_assert!(JB == landmark_block::<S>() && TV == TOKEN_VECTORS);
    let (n, d, l, dv) = (p.n, p.d, p.l, p.dv);
    let w = S::LANES;
    let tile = TV * w;
    let lp = round_up(l, JB);
    let zero = S::E::ZERO;
    // Landmarks padded with zero rows to whole blocks, and their half squared norms, all times
    // log2 e (as are the tokens' half squared norms, below).
    let mut lmp = vec![zero; lp * d];
    for (o, &x) in lmp.iter_mut().zip(&p.lm[..l * d]) {
        *o = x * S::E::LOG2E;
    }
    let half = S::E::from_f64(0.5 * std::f64::consts::LOG2_E);
    let b: Vec<S::E> = p.lm[..l * d]
        .chunks_exact(d.max(1))
        .map(|r| r.iter().fold(zero, |s, &x| s + x * x) * half)
        .chain(std::iter::repeat(zero))
        .take(lp)
        .collect();
    // Every element of K^T is written (tiles cover whole panels) before it is read.
    let panel = lp * tile;
    let kt = p.kt;
    if kt.len() < n.div_ceil(tile) * panel {
        kt.resize(n.div_ceil(tile) * panel, zero);
    }
    let ldc = round_up(dv, CV * w);
    let mut c = vec![zero; lp * ldc];
    let mut qt = vec![zero; d * tile];
    let poly = ExpPoly::<S>::softmax_exp2(S::splat(S::E::ONE));
    let (vz, vhalf) = (S::splat(zero), S::splat(half));
    let mut check = vz;
    // The next tile's q and v rows are prefetched in one run per landmark block.
    let blocks = lp / JB;
    let size = std::mem::size_of::<S::E>();
    let (qstep, vstep) = (
        prefetch_step(tile * d * size, blocks),
        prefetch_step(tile * dv * size, blocks),
    );
    for i0 in (0..n).step_by(tile) {
        let tokens = tile.min(n - i0);
        let mut a = [vz; TV];
        pack_tile::<S, TV>(&p.x[i0 * d..(i0 + tokens) * d], d, &mut qt, &mut a);
        for at in a.iter_mut() {
            *at = S::mul(*at, vhalf);
            check = S::add(check, S::mul(*at, vz));
        }
        // The next tile's q and v rows: v is read only once per tile, in a burst, after the
        // distances, where the hardware prefetchers (which follow misses) fall behind.
        let next = (i0 + tile).min(n)..(i0 + 2 * tile).min(n);
        let (qn, vn) = (
            &p.x[next.start * d..next.end * d],
            &p.v[next.start * dv..next.end * dv],
        );
        for jb in (0..lp).step_by(JB) {
            prefetch_run(vn, jb / JB, vstep);
            prefetch_run(qn, jb / JB, qstep);
            // SAFETY: qt holds d * tile, lmp rows jb..jb+JB < lp, b has lp, the tile's panel
            // (i0 / tile) has rows jb..jb+JB < lp of `tile` elements.
            unsafe {
                gauss_block::<S, JB, TV>(
                    qt.as_ptr(),
                    d,
                    lmp.as_ptr().add(jb * d),
                    b.as_ptr().add(jb),
                    &a,
                    kt.as_mut_ptr().add(i0 / tile * panel + jb * tile),
                    tile,
                );
            }
        }
        // SAFETY: the tile's panel holds lp * tile = lp * TV vectors.
        unsafe {
            exp2_nonpositive_run::<S, 8>(kt.as_mut_ptr().add(i0 / tile * panel), lp * TV, &poly);
        }
        for c0 in (0..dv).step_by(CV * w) {
            let cols = (CV * w).min(dv - c0);
            for jb in (0..lp).step_by(JB) {
                let kp = kt[i0 / tile * panel + jb * tile..].as_ptr();
                let vp = p.v[i0 * dv + c0..].as_ptr();
                let cp = c[jb * ldc + c0..].as_mut_ptr();
                // SAFETY: rows jb..jb+JB of the panel and of c exist; v rows i0..i0+tokens have dv
                // elements, of which columns c0..c0+cols are read.
                unsafe {
                    if cols == CV * w {
                        project_block::<S, JB, true>(kp, tile, vp, dv, cols, tokens, cp, ldc);
                    } else {
                        project_block::<S, JB, false>(kp, tile, vp, dv, cols, tokens, cp, ldc);
                    }
                }
            }
        }
    }
    Projection {
        tile,
        panel,
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
