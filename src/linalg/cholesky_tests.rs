//! CholeskyF64: factor, solves, inverse, the cond_1 bound, and what it declines, on every ISA.

use super::*;
use ndarray::Array2;

/// A = B B^T + n I: SPD and exactly symmetric.
fn spd(n: usize) -> Array2<f64> {
    let b = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
    let mut a = b.dot(&b.t());
    a.diag_mut().iter_mut().for_each(|x| *x += n as f64);
    a
}

#[test]
fn solves_and_inverts_spd_matrices_on_every_isa() {
    for isa in Isa::supported() {
        solves_and_inverts_with(isa);
    }
}

fn solves_and_inverts_with(isa: Isa) {
    // Sizes around the vector widths (1, 4, 8 f64) and the four-vector blocks.
    for n in [
        1usize, 2, 3, 5, 7, 8, 9, 16, 17, 31, 32, 33, 49, 64, 65, 100,
    ] {
        let a = spd(n);
        let f = cholesky_f64_with(isa, a.view(), 0.0).expect("SPD");
        assert_eq!(f.dim(), n);
        let (x, ld) = f.inverse();
        let inv = Array2::from_shape_fn((n, n), |(i, j)| x[i * ld + j]);
        for ((i, j), v) in a.dot(&inv).indexed_iter() {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((v - want).abs() < 1e-10, "{isa:?} n={n} ({i},{j}) {v}");
        }
        // Right-hand sides of 1..3 blocks of columns, padding past them untouched at 0.
        for cols in [1usize, 8, 13, 40] {
            let ldb = cols.next_multiple_of(PAD);
            let want = Array2::from_shape_fn((n, cols), |(i, j)| (i + 2 * j) as f64 - 3.0);
            let rhs = a.dot(&want);
            let mut b = vec![0.0; n * ldb];
            for ((i, j), v) in rhs.indexed_iter() {
                b[i * ldb + j] = *v;
            }
            f.solve_in_place(&mut b, ldb);
            for i in 0..n {
                for j in 0..ldb {
                    let w = if j < cols { want[[i, j]] } else { 0.0 };
                    let got = b[i * ldb + j];
                    assert!((got - w).abs() < 1e-9, "{isa:?} n={n} cols={cols}");
                }
            }
        }
    }
}

#[test]
fn ridge_and_condition_number() {
    // diag(1, 4, 0.5) + ridge 0.5 I = diag(1.5, 4.5, 1): cond_1 = 4.5.
    let a = Array2::from_diag(&ndarray::arr1(&[1.0f32, 4.0, 0.5]));
    let f = cholesky_f64(a.view(), 0.5).expect("SPD");
    assert!((f.cond1() - 4.5).abs() < 1e-12);
    // cond_1 of a full matrix against its inverse formed independently.
    let a = spd(20);
    let f = cholesky_f64(a.view(), 0.0).expect("SPD");
    let inv = crate::linalg::spd_inverse::spd_inverse(a.view()).expect("SPD");
    let norm1 = |m: &Array2<f64>| {
        m.rows()
            .into_iter()
            .map(|r| r.iter().map(|x| x.abs()).sum::<f64>())
            .fold(0.0, f64::max)
    };
    let want = norm1(&a) * norm1(&inv);
    assert!((f.cond1() - want).abs() < 1e-9 * want);
}

/// The Gaussian kernel matrix of n points uniform in [-s/2, s/2]^32 (splitmix64 hashes):
/// SOFT's K(L, L), ill-conditioned as the points cluster (small s).
fn gauss(n: usize, s: f64) -> Array2<f64> {
    let hash = |i: u64| {
        let z = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f64 / 2f64.powi(24) - 0.5
    };
    let p = Array2::from_shape_fn((n, 32), |(i, k)| s * hash((i * 32 + k) as u64));
    Array2::from_shape_fn((n, n), |(i, j)| {
        let d2: f64 = (0..32).map(|k| (p[[i, k]] - p[[j, k]]).powi(2)).sum();
        (-d2 / 2.0).exp()
    })
}

#[test]
fn cond1_upper_bounds_cond1() {
    let mut cases: Vec<Array2<f64>> = [1usize, 2, 7, 8, 9, 20, 49, 64].map(spd).into();
    cases.extend([(49, 1.0), (49, 0.5), (49, 0.2), (49, 0.1), (20, 0.1)].map(|(n, s)| gauss(n, s)));
    cases.push(Array2::from_diag(&ndarray::arr1(&[1.0, 1e-3, 4.0, 1e3])));
    for a in cases {
        let f = cholesky_f64(a.view(), 1e-9).expect("SPD");
        let (exact, upper) = (f.cond1(), f.cond1_upper());
        assert!(upper >= exact && upper.is_finite(), "{upper} < {exact}");
    }
    // Diagonal: M(R) = R, so the bound is exact (up to its inflation).
    let a = Array2::from_diag(&ndarray::arr1(&[1.0, 1e-3, 4.0, 1e3]));
    let f = cholesky_f64(a.view(), 0.0).expect("SPD");
    assert!((f.cond1_upper() / f.cond1() - 1.0).abs() < 1e-12);
}

#[test]
fn spd_solver_falls_back_to_the_exact_condition_number() {
    use crate::linalg::{spd_solver_f64, PinvOptions};
    // Clustered points (cond_1 ~ 4e4): the bound fails the f32 rule (cond_1 <= 0.1 / eps_f32
    // ~ 8e5) while cond_1 itself passes, so the factor is still used.
    let a = gauss(49, 0.2).mapv(|x| x as f32);
    let f = cholesky_f64(a.view(), 0.0).expect("SPD");
    let eps = f32::EPSILON as f64 / 2.0;
    assert!(f.cond1() * eps <= 0.1 && f.cond1_upper() * eps > 0.1);
    assert!(spd_solver_f64(a.view(), &PinvOptions::default())
        .expect("options")
        .is_some());
    // Well separated points: the bound alone passes.
    let f = cholesky_f64(gauss(49, 1.0).view(), 0.0).expect("SPD");
    assert!(f.cond1_upper() * eps <= 0.1);
}

#[test]
fn symmetric_entry_matches_the_checked_one() {
    for isa in Isa::supported() {
        for n in [1usize, 8, 9, 49] {
            let a = gauss(n, 1.0);
            let ld = padded(n);
            let mut m = vec![0.0f64; n * ld];
            for ((i, j), x) in a.indexed_iter() {
                m[i * ld + j] = *x;
            }
            let f = cholesky_f64_symmetric(isa, m.clone(), n, 0.25).expect("SPD");
            let g = cholesky_f64_with(isa, a.view(), 0.25).expect("SPD");
            assert_eq!(
                (f.r.clone(), f.inv_diag.clone()),
                (g.r, g.inv_diag),
                "{isa:?} n={n}"
            );
            assert_eq!(f.a_norm1, g.a_norm1);
            if n > 1 {
                // Below the diagonal: the factorisation never reads it, the norm does.
                let mut bad = m.clone();
                bad[ld] = f64::NAN;
                assert!(cholesky_f64_symmetric(isa, bad, n, 0.0).is_none());
            }
            m[0] = f64::INFINITY;
            assert!(cholesky_f64_symmetric(isa, m, n, 0.0).is_none());
        }
        assert!(cholesky_f64_symmetric(isa, Vec::new(), 0, 1.0).is_none());
    }
}

#[test]
fn rejects_what_it_cannot_factor() {
    let bad = [
        ndarray::arr2(&[[1.0f64, 2.0], [2.0, 1.0]]), // indefinite
        ndarray::arr2(&[[1.0f64, 1.0], [1.0, 1.0]]), // semidefinite
        ndarray::arr2(&[[2.0f64, 1.0], [0.5, 2.0]]), // not symmetric
        ndarray::arr2(&[[-1.0f64, 0.0], [0.0, 1.0]]), // negative diagonal
        ndarray::arr2(&[[f64::NAN, 0.0], [0.0, 1.0]]),
        ndarray::arr2(&[[f64::INFINITY, 0.0], [0.0, 1.0]]),
    ];
    for a in bad {
        assert!(cholesky_f64(a.view(), 0.0).is_none(), "{a}");
    }
    let a = ndarray::arr2(&[[1.0f64, 0.0, 0.0], [0.0, 1.0, 0.0]]); // not square
    assert!(cholesky_f64(a.view(), 0.0).is_none());
    assert!(cholesky_f64(Array2::<f64>::zeros((0, 0)).view(), 0.0).is_none());
    // The ridge makes a semidefinite matrix definite.
    let a = ndarray::arr2(&[[1.0f64, 1.0], [1.0, 1.0]]);
    assert!(cholesky_f64(a.view(), 0.5).is_some());
}
