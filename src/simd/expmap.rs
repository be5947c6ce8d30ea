//! y = e^(a x + b) over a slice on the active SIMD path (IEEE edges of `exp::exp`): the
//! transcendental step of the gating scores (softmax probabilities, sigmoid and tanh through
//! e^-x and e^2x), so they run at vector speed instead of one libm call per element.

use super::dispatch::{Kernel, Lanes};
use super::exp::exp;
use super::vector::{Elem, Simd};

struct ExpAffine<'a, E> {
    x: &'a [E],
    y: &'a mut [E],
    a: E,
    b: E,
}

impl<E: Lanes> Kernel<E> for ExpAffine<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        let n = self.x.len().min(self.y.len());
        let (w, a, b) = (S::LANES, S::splat(self.a), S::splat(self.b));
        let (px, py) = (self.x.as_ptr(), self.y.as_mut_ptr());
        let mut j = 0;
        // SAFETY: x and y hold at least n elements; every access is below n.
        unsafe {
            while j + w <= n {
                S::store(py.add(j), exp::<S>(S::fma(S::load(px.add(j)), a, b)));
                j += w;
            }
            if j < n {
                let t = S::fma(S::load_partial(px.add(j), n - j, E::ZERO), a, b);
                S::store_partial(py.add(j), n - j, exp::<S>(t));
            }
        }
    }
}

/// y = e^(a x + b) on the active ISA (x and y of one length).
pub fn exp_affine<E: Lanes>(x: &[E], y: &mut [E], a: E, b: E) {
    super::dispatch(super::active(), ExpAffine { x, y, a, b })
}

/// `exp_affine` on ISA S, for callers already inside a dispatched kernel (no second dispatch).
#[inline(always)]
pub fn exp_affine_on<S: Simd>(x: &[S::E], y: &mut [S::E], a: S::E, b: S::E)
where
    S::E: Lanes,
{
    ExpAffine { x, y, a, b }.run::<S>();
}

/// The logistic function 1 / (1 + e^(-a x)) into y (a > 0 scales x), on ISA S.
#[inline(always)]
pub fn sigmoid_on<S: Simd>(x: &[S::E], y: &mut [S::E], a: S::E)
where
    S::E: Lanes,
{
    exp_affine_on::<S>(x, y, -a, S::E::ZERO);
    for v in y.iter_mut() {
        *v = S::E::ONE / (S::E::ONE + *v);
    }
}

/// tanh x into y: 1 - 2 / (1 + e^(2x)) for |x| >= 1/64 (a few eps absolute; +-inf give +-1),
/// and its Taylor series x - x^3/3 + 2x^5/15 - 17x^7/315 below, where the subtraction would
/// cancel (the next term, 62/2835 x^9, is below 2^-53 |x| there): small inputs keep their
/// relative accuracy.
#[inline(always)]
pub fn tanh_on<S: Simd>(x: &[S::E], y: &mut [S::E])
where
    S::E: Lanes,
{
    let c = |v: f64| S::E::from_f64(v);
    let (one, two, small) = (S::E::ONE, c(2.0), c(1.0 / 64.0));
    exp_affine_on::<S>(x, y, two, S::E::ZERO);
    for (v, &xi) in y.iter_mut().zip(x) {
        let x2 = xi * xi;
        let series =
            xi * (one + x2 * (c(-1.0 / 3.0) + x2 * (c(2.0 / 15.0) + x2 * c(-17.0 / 315.0))));
        *v = if xi < small && xi > -small {
            series
        } else {
            one - two / (one + *v)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{dispatch, Isa};

    /// Runs the three maps on one ISA: (exp(0.5 x - 1), sigmoid(x), tanh(x)).
    struct Maps<'a> {
        x: &'a [f64],
    }

    impl Kernel<f64> for Maps<'_> {
        type Output = [Vec<f64>; 3];
        fn run<S: Simd<E = f64>>(self) -> [Vec<f64>; 3] {
            let n = self.x.len();
            let mut out = [vec![0.0; n], vec![0.0; n], vec![0.0; n]];
            exp_affine_on::<S>(self.x, &mut out[0], 0.5, -1.0);
            sigmoid_on::<S>(self.x, &mut out[1], 1.0);
            tanh_on::<S>(self.x, &mut out[2]);
            out
        }
    }

    struct Maps32<'a> {
        x: &'a [f32],
    }

    impl Kernel<f32> for Maps32<'_> {
        type Output = [Vec<f32>; 2];
        fn run<S: Simd<E = f32>>(self) -> [Vec<f32>; 2] {
            let n = self.x.len();
            let mut out = [vec![0.0; n], vec![0.0; n]];
            sigmoid_on::<S>(self.x, &mut out[0], 1.0);
            tanh_on::<S>(self.x, &mut out[1]);
            out
        }
    }

    #[test]
    fn maps_match_libm_on_every_isa() {
        for isa in Isa::supported() {
            for n in [0usize, 1, 3, 4, 7, 8, 9, 15, 16, 17, 33, 100] {
                let x: Vec<f64> = (0..n).map(|i| (i as f64 - 50.0) * 0.37).collect();
                let [e, s, t] = dispatch(isa, Maps { x: &x });
                let tiny = [1e-30, -3e-8, 0.01, -0.0156];
                let [_, _, tt] = dispatch(isa, Maps { x: &tiny });
                for (a, b) in tiny.iter().zip(&tt) {
                    assert!(
                        (b - a.tanh()).abs() <= 1e-15 * a.tanh().abs(),
                        "{isa:?} {a} {b}"
                    );
                }
                for (i, &a) in x.iter().enumerate() {
                    let want = (0.5 * a - 1.0f64).exp();
                    assert!((e[i] - want).abs() <= 4e-16 * want, "{isa:?} {a} {}", e[i]);
                    assert!((s[i] - 1.0 / (1.0 + (-a).exp())).abs() <= 1e-15, "{isa:?}");
                    assert!((t[i] - a.tanh()).abs() <= 1e-15, "{isa:?} {a} {}", t[i]);
                }
            }
            let x = [f32::NEG_INFINITY, f32::INFINITY, -200.0, 200.0];
            let [s, t] = dispatch(isa, Maps32 { x: &x });
            assert_eq!(s, [0.0, 1.0, 0.0, 1.0], "{isa:?}");
            assert_eq!(t, [-1.0, 1.0, -1.0, 1.0], "{isa:?}");
        }
    }
}
