//! `exp2_nonpositive_run` (the SOFT kernel's base-2 exponential) against f64 `exp2`, on every ISA
//! this CPU has, for f32 and f64.

use super::exp::{exp2_nonpositive_run, ExpPoly};
use super::{dispatch, Isa, Kernel, Lanes, Simd};

/// 2^t in place over a slice of whole vectors, U = 8 at a time (the rest one by one).
struct Exp2Slice<'a, E>(&'a mut [E]);

impl<E: Lanes> Kernel<E> for Exp2Slice<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        let count = self.0.len() / S::LANES;
        let poly = ExpPoly::<S>::softmax_exp2(S::splat(E::ONE));
        // SAFETY: count whole vectors of the slice.
        unsafe { exp2_nonpositive_run::<S, 8>(self.0.as_mut_ptr(), count, &poly) }
    }
}

/// 2^t on one ISA; `t` is padded with zeros to whole vectors of the widest ISA (and of 8 of
/// them plus a few, so both loops of the run are taken).
fn exp2_with<E: Lanes>(isa: Isa, t: &[E]) -> Vec<E> {
    let mut y = t.to_vec();
    y.resize(t.len().next_multiple_of(16), E::ZERO);
    dispatch(isa, Exp2Slice(&mut y));
    y.truncate(t.len());
    y
}

#[test]
fn exp2_f32_against_f64() {
    // Normal results within 4 ULP (the softmax polynomial's 1.8 ULP plus the rounding of its
    // coefficients times ln2^k); subnormal ones within 4 units of 2^-149 (the same absolute
    // error as in the lowest normal binade); below half the smallest subnormal, zero.
    let ts: Vec<f32> = (0..=1_600_003).map(|i| -0.0001 * i as f32).collect();
    for isa in Isa::supported() {
        let y = exp2_with(isa, &ts);
        for (&t, &y) in ts.iter().zip(&y) {
            let r = (t as f64).exp2();
            let ok = if r >= 2f64.powi(-126) {
                let ulp = 2f64.powi(r.log2().floor() as i32 - 23);
                (y as f64 - r).abs() <= 4.0 * ulp
            } else if r >= 2f64.powi(-150) {
                (y as f64 - r).abs() <= 4.0 * 2f64.powi(-149)
            } else {
                y == 0.0
            };
            assert!(ok, "{isa:?}: 2^{t} = {y:e}, f64 {r:e}");
        }
    }
}

#[test]
fn exp2_f64_against_f64() {
    let ts: Vec<f64> = (0..=1_100_003).map(|i| -0.001 * i as f64).collect();
    for isa in Isa::supported() {
        let y = exp2_with(isa, &ts);
        for (&t, &y) in ts.iter().zip(&y) {
            let r = t.exp2();
            let ok = if r >= f64::MIN_POSITIVE {
                (y.to_bits() as i64 - r.to_bits() as i64).abs() <= 4
            } else if r >= 2f64.powi(-1075) {
                (y - r).abs() <= 4.0 * 2f64.powi(-1074)
            } else {
                y == 0.0
            };
            assert!(ok, "{isa:?}: 2^{t} = {y:e}, f64 {r:e}");
        }
    }
}

#[test]
fn exp2_special_values() {
    for isa in Isa::supported() {
        let t = [
            f32::NEG_INFINITY,
            f32::NAN,
            -0.0,
            0.0,
            -149.0,
            -150.5,
            -1e30,
        ];
        let y = exp2_with(isa, &t);
        assert_eq!(y[0], 0.0, "{isa:?}");
        assert!(y[1].is_nan(), "{isa:?}");
        assert_eq!((y[2], y[3]), (1.0, 1.0), "{isa:?}");
        assert_eq!(
            y[4],
            f32::from_bits(1),
            "{isa:?}: 2^-149 is the smallest subnormal"
        );
        assert_eq!((y[5], y[6]), (0.0, 0.0), "{isa:?}");
        let t = [f64::NEG_INFINITY, f64::NAN, -0.0, -1074.0, -1076.0, -1e300];
        let y = exp2_with(isa, &t);
        assert_eq!(y[0], 0.0, "{isa:?}");
        assert!(y[1].is_nan(), "{isa:?}");
        assert_eq!(y[2], 1.0, "{isa:?}");
        assert_eq!(y[3], f64::from_bits(1), "{isa:?}");
        assert_eq!((y[4], y[5]), (0.0, 0.0), "{isa:?}");
    }
}
