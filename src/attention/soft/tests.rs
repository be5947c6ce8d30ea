//! The SOFT head kernels on every ISA this CPU has against the portable scalar path, on sizes
//! around each block: tokens around tiles (3 vectors) and expansion blocks (12 or 6 rows),
//! landmarks around blocks of 7 or 3, columns around blocks of 2 vectors.

use super::head::{soft_head_with, HeadScratch};
use super::SoftOptions;
use crate::linalg::{GemmElem, PinvOptions};
use crate::simd::{Isa, Lanes};
use crate::test_support::uniform;
use std::mem::MaybeUninit;

pub(super) fn data<E: GemmElem>(len: usize, seed: u64, scale: f64) -> Vec<E> {
    uniform(len, seed, -0.5 * scale, 0.5 * scale)
}

fn run<E: GemmElem + Lanes>(isa: Isa, dims: (usize, usize, usize, usize), seed: u64) -> Vec<f64> {
    let (n, d, dv, l) = dims;
    let (q, v, lm) = (
        data::<E>(n * d, seed, 1.5),
        data::<E>(n * dv, seed + 1, 2.0),
        data::<E>(l * d, seed + 2, 3.0),
    );
    let opts = SoftOptions {
        num_landmarks: l,
        pinv: PinvOptions {
            ridge: 0.1,
            ..PinvOptions::default()
        },
        normalize: seed.is_multiple_of(2),
    };
    let mut out = vec![MaybeUninit::<E>::uninit(); n * dv];
    let mut scratch = HeadScratch::default();
    soft_head_with(isa, &q, &v, &lm, dims, &opts, &mut out, &mut scratch).expect("soft head");
    // SAFETY: soft_head_with wrote every element.
    out.iter()
        .map(|x| unsafe { x.assume_init() }.to_f64())
        .collect()
}

fn check<E: GemmElem + Lanes>(tol: f64) {
    let mut seed = 0;
    for n in [
        1usize, 5, 6, 7, 12, 13, 15, 16, 17, 31, 32, 33, 47, 48, 49, 97,
    ] {
        for (d, dv, l) in [
            (1, 1, 1),
            (3, 17, 3),
            (16, 16, 7),
            (17, 33, 8),
            (32, 32, 15),
            (33, 9, 22),
        ] {
            seed += 1;
            let want = run::<E>(Isa::Scalar, (n, d, dv, l), seed);
            let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-300);
            for isa in Isa::supported() {
                let got = run::<E>(isa, (n, d, dv, l), seed);
                for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() <= tol * scale,
                        "{isa:?} n={n} d={d} dv={dv} l={l} [{k}]: {g} vs {w}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_isa_matches_scalar_f32() {
    check::<f32>(2e-5);
}

#[test]
fn every_isa_matches_scalar_f64() {
    check::<f64>(1e-12);
}
