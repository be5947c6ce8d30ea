//! y = e^(a x + b) over a slice on the active SIMD path (IEEE edges of `exp::exp`): the
//! transcendental step of the gating scores (softmax probabilities, sigmoid and tanh through
//! e^-x and e^2x), so they run at vector speed instead of one libm call per element.

use super::dispatch::{dispatch, Kernel, Lanes};
use super::exp::exp;
use super::vector::Simd;

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

/// y[i] = e^(a x[i] + b) for i < min(len x, len y).
pub fn exp_affine<E: Lanes>(x: &[E], y: &mut [E], a: E, b: E) {
    dispatch(super::active(), ExpAffine { x, y, a, b });
}

/// The logistic function 1 / (1 + e^(-a x)) in place of y (a > 0 scales x).
pub fn sigmoid_scaled<E: Lanes>(x: &[E], y: &mut [E], a: E) {
    exp_affine(x, y, -a, E::ZERO);
    for v in y.iter_mut() {
        *v = E::ONE / (E::ONE + *v);
    }
}

/// tanh x = 1 - 2 / (1 + e^(2x)) into y (absolute error of a few eps; +-inf give +-1).
pub fn tanh<E: Lanes>(x: &[E], y: &mut [E]) {
    let two = E::ONE + E::ONE;
    exp_affine(x, y, two, E::ZERO);
    for v in y.iter_mut() {
        *v = E::ONE - two / (E::ONE + *v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_match_libm() {
        for n in [0usize, 1, 7, 8, 15, 16, 17, 33, 100] {
            let x: Vec<f64> = (0..n).map(|i| (i as f64 - 50.0) * 0.37).collect();
            let mut y = vec![0.0; n];
            exp_affine(&x, &mut y, 0.5, -1.0);
            for (a, b) in x.iter().zip(&y) {
                let want = (0.5 * a - 1.0f64).exp();
                assert!((b - want).abs() <= 4e-16 * want, "{a} {b} {want}");
            }
            sigmoid_scaled(&x, &mut y, 1.0);
            for (a, b) in x.iter().zip(&y) {
                assert!((b - 1.0 / (1.0 + (-a).exp())).abs() <= 1e-15);
            }
            tanh(&x, &mut y);
            for (a, b) in x.iter().zip(&y) {
                assert!((b - a.tanh()).abs() <= 1e-15, "{a} {b}");
            }
        }
        let x = [f32::NEG_INFINITY, f32::INFINITY, -200.0, 200.0];
        let mut y = [0.0f32; 4];
        sigmoid_scaled(&x, &mut y, 1.0);
        assert_eq!(y, [0.0, 1.0, 0.0, 1.0]);
        tanh(&x, &mut y);
        assert_eq!(y, [-1.0, 1.0, -1.0, 1.0]);
    }
}
