//! The two softmaxes of agent attention: over the keys for each agent, taken down the columns
//! of K At (s x na, so no transpose of K or of the scores is needed), and over the agents for
//! each query, along rows.

use crate::simd::exp::{exp_poly_on, ExpPoly};
use crate::simd::{Kernel, Lanes, Simd};
use crate::softmax::online_tile::{exp_sub_sum, load_upto, row_max, store_upto};

/// Softmax of each row of `cols` in place; a row with nothing finite to attend to (all -inf,
/// from a bias) gives 0s, as softmax_attention's empty rows.
pub(super) struct SoftmaxRows<'a, E> {
    pub x: &'a mut [E],
    pub cols: usize,
}

impl<E: Lanes> Kernel<E> for SoftmaxRows<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        let poly = ExpPoly::<S>::softmax(S::splat(E::ONE));
        for row in self.x.chunks_exact_mut(self.cols.max(1)) {
            let m = row_max::<S>(row);
            if m == E::NEG_INFINITY {
                row.fill(E::ZERO);
                continue;
            }
            let inv = E::ONE / exp_sub_sum::<S>(row, m, &poly);
            row.iter_mut().for_each(|y| *y = *y * inv);
        }
    }
}

/// x (rows x cols) <- e^(x - colmax) column by column, returning each column's sum: the
/// unnormalised softmax down the columns (the caller divides its product by the sums). A
/// column that is all -inf gives 0s and sum 0.
pub(super) struct SoftmaxCols<'a, E> {
    pub x: &'a mut [E],
    pub cols: usize,
    pub sums: &'a mut [E],
}

impl<E: Lanes> Kernel<E> for SoftmaxCols<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        let (cols, w) = (self.cols, S::LANES);
        if cols == 0 {
            return;
        }
        let poly = ExpPoly::<S>::softmax(S::splat(E::ONE));
        let mut m = vec![E::NEG_INFINITY; cols];
        let pm = m.as_mut_ptr();
        // SAFETY: every access is below cols within a row of x, m or sums.
        unsafe {
            for row in self.x.chunks_exact(cols) {
                let mut c = 0;
                while c < cols {
                    let k = (cols - c).min(w);
                    let a = load_upto::<S>(pm.add(c), k, E::NEG_INFINITY);
                    let b = load_upto::<S>(row.as_ptr().add(c), k, E::NEG_INFINITY);
                    store_upto::<S>(pm.add(c), k, S::max(a, b));
                    c += k;
                }
            }
            m.iter_mut()
                .filter(|y| **y == E::NEG_INFINITY)
                .for_each(|y| *y = E::ZERO);
            self.sums.fill(E::ZERO);
            let ps = self.sums.as_mut_ptr();
            for row in self.x.chunks_exact_mut(cols) {
                let pr = row.as_mut_ptr();
                let mut c = 0;
                while c < cols {
                    let k = (cols - c).min(w);
                    let x = load_upto::<S>(pr.add(c), k, E::NEG_INFINITY);
                    let e =
                        exp_poly_on::<S>(S::sub(x, load_upto::<S>(pm.add(c), k, E::ZERO)), &poly);
                    store_upto::<S>(pr.add(c), k, e);
                    let sum = S::add(load_upto::<S>(ps.add(c), k, E::ZERO), e);
                    store_upto::<S>(ps.add(c), k, sum);
                    c += k;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{dispatch, Isa};
    use crate::softmax::online_tile::online_weights_with;
    use crate::test_support::{for_each_isa, lengths_around, uniform};

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 1e-6 * a.abs().max(b.abs()) + 1e-30
    }

    #[test]
    fn column_and_row_softmax_and_online_weights_every_isa() {
        for_each_isa(|isa| {
            for cols in lengths_around(17, &[1, 4], &[16]) {
                let rows = 5;
                let mut x0: Vec<f32> = uniform(rows * cols, cols as u64, -20.0, 20.0);
                if cols > 2 {
                    // A column that is all -inf gives 0s and a zero sum.
                    (0..rows).for_each(|r| x0[r * cols + 1] = f32::NEG_INFINITY);
                }
                let cols_run = |isa: Isa| {
                    let (mut x, mut sums) = (x0.clone(), vec![0.0; cols]);
                    dispatch(
                        isa,
                        SoftmaxCols {
                            x: &mut x,
                            cols,
                            sums: &mut sums,
                        },
                    );
                    (x, sums)
                };
                let rows_run = |isa: Isa| {
                    let mut x = x0.clone();
                    dispatch(isa, SoftmaxRows { x: &mut x, cols });
                    x
                };
                let weights_run = |isa: Isa| {
                    let mut x = x0.clone();
                    let (m, s) = online_weights_with(isa, &mut x, 3.0);
                    (x, m, s)
                };
                let (a, b) = (cols_run(Isa::Scalar), cols_run(isa));
                for (p, q) in a.0.iter().chain(&a.1).zip(b.0.iter().chain(&b.1)) {
                    assert!(close(*p, *q), "{isa:?} cols {cols}: {p} vs {q}");
                }
                for (p, q) in rows_run(Isa::Scalar).iter().zip(&rows_run(isa)) {
                    assert!(close(*p, *q), "{isa:?} rows, cols {cols}: {p} vs {q}");
                }
                let (a, b) = (weights_run(Isa::Scalar), weights_run(isa));
                assert_eq!(a.1, b.1);
                assert!((a.2 - b.2).abs() <= 1e-6 * a.2.abs().max(1.0));
                for (p, q) in a.0.iter().zip(&b.0) {
                    assert!(close(*p, *q), "{isa:?} weights, cols {cols}: {p} vs {q}");
                }
            }
        });
    }
}
