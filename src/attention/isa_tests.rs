//! The attention family's SIMD kernels on every ISA against the portable path, on lengths
//! around each vector width and unroll (BLAKE3's and XNNPACK's sweep).

use super::feature::FeatureMap;
use crate::simd::Isa;
use crate::softmax::online_tile::{online_tile_with, OnlineTile};
use crate::test_support::{for_each_isa, lengths_around, uniform};

/// Lengths 0..=33, then around multiples of 16 (f32 AVX-512 width) up to 16 x 16.
fn lengths() -> Vec<usize> {
    lengths_around(33, &[3, 4, 16], &[16])
}

/// Seeded values in [-8, 8), with a few exact zeros.
fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut x: Vec<f32> = uniform(len, seed, -8.0, 8.0);
    x.iter_mut().skip(5).step_by(11).for_each(|v| *v = 0.0);
    x
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 4e-7 * a.abs().max(b.abs()) + 1e-30 || (a.is_nan() && b.is_nan())
}

#[test]
fn online_tile_every_isa_matches_portable() {
    for_each_isa(|isa| {
        for cols in lengths() {
            let rows = 3;
            let s0 = data(rows * cols, cols as u64);
            let run = |isa: Isa| {
                let mut s = s0.clone();
                let mut m = vec![f32::NEG_INFINITY, 1.5, 20.0];
                let mut l = vec![0.0, 2.0, 1.0];
                let mut alpha = vec![0.0; rows];
                online_tile_with(
                    isa,
                    OnlineTile {
                        s: &mut s,
                        ld: cols,
                        cols,
                        m: &mut m,
                        l: &mut l,
                        alpha: &mut alpha,
                    },
                );
                (s, m, l, alpha)
            };
            let (want, got) = (run(Isa::Scalar), run(isa));
            assert_eq!(want.1, got.1, "max, {isa:?}, cols {cols}");
            for (a, b) in want.0.iter().zip(&got.0).chain(want.2.iter().zip(&got.2)) {
                assert!(close(*a, *b), "{isa:?} cols {cols}: {a} vs {b}");
            }
            assert_eq!(want.3, got.3);
        }
    });
}

#[test]
fn online_tile_all_masked_row_stays_empty() {
    let mut s = vec![f32::NEG_INFINITY; 40];
    let (mut m, mut l, mut a) = (vec![f32::NEG_INFINITY], vec![0.0], vec![0.0]);
    online_tile_with(
        crate::simd::active(),
        OnlineTile {
            s: &mut s,
            ld: 40,
            cols: 40,
            m: &mut m,
            l: &mut l,
            alpha: &mut a,
        },
    );
    assert_eq!((m[0], l[0], a[0]), (f32::NEG_INFINITY, 0.0, 1.0));
    assert!(s.iter().all(|&x| x == 0.0));
}

#[test]
fn feature_maps_every_isa_match_portable() {
    for map in FeatureMap::NAMES.map(|n| FeatureMap::from_name(n).expect("name")) {
        for_each_isa(|isa| {
            for d in lengths().into_iter().filter(|&d| d > 0) {
                let x = data(2 * d, d as u64 + 7);
                let (mut want, mut got) = (vec![0.0; 2 * d], vec![0.0; 2 * d]);
                map.apply_with(Isa::Scalar, &x, &mut want, d, 0.5);
                map.apply_with(isa, &x, &mut got, d, 0.5);
                for (a, b) in want.iter().zip(&got) {
                    assert!(close(*a, *b), "{map:?} {isa:?} d {d}: {a} vs {b}");
                }
                // The portable path against the formula in f64.
                for (i, (&xi, &yi)) in x.iter().zip(&want).enumerate() {
                    let row = &x[i / d * d..][..d];
                    let mx = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
                    let xi = xi as f64;
                    let f = match map {
                        FeatureMap::Elu1 if xi > 0.0 => xi + 1.0,
                        FeatureMap::Elu1 => xi.exp(),
                        FeatureMap::Relu => xi.max(0.0),
                        FeatureMap::Identity => xi,
                        FeatureMap::Exp => (xi - mx).exp(),
                    } * 0.5;
                    // exp: the f32 subtraction x - max rounds by up to |x - max| 2^-24 first.
                    let shift = if map == FeatureMap::Exp {
                        (xi - mx).abs() * 6e-8
                    } else {
                        0.0
                    };
                    assert!(
                        (yi as f64 - f).abs() <= (3e-7 + shift) * f.abs() + 1e-30,
                        "{map:?}: {yi} vs {f}"
                    );
                }
            }
        });
    }
}

#[test]
fn all_finite_every_isa_finds_every_position() {
    use crate::simd::all_finite_with;
    for_each_isa(|isa| {
        for len in lengths() {
            let x = data(len, 3);
            assert!(all_finite_with(isa, &x), "{isa:?} {len}");
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                for i in 0..len {
                    let mut y = x.clone();
                    y[i] = bad;
                    assert!(!all_finite_with(isa, &y), "{isa:?} len {len} at {i}: {bad}");
                }
            }
        }
    });
}
