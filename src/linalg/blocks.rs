//! Register-blocked small products C (+)= op(A) B for the skinny shapes of the attention family
//! (K^T V and Q S with d, dv ~ 64; P V with a 256-key tile), where the general GEMM spends
//! much of its time packing. B has contiguous rows (the values, the state), so a block of MR
//! rows x NV vectors of C stays in registers for the whole reduction, each step loading NV
//! vectors of one row of B and broadcasting MR elements of A (BLIS/GotoBLAS micro-kernels
//! without the packing). op(A) is read through strides, so K^T needs no transposed copy.
//!
//! Block sizes: AVX-512 has 32 vector registers: 6 x 4 accumulators, 4 B vectors and a
//! broadcast fit, and 24 independent FMAs per step cover latency x ports. AVX2 and the portable
//! path have 16: 4 x 2 accumulators.

use crate::simd::{dispatch, Elem, Isa, Kernel, Lanes, Simd};
use crate::softmax::online_tile::{load_upto, store_upto};

/// The shape and strides of one product: C (m x n, row stride ldc) (+)= op(A) B with op(A)
/// m x k at element (i, l) = a[i * ars + l * acs] and B k x n at b[l * ldb + j].
#[derive(Clone, Copy, Debug)]
pub struct SmallGemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub ars: usize,
    pub acs: usize,
    pub ldb: usize,
    pub ldc: usize,
    /// C += (true) or C = (false).
    pub accumulate: bool,
}

impl SmallGemm {
    /// C (m x n) = A (m x k) B (k x n), everything row-major and packed.
    pub fn rows(m: usize, n: usize, k: usize) -> Self {
        SmallGemm {
            m,
            n,
            k,
            ars: k,
            acs: 1,
            ldb: n,
            ldc: n,
            accumulate: false,
        }
    }

    /// C (m x n) = A^T B where A is stored k x m row-major (A^T's element (i, l) = a[l * m + i]).
    pub fn at_b(m: usize, n: usize, k: usize) -> Self {
        SmallGemm {
            m,
            n,
            k,
            ars: 1,
            acs: m,
            ldb: n,
            ldc: n,
            accumulate: false,
        }
    }

    pub fn accumulate(self) -> Self {
        SmallGemm {
            accumulate: true,
            ..self
        }
    }

    fn check<E>(&self, a: &[E], b: &[E], c: &[E]) {
        let last = |rows: usize, rs: usize, cols: usize, cs: usize| {
            if rows == 0 || cols == 0 {
                0
            } else {
                (rows - 1) * rs + (cols - 1) * cs + 1
            }
        };
        assert!(
            a.len() >= last(self.m, self.ars, self.k, self.acs)
                && b.len() >= last(self.k, self.ldb, self.n, 1)
                && c.len() >= last(self.m, self.ldc, self.n, 1),
            "small_gemm: a slice is shorter than its shape"
        );
    }
}

/// The product on the active ISA.
pub fn small_gemm<E: Lanes>(g: SmallGemm, a: &[E], b: &[E], c: &mut [E]) {
    small_gemm_with(crate::simd::active(), g, a, b, c)
}

/// The product on `isa`.
///
/// # Panics
/// When a slice is shorter than its shape (a defect of the caller, never of the input).
pub fn small_gemm_with<E: Lanes>(isa: Isa, g: SmallGemm, a: &[E], b: &[E], c: &mut [E]) {
    g.check(a, b, c);
    dispatch(isa, Product { g, a, b, c });
}

struct Product<'a, E> {
    g: SmallGemm,
    a: &'a [E],
    b: &'a [E],
    c: &'a mut [E],
}

impl<E: Lanes> Kernel<E> for Product<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        let wide = S::LANES * std::mem::size_of::<E>() == 64;
        let g = self.g;
        let (pa, pb, pc) = (self.a.as_ptr(), self.b.as_ptr(), self.c.as_mut_ptr());
        // SAFETY (both calls): `check` bounded every element of the stated shapes.
        unsafe {
            if wide {
                blocks::<S, 6, 4>(g, pa, pb, pc);
            } else {
                blocks::<S, 4, 2>(g, pa, pb, pc);
            }
        }
    }
}

/// Bytes of B one pass of `panels` keeps in L1 across its row blocks: half the smallest L1d of
/// the x86 kinds softcore targets (32 KiB), leaving room for A's rows and C.
const B_PANEL_BYTES: usize = 16 * 1024;

/// The reduction in passes of KC rows of B, so a KC x (NV vectors) panel of B stays in L1
/// while every row block of A streams past it (a 256 x 64 f32 V tile is 64 KiB: one pass
/// over all of it per row block would read B from L2). C holds the exact partial sums between
/// passes (the accumulators are in E), so the result is bitwise that of one pass.
///
/// # Safety
/// The operands hold every element of the shapes and strides in `g`.
#[inline(always)]
unsafe fn blocks<S: Simd, const MR: usize, const NV: usize>(
    g: SmallGemm,
    a: *const S::E,
    b: *const S::E,
    c: *mut S::E,
) {
    let kc = (B_PANEL_BYTES / (NV * S::LANES * std::mem::size_of::<S::E>())).max(8);
    let mut l0 = 0;
    loop {
        let l1 = (l0 + kc).min(g.k);
        let part = SmallGemm {
            k: l1 - l0,
            accumulate: g.accumulate || l0 > 0,
            ..g
        };
        // SAFETY: rows l0..l1 of B and columns l0..l1 of op(A) lie inside the shapes.
        unsafe { panels::<S, MR, NV>(part, a.add(l0 * g.acs), b.add(l0 * g.ldb), c) };
        l0 = l1;
        if l0 >= g.k {
            break;
        }
    }
}

/// Every MR x NV block of C, then the leftover rows as one smaller block (a 64-row product
/// on 6-row blocks leaves 4 rows: one at a time they would load a B row per 4 FMAs).
///
/// # Safety
/// The operands hold every element of the shapes and strides in `g`.
#[inline(always)]
unsafe fn panels<S: Simd, const MR: usize, const NV: usize>(
    g: SmallGemm,
    a: *const S::E,
    b: *const S::E,
    c: *mut S::E,
) {
    let width = NV * S::LANES;
    let mut j0 = 0;
    while j0 < g.n {
        let cols = (g.n - j0).min(width);
        // SAFETY: rows i0.. i0 + R and columns j0.. j0 + cols lie inside the shapes.
        unsafe {
            let at = |i0: usize| (a.add(i0 * g.ars), b.add(j0), c.add(i0 * g.ldc + j0));
            let mut i0 = 0;
            while i0 + MR <= g.m {
                let (a, b, c) = at(i0);
                block_cols::<S, MR, NV>(g, a, b, c, cols);
                i0 += MR;
            }
            let (a, b, c) = at(i0);
            match g.m - i0 {
                0 => {}
                1 => block_cols::<S, 1, NV>(g, a, b, c, cols),
                2 => block_cols::<S, 2, NV>(g, a, b, c, cols),
                3 => block_cols::<S, 3, NV>(g, a, b, c, cols),
                4 => block_cols::<S, 4, NV>(g, a, b, c, cols),
                r => {
                    // MR = 6: five rows left.
                    debug_assert!(r == 5 && MR == 6);
                    block_cols::<S, 5, NV>(g, a, b, c, cols)
                }
            }
        }
        j0 += width;
    }
}

/// `block` with the column count fixed at the full width where it is (no masked loads or
/// stores in the reduction), and masked at the right edge.
///
/// # Safety
/// As `block`.
#[inline(always)]
unsafe fn block_cols<S: Simd, const R: usize, const NV: usize>(
    g: SmallGemm,
    a: *const S::E,
    b: *const S::E,
    c: *mut S::E,
    cols: usize,
) {
    // SAFETY: forwarded.
    unsafe {
        if cols == NV * S::LANES {
            block::<S, R, NV, true>(g, a, b, c, cols)
        } else {
            block::<S, R, NV, false>(g, a, b, c, cols)
        }
    }
}

/// One R x NV block: `cols` <= NV * LANES columns of R rows of C.
///
/// # Safety
/// a: R rows (stride ars) of k elements (stride acs); b: k rows (stride ldb) of `cols`; c: R
/// rows (stride ldc) of `cols`.
#[inline(always)]
unsafe fn block<S: Simd, const R: usize, const NV: usize, const FULL: bool>(
    g: SmallGemm,
    a: *const S::E,
    b: *const S::E,
    c: *mut S::E,
    cols: usize,
) {
    let w = S::LANES;
    let lane = |v: usize| {
        if FULL {
            w
        } else {
            cols.saturating_sub(v * w).min(w)
        }
    };
    let zero = S::splat(S::E::ZERO);
    let mut acc = [[zero; NV]; R];
    // SAFETY (whole body): lanes beyond `cols` are neither read nor written (load_upto and
    // store_upto of lane(v) elements); every row and k index is inside the caller's shapes.
    unsafe {
        if g.accumulate {
            for (r, row) in acc.iter_mut().enumerate() {
                for (v, x) in row.iter_mut().enumerate() {
                    *x = load_upto::<S>(c.add(r * g.ldc + v * w), lane(v), S::E::ZERO);
                }
            }
        }
        for l in 0..g.k {
            let brow = b.add(l * g.ldb);
            let bv: [S::V; NV] =
                std::array::from_fn(|v| load_upto::<S>(brow.add(v * w), lane(v), S::E::ZERO));
            for (r, row) in acc.iter_mut().enumerate() {
                let x = S::splat(*a.add(r * g.ars + l * g.acs));
                for v in 0..NV {
                    row[v] = S::fma(x, bv[v], row[v]);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, &x) in row.iter().enumerate() {
                store_upto::<S>(c.add(r * g.ldc + v * w), lane(v), x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(g: SmallGemm, a: &[f64], b: &[f64], c0: &[f64]) -> Vec<f64> {
        let mut c = c0.to_vec();
        for i in 0..g.m {
            for j in 0..g.n {
                let s: f64 = (0..g.k)
                    .map(|l| a[i * g.ars + l * g.acs] * b[l * g.ldb + j])
                    .sum();
                let x = &mut c[i * g.ldc + j];
                *x = if g.accumulate { *x + s } else { s };
            }
        }
        c
    }

    fn run_case<E: Lanes>(isa: Isa, g: SmallGemm) {
        let val = |i: usize| ((i * 37 + 11) % 23) as f64 / 8.0 - 1.4;
        let alen = g.m.saturating_sub(1) * g.ars + g.k.saturating_sub(1) * g.acs + 1;
        let a: Vec<f64> = (0..alen).map(val).collect();
        let b: Vec<f64> = (0..g.k.max(1) * g.ldb).map(|i| val(i + 5)).collect();
        let c0: Vec<f64> = (0..g.m.max(1) * g.ldc).map(|i| val(i + 9)).collect();
        let want = naive(g, &a, &b, &c0);
        let conv = |x: &[f64]| x.iter().map(|&v| E::from_f64(v)).collect::<Vec<E>>();
        let mut c = conv(&c0);
        small_gemm_with(isa, g, &conv(&a), &conv(&b), &mut c);
        for (i, (&got, &w)) in c.iter().zip(&want).enumerate() {
            let tol = if std::mem::size_of::<E>() == 4 {
                1e-5
            } else {
                1e-12
            } * (g.k as f64 + 1.0);
            assert!(
                (got.to_f64() - w).abs() <= tol * (1.0 + w.abs()),
                "{isa:?} {g:?} at {i}: {} vs {w}",
                got.to_f64()
            );
        }
    }

    #[test]
    fn matches_naive_on_every_isa_around_the_blocks() {
        crate::test_support::for_each_isa(|isa| {
            for m in [1, 3, 4, 5, 6, 7, 12, 13] {
                for n in [1, 7, 8, 15, 16, 17, 33, 64, 65, 70] {
                    // k past one and several B passes (64 rows at 512-bit, 256 at 256-bit).
                    for k in [0, 1, 5, 64, 65, 130, 300] {
                        let g = SmallGemm::rows(m, n, k);
                        run_case::<f32>(isa, g);
                        run_case::<f64>(isa, g.accumulate());
                        let t = SmallGemm::at_b(m, n, k);
                        run_case::<f32>(isa, t.accumulate());
                        run_case::<f64>(isa, t);
                        // Padded rows of C and B (strides beyond n).
                        let p = SmallGemm {
                            ldb: n + 3,
                            ldc: n + 5,
                            ..g
                        };
                        run_case::<f32>(isa, p);
                    }
                }
            }
        });
    }
}
