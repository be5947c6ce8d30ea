//! One SOFT head on every ISA against the formula written out in f64 (base-e exp, the f64
//! Cholesky solve), the landmarks' kernel matrix in f64 against E, and l = 0.

use super::head::{soft_head_with, HeadScratch};
use super::tests::data;
use super::SoftOptions;
use crate::linalg::{GemmElem, PinvOptions};
use crate::simd::{Isa, Lanes};
use std::mem::MaybeUninit;

/// The SOFT formula in f64, written out directly: K(q, L) (pinv(K(L, L) + ridge I) ... ) with
/// the inverse applied by the (separately tested) f64 Cholesky solve, base-e exp.
fn formula(
    q: &[f64],
    v: &[f64],
    lm: &[f64],
    dims: (usize, usize, usize, usize),
    opts: &SoftOptions,
) -> Vec<f64> {
    let (n, d, dv, l) = dims;
    let k = |x: &[f64], y: &[f64]| {
        let d2: f64 = x.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum();
        (-d2.max(0.0) / 2.0).exp()
    };
    let kql: Vec<f64> = (0..n * l)
        .map(|t| k(&q[t / l * d..][..d], &lm[t % l * d..][..d]))
        .collect();
    let kll =
        ndarray::Array2::from_shape_fn((l, l), |(i, j)| k(&lm[i * d..][..d], &lm[j * d..][..d]));
    let scale: Vec<f64> = (0..l)
        .map(|i| {
            if opts.normalize {
                1.0 / kll.row(i).sum().sqrt()
            } else {
                1.0
            }
        })
        .collect();
    let ldb = dv.next_multiple_of(8);
    let mut c = vec![0.0f64; l * ldb];
    for j in 0..l {
        for i in 0..n {
            for t in 0..dv {
                c[j * ldb + t] += kql[i * l + j] * v[i * dv + t] * scale[j];
            }
        }
    }
    let f = crate::linalg::newton_schulz::spd_solver_f64(kll.view(), &opts.pinv)
        .expect("options")
        .expect("well conditioned");
    f.solve_in_place(&mut c, ldb);
    (0..n * dv)
        .map(|o| {
            (0..l)
                .map(|j| kql[o / dv * l + j] * scale[j] * c[j * ldb + o % dv])
                .sum()
        })
        .collect()
}

fn against_formula<E: GemmElem + Lanes>(tol: f64) {
    for (seed, dims) in [
        (1u64, (97, 32, 32, 15)),
        (2, (50, 17, 9, 49)),
        (3, (7, 3, 5, 4)),
    ] {
        let (n, d, dv, l) = dims;
        let f64s = |x: Vec<E>| x.iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
        let (q, v, lm) = (
            f64s(data::<E>(n * d, seed, 1.5)),
            f64s(data::<E>(n * dv, seed + 1, 2.0)),
            f64s(data::<E>(l * d, seed + 2, 3.0)),
        );
        for normalize in [false, true] {
            let opts = SoftOptions {
                num_landmarks: l,
                pinv: PinvOptions {
                    ridge: 0.1,
                    ..PinvOptions::default()
                },
                normalize,
            };
            let want = formula(&q, &v, &lm, dims, &opts);
            let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            let e = |x: &[f64]| x.iter().map(|&x| E::from_f64(x)).collect::<Vec<E>>();
            for isa in Isa::supported() {
                let mut out = vec![MaybeUninit::<E>::uninit(); n * dv];
                let mut scratch = HeadScratch::default();
                soft_head_with(
                    isa,
                    &e(&q),
                    &e(&v),
                    &e(&lm),
                    dims,
                    &opts,
                    &mut out,
                    &mut scratch,
                )
                .expect("soft head");
                for (k, (g, w)) in out.iter().zip(&want).enumerate() {
                    // SAFETY: soft_head_with wrote every element.
                    let g = unsafe { g.assume_init() }.to_f64();
                    assert!(
                        (g - w).abs() <= tol * scale,
                        "{isa:?} {dims:?} [{k}]: {g} vs {w}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_isa_matches_the_formula_f32() {
    against_formula::<f32>(1e-5);
}

#[test]
fn every_isa_matches_the_formula_f64() {
    against_formula::<f64>(1e-12);
}

#[test]
fn landmark_kernel_in_f64_rounds_to_the_e_matrix() {
    use super::project::Project;
    use crate::simd::dispatch;
    for isa in Isa::supported() {
        for (l, d) in [(1usize, 3usize), (7, 16), (49, 32), (50, 5)] {
            let lm = data::<f32>(l * d, l as u64, 3.0);
            let mut klt = Vec::new();
            let project = Project {
                x: &lm,
                n: l,
                d,
                lm: &lm,
                l,
                v: &[],
                dv: 0,
                kt: &mut klt,
            };
            let kl = dispatch(isa, project);
            let (e, f) = (kl.square(&klt, l), kl.square_f64(&klt, l));
            let ld = crate::linalg::padded(l);
            assert_eq!(f.len(), l * ld);
            for i in 0..l {
                for j in 0..ld {
                    let x = f[i * ld + j];
                    if j < l {
                        assert_eq!(x as f32, e[i * l + j], "{isa:?} l={l} ({i},{j})");
                        assert_eq!(x, f[j * ld + i], "{isa:?} l={l}: not symmetric");
                    } else {
                        assert_eq!(x, 0.0, "{isa:?} l={l}: padding");
                    }
                }
            }
        }
    }
}

#[test]
fn no_landmarks_is_an_error() {
    let (q, v) = (data::<f32>(8, 1, 1.0), data::<f32>(8, 2, 1.0));
    let mut out = vec![MaybeUninit::<f32>::uninit(); 8];
    let opts = SoftOptions {
        num_landmarks: 0,
        pinv: PinvOptions::default(),
        normalize: true,
    };
    let r = soft_head_with(
        Isa::Scalar,
        &q,
        &v,
        &[],
        (4, 2, 2, 0),
        &opts,
        &mut out,
        &mut HeadScratch::default(),
    );
    assert!(r.is_err());
}
