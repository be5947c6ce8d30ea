//! The vector primitives against f64 and against the portable path, on every ISA this CPU has.

use super::exp::{exp, exp_parts_on, ExpPoly};
use super::{dispatch, Elem, Isa, Kernel, Lanes, Simd};

/// Applies `exp` to a slice on one ISA (tails through the masked path).
struct ExpSlice<'a, E> {
    x: &'a [E],
    y: &'a mut [E],
    parts: bool,
}

impl<E: Lanes> Kernel<E> for ExpSlice<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        let w = S::LANES;
        let parts = self.parts;
        let f = |v: S::V| {
            if parts {
                let (p, n) = exp_parts_on::<S>(v, &ExpPoly::softmax(S::splat(E::ONE)));
                S::ldexp(p, n)
            } else {
                exp::<S>(v)
            }
        };
        for (x, y) in self.x.chunks(w).zip(self.y.chunks_mut(w)) {
            // SAFETY: chunks of at most LANES elements; partial ones use masked access.
            unsafe {
                if x.len() == w {
                    S::store(y.as_mut_ptr(), f(S::load(x.as_ptr())));
                } else {
                    let v = f(S::load_partial(x.as_ptr(), x.len(), E::ZERO));
                    S::store_partial(y.as_mut_ptr(), x.len(), v);
                }
            }
        }
    }
}

fn exp_with<E: Lanes>(isa: Isa, x: &[E]) -> Vec<E> {
    let mut y = vec![E::NAN; x.len()];
    dispatch(
        isa,
        ExpSlice {
            x,
            y: &mut y,
            parts: false,
        },
    );
    y
}

/// Error in units of the last place of the f32 result nearest to `r` (normal range).
fn ulp_err_f32(y: f32, r: f64) -> f64 {
    let ulp = 2f64.powi((r.abs().log2().floor() as i32) - 23);
    (y as f64 - r).abs() / ulp
}

fn sweep_f32(step: u32) -> (f64, f32) {
    let lo = -87.3f32;
    let hi = 88.7f32;
    let mut xs = Vec::new();
    // Negative floats from -87.3 up to -0, then +0 up to 88.7, walking the bit patterns.
    let mut b = lo.to_bits();
    while b > 0x8000_0000 {
        xs.push(f32::from_bits(b));
        b = b.saturating_sub(step);
    }
    let mut b = 0u32;
    while f32::from_bits(b) <= hi {
        xs.push(f32::from_bits(b));
        b += step;
    }
    xs.push(lo);
    xs.push(hi);
    let mut worst = (0.0f64, 0.0f32);
    for isa in Isa::supported() {
        for chunk in xs.chunks(1 << 20) {
            let y = exp_with(isa, chunk);
            for (&x, &y) in chunk.iter().zip(&y) {
                let e = ulp_err_f32(y, (x as f64).exp());
                if e > worst.0 {
                    worst = (e, x);
                }
            }
        }
    }
    worst
}

#[test]
fn exp_f32_within_2_ulp_dense_sweep() {
    // Every 61st f32 in [-87.3, 88.7]: about 37 million points on each ISA.
    let (worst, at) = sweep_f32(61);
    assert!(worst <= 2.0, "max error {worst} ULP at x = {at:e}");
}

#[test]
#[ignore = "exhaustive: every f32 in [-87.3, 88.7] on every ISA; run with --ignored (minutes)"]
fn exp_f32_within_2_ulp_exhaustive() {
    let (worst, at) = sweep_f32(1);
    assert!(worst <= 2.0, "max error {worst} ULP at x = {at:e}");
}

#[test]
fn exp_f64_accuracy() {
    // No f128 reference here; compare with the platform libm (itself within 1 ULP) on a dense
    // grid: at most 2 ULP apart.
    let xs: Vec<f64> = (0..2_000_001)
        .map(|i| -708.0 + 1417.0 * i as f64 / 2e6)
        .collect();
    for isa in Isa::supported() {
        let y = exp_with(isa, &xs);
        for (&x, &y) in xs.iter().zip(&y) {
            let r = x.exp();
            let d = (y.to_bits() as i64 - r.to_bits() as i64).abs();
            assert!(
                d <= 2,
                "{isa:?}: exp({x}) = {y:e}, libm {r:e}: {d} ULP apart"
            );
        }
    }
}

#[test]
fn exp_special_values() {
    for isa in Isa::supported() {
        let x = [
            f32::NEG_INFINITY,
            f32::INFINITY,
            f32::NAN,
            -104.5,
            -103.0,
            -88.0,
            88.8,
            0.0,
            -0.0,
        ];
        let y = exp_with(isa, &x);
        assert_eq!(y[0], 0.0, "{isa:?}");
        assert_eq!(y[1], f32::INFINITY, "{isa:?}");
        assert!(y[2].is_nan(), "{isa:?}");
        assert_eq!(y[3], 0.0, "{isa:?}: exp(-104.5) rounds to 0");
        // Gradual underflow: e^-103 = 1.4e-45 is the smallest subnormal; e^-88 is subnormal.
        assert_eq!(y[4], f32::from_bits(1), "{isa:?}");
        let r = (-88.0f64).exp();
        assert!(
            ((y[5] as f64) - r).abs() <= 2f64.powi(-149),
            "{isa:?}: {} vs {r}",
            y[5]
        );
        assert_eq!(y[6], f32::INFINITY, "{isa:?}");
        assert_eq!(y[7], 1.0);
        assert_eq!(y[8], 1.0);
        let xd = [
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NAN,
            -746.0,
            -745.0,
            710.0,
        ];
        let yd = exp_with(isa, &xd);
        assert_eq!(yd[0], 0.0);
        assert_eq!(yd[1], f64::INFINITY);
        assert!(yd[2].is_nan());
        assert_eq!(yd[3], 0.0);
        assert_eq!(yd[4], f64::from_bits(1));
        assert_eq!(yd[5], f64::INFINITY);
    }
}

#[test]
fn exp_parts_recombine() {
    // The softmax kernels' parts (degree-5 polynomial): p 2^n within 4 ULP of e^x (softmax
    // outputs need 2e-6, about 33 ULP; the public `exp` keeps 2 ULP with degree 6).
    let xs: Vec<f32> = (0..200_001).map(|i| -100.0 + 0.001 * i as f32).collect();
    for isa in Isa::supported() {
        let mut y = vec![0.0f32; xs.len()];
        dispatch(
            isa,
            ExpSlice {
                x: &xs,
                y: &mut y,
                parts: true,
            },
        );
        for (&x, &y) in xs.iter().zip(&y) {
            let r = (x as f64).exp();
            if r > 1e-37 && r < f32::MAX as f64 {
                let e = ulp_err_f32(y, r);
                assert!(e <= 4.0, "{isa:?}: parts({x}) -> {y} vs {r}: {e} ULP");
            }
        }
    }
}

#[test]
fn cody_waite_constants() {
    assert_eq!(
        f64::LN2_HI.to_bits() & ((1 << 21) - 1),
        0,
        "f64 LN2_HI needs 21 zero bits"
    );
    let ln2 = std::f64::consts::LN_2;
    assert!(((f64::LN2_HI + f64::LN2_LO) - ln2).abs() < 1e-17);
    assert!(((f32::LN2_HI as f64 + f32::LN2_LO as f64) - ln2).abs() < 1e-13);
}

/// Masked loads and stores touch exactly the first n lanes, on every ISA and every n < LANES.
struct PartialRoundTrip<'a, E> {
    src: &'a [E],
    dst: &'a mut [E],
    n: usize,
}

impl<E: Lanes> Kernel<E> for PartialRoundTrip<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        if self.n >= S::LANES {
            return;
        }
        // SAFETY: src and dst have at least n elements.
        unsafe {
            let v = S::load_partial(self.src.as_ptr(), self.n, E::from_f64(-7.0));
            S::store_partial(self.dst.as_mut_ptr(), self.n, S::add(v, S::splat(E::ONE)));
        }
    }
}

#[test]
fn partial_access_stays_in_bounds() {
    for isa in Isa::supported() {
        for n in 0..16 {
            let src: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let mut dst = vec![100.0f32; n + 1];
            dispatch(
                isa,
                PartialRoundTrip {
                    src: &src,
                    dst: &mut dst[..n],
                    n,
                },
            );
            let lanes = match isa {
                Isa::Scalar => 1,
                Isa::Avx2 => 8,
                Isa::Avx512F => 16,
            };
            for (i, &d) in dst.iter().enumerate() {
                let want = if i < n && n < lanes {
                    i as f32 + 1.0
                } else {
                    100.0
                };
                assert_eq!(d, want, "{isa:?} n={n} i={i}");
            }
        }
    }
}

/// Transposes a LANES x LANES block at strides (ss, ds) with the ISA's `transpose`.
struct TransposeBlock<'a, E> {
    src: &'a [E],
    ss: usize,
    dst: &'a mut [E],
    ds: usize,
}

impl<E: Lanes> Kernel<E> for TransposeBlock<'_, E> {
    type Output = usize;
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) -> usize {
        let w = S::LANES;
        assert!(self.src.len() >= (w - 1) * self.ss + w && self.dst.len() >= (w - 1) * self.ds + w);
        // SAFETY: the assert above covers every row of both blocks.
        unsafe { S::transpose(self.src.as_ptr(), self.ss, self.dst.as_mut_ptr(), self.ds) };
        w
    }
}

fn transpose_on<E: Lanes>() {
    for isa in Isa::supported() {
        for (ss, ds) in [(16usize, 16usize), (17, 33), (40, 21)] {
            let src: Vec<E> = (0..16 * ss).map(|i| E::from_f64(i as f64)).collect();
            let mut dst = vec![E::from_f64(-1.0); 16 * ds];
            let w = dispatch(
                isa,
                TransposeBlock {
                    src: &src,
                    ss,
                    dst: &mut dst,
                    ds,
                },
            );
            for r in 0..w {
                for c in 0..w {
                    assert_eq!(dst[c * ds + r], src[r * ss + c], "{isa:?} ({r},{c})");
                }
                // Nothing past the block's rows is written.
                assert!(dst[r * ds + w..(r + 1) * ds]
                    .iter()
                    .all(|&x| x == E::from_f64(-1.0)));
            }
        }
    }
}

#[test]
fn transpose_matches_definition() {
    transpose_on::<f32>();
    transpose_on::<f64>();
}

#[test]
fn prefetch_run_stays_inside_the_slice() {
    // Any run index (also past the last run and huge), empty slices and odd sizes: hints only,
    // no access outside the slice (under Miri or a sanitizer an out-of-bounds `add` would show).
    let xs = vec![1.0f32; 1000];
    assert_eq!(super::prefetch_step(4000, 7), 576);
    assert_eq!(super::prefetch_step(0, 0), 0);
    for parts in [0usize, 1, 3, 7] {
        let step = super::prefetch_step(4000, parts);
        assert!(step * parts.max(1) >= 4000 && step.is_multiple_of(64));
        for k in (0..parts + 2).chain([usize::MAX]) {
            super::prefetch_run(&xs, k, step);
            super::prefetch_run(&xs[..1], k, step);
            super::prefetch_run::<f32>(&[], k, step);
            super::prefetch_run(&xs, k, usize::MAX);
        }
    }
}
