//! The split kernel on every ISA against the portable path and a float64 transcription, on
//! head sizes around each vector width and key counts around the block and the 4-key unroll.

use super::split::{split_partial, SplitPartial, KEY_BLOCK};
use crate::simd::Isa;
use crate::test_support::{for_each_isa, lengths_around, uniform};

/// The partial [m, l, o] of one head in f64, as the kernel defines it.
fn naive(q: &[f32], k: &[f32], v: &[f32], dv: usize, seen: usize, phi: Option<f64>) -> Vec<f64> {
    let d = q.len();
    let x: Vec<f64> = (0..seen)
        .map(|j| (0..d).map(|c| q[c] as f64 * k[j * d + c] as f64).sum())
        .collect();
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let base = phi.unwrap_or(m);
    let mut out = vec![m, 0.0];
    out.resize(dv + 2, 0.0);
    for (j, &xj) in x.iter().enumerate() {
        let p = (xj - base).exp();
        out[1] += p;
        for c in 0..dv {
            out[2 + c] += p * v[j * dv + c] as f64;
        }
    }
    out
}

struct Case<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    dv: usize,
    seen: &'a [usize],
}

fn run(isa: Isa, c: &Case<'_>, phi: Option<f32>) -> Vec<f32> {
    let (g, dv) = (c.seen.len(), c.dv);
    let (q, k, v, seen) = (c.q, c.k, c.v, c.seen);
    let mut scores = vec![0.0; g * KEY_BLOCK];
    let mut out = vec![f32::NAN; g * (dv + 2)];
    split_partial(
        isa,
        SplitPartial {
            q,
            k,
            v,
            visible: seen,
            unified: phi,
            scores: &mut scores,
            out: &mut out,
        },
    );
    out
}

#[test]
fn split_every_isa_matches_portable_and_f64() {
    let dims = lengths_around(9, &[1, 2, 4], &[16]);
    for_each_isa(|isa| {
        for &d in dims.iter().filter(|&&d| d > 0) {
            let dv = d % 37 + 1;
            for rows in [
                0,
                1,
                3,
                4,
                5,
                KEY_BLOCK - 1,
                KEY_BLOCK,
                KEY_BLOCK + 1,
                3 * KEY_BLOCK + 5,
            ] {
                let g = 3;
                let q: Vec<f32> = uniform(g * d, d as u64, -0.5, 0.5);
                let k: Vec<f32> = uniform(rows * d, rows as u64 + 7, -1.0, 1.0);
                let v: Vec<f32> = uniform(rows * dv, 11, -2.0, 2.0);
                let seen = [rows, rows / 2, rows.saturating_sub(1)];
                for phi in [None, Some(0.5f32)] {
                    let case = Case {
                        q: &q,
                        k: &k,
                        v: &v,
                        dv,
                        seen: &seen,
                    };
                    let want = run(Isa::Scalar, &case, phi);
                    let got = run(isa, &case, phi);
                    for h in 0..g {
                        let exact = naive(
                            &q[h * d..(h + 1) * d],
                            &k,
                            &v,
                            dv,
                            seen[h],
                            phi.map(f64::from),
                        );
                        let part = &got[h * (dv + 2)..(h + 1) * (dv + 2)];
                        let port = &want[h * (dv + 2)..(h + 1) * (dv + 2)];
                        let norm = exact[1].max(1.0);
                        for (c, ((&a, &b), &e)) in part.iter().zip(port).zip(&exact).enumerate() {
                            let tol = 2e-6 * norm * (rows as f64 + 1.0).sqrt() * 4.0;
                            let what =
                                format!("{isa:?} d {d} rows {rows} head {h} elem {c} phi {phi:?}");
                            if c == 0 && e == f64::NEG_INFINITY {
                                assert!(a == f32::NEG_INFINITY && b == f32::NEG_INFINITY, "{what}");
                                continue;
                            }
                            assert!(
                                (a as f64 - b as f64).abs() <= tol,
                                "{what}: {a} vs portable {b}"
                            );
                            assert!((a as f64 - e).abs() <= tol, "{what}: {a} vs f64 {e}");
                        }
                    }
                }
            }
        }
    });
}
