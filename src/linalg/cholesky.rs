//! A direct starting point for Newton–Schulz on symmetric positive definite input: the inverse
//! from a double-precision Cholesky factorisation (Golub & Van Loan, 4th ed., Alg. 4.2.1), about
//! n^3 flops in all against 4 n^3 per Newton–Schulz step. Started there, the iteration converges
//! in one or two steps instead of ~log2(cond) + 5, and those steps still decide convergence: the
//! result is a Newton–Schulz iterate accepted by the same step test as any other start.

use super::gemm::{gemm, GemmElem};
use crate::error::Result;
use ndarray::{Array2, ArrayView2};

/// Dot product with eight independent partial sums, so the loop vectorises (a single
/// accumulator is a serial dependency the compiler may not reorder).
fn dot(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let tail: f64 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (x8, y8) in xc.zip(yc) {
        for k in 0..8 {
            acc[k] += x8[k] * y8[k];
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// The lower Cholesky factor L (row-major n x n) of A in f64, or None when A is not square, not
/// exactly symmetric, or not numerically positive definite (a pivot below 1e-12 of its diagonal
/// entry: semidefinite or indefinite input takes the general start).
pub fn cholesky<E: GemmElem>(a: ArrayView2<'_, E>) -> Option<Vec<f64>> {
    let n = a.nrows();
    if n != a.ncols() || n == 0 {
        return None;
    }
    for i in 0..n {
        for j in 0..i {
            if a[[i, j]].to_f64() != a[[j, i]].to_f64() {
                return None;
            }
        }
    }
    // Row by row; the inner products run over contiguous row prefixes of L.
    let mut l = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let x = a[[i, j]].to_f64() - dot(&l[i * n..i * n + j], &l[j * n..j * n + j]);
            if i == j {
                if x.is_nan() || x <= 1e-12 * a[[i, i]].to_f64().abs() {
                    return None;
                }
                l[i * n + i] = x.sqrt();
            } else {
                l[i * n + j] = x / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// A^-1 = L^-T L^-1 from the factor, rounded to E.
pub fn inverse_from_cholesky<E: GemmElem>(l: &[f64], n: usize) -> Result<Array2<E>> {
    // W = L^-1 row by row: W[i,:] = (e_i - sum_{k<i} L[i,k] W[k,:]) / L[i,i]; W[k,:] is zero
    // beyond column k, so each update is an axpy over k + 1 entries (vectorises, no reduction).
    let mut w = Array2::<f64>::zeros((n, n));
    let ws = w.as_slice_mut().expect("fresh array is contiguous");
    for i in 0..n {
        let (done, rest) = ws.split_at_mut(i * n);
        let row = &mut rest[..n];
        row[i] = 1.0;
        for k in 0..i {
            let lik = l[i * n + k];
            for (r, &wk) in row[..=k].iter_mut().zip(&done[k * n..k * n + k + 1]) {
                *r -= lik * wk;
            }
        }
        let inv = 1.0 / l[i * n + i];
        row[..=i].iter_mut().for_each(|r| *r *= inv);
    }
    let mut inv = Array2::<f64>::zeros((n, n));
    gemm(0.0, inv.view_mut(), 1.0, w.t(), w.view())?;
    Ok(inv.mapv(E::from_f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_of_spd_matrices() {
        for n in [1usize, 2, 7, 8, 9, 17, 49] {
            // A = B B^T + n I is SPD and exactly symmetric.
            let b = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
            let mut a = b.dot(&b.t());
            a.diag_mut().iter_mut().for_each(|x| *x += n as f64);
            let l = cholesky(a.view()).expect("SPD");
            let inv: Array2<f64> = inverse_from_cholesky(&l, n).unwrap();
            let id = a.dot(&inv);
            for ((i, j), x) in id.indexed_iter() {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((x - want).abs() < 1e-10, "n={n} ({i},{j}) {x}");
            }
        }
    }

    #[test]
    fn rejects_non_spd() {
        let a = ndarray::arr2(&[[1.0f64, 2.0], [2.0, 1.0]]); // indefinite
        assert!(cholesky(a.view()).is_none());
        let a = ndarray::arr2(&[[1.0f64, 1.0], [1.0, 1.0]]); // semidefinite
        assert!(cholesky(a.view()).is_none());
        let a = ndarray::arr2(&[[2.0f64, 1.0], [0.5, 2.0]]); // not symmetric
        assert!(cholesky(a.view()).is_none());
        let a = ndarray::arr2(&[[1.0f64, 0.0, 0.0], [0.0, 1.0, 0.0]]); // not square
        assert!(cholesky(a.view()).is_none());
    }
}
