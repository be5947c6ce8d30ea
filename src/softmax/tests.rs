//! Every ISA and algorithm against a float64 reference and against the portable path, on lengths
//! around every vector width and unroll (0..=2*64+1, and k*width +- 1 beyond), misaligned starts,
//! strided axes and special values.

use super::driver::{logsumexp_with, softmax_with, Op};
use super::extexp::ExtSum;
use super::Algorithm;
use crate::simd::{Elem, Isa};
use crate::test_support::{lengths_around, uniform};
use ndarray::{ArrayD, ArrayViewD, IxDyn};

const ALGOS: [Algorithm; 5] = [
    Algorithm::Auto,
    Algorithm::TwoPass,
    Algorithm::Online,
    Algorithm::ThreePassReload,
    Algorithm::ThreePassRecompute,
];

fn lengths() -> Vec<usize> {
    lengths_around(129, &[3, 4, 5, 8, 16, 33], &[4, 8, 16, 64])
}

/// Deterministic pseudo-random values in [-scale, scale].
fn data(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    uniform(n, seed, -scale, scale)
}

fn ref_softmax(x: &[f64]) -> Vec<f64> {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

fn run<E: crate::simd::Lanes>(isa: Isa, x: &[E], shape: &[usize], axis: isize, op: Op) -> Vec<E> {
    let xv = ArrayViewD::from_shape(IxDyn(shape), x).expect("shape");
    let mut out = ArrayD::from_elem(IxDyn(shape), E::NAN);
    softmax_with(isa, xv, axis, op, None, out.view_mut()).expect("softmax");
    out.into_raw_vec_and_offset().0
}

/// |y - r| <= tol * r (normal outputs), and tiny absolute slack for subnormal ones.
fn check_close<E: Elem>(what: &str, y: &[E], r: &[f64], tol: f64) {
    for (i, (&y, &r)) in y.iter().zip(r).enumerate() {
        let y = y.to_f64();
        let bound = tol * r.abs()
            + 1e-300_f64.max(if E::MANTISSA_DIGITS == 24 {
                1e-37
            } else {
                1e-306
            });
        assert!(
            (y - r).abs() <= bound,
            "{what}: [{i}] {y:e} vs reference {r:e}"
        );
    }
}

#[test]
fn softmax_rows_every_isa_algorithm_length() {
    for isa in Isa::supported() {
        for &n in &lengths() {
            let xd = data(3 * n, n as u64 + 1, 30.0);
            let x32: Vec<f32> = xd.iter().map(|&v| v as f32).collect();
            let r32: Vec<f64> = x32
                .chunks(n.max(1))
                .flat_map(|r| ref_softmax(&r.iter().map(|&v| v as f64).collect::<Vec<_>>()))
                .collect();
            let r64: Vec<f64> = xd.chunks(n.max(1)).flat_map(ref_softmax).collect();
            for a in ALGOS {
                let what = format!("{isa:?} {a:?} n={n}");
                // Misaligned start: slice off one element.
                let y = run(isa, &x32, &[3, n], -1, Op::Softmax(a));
                check_close(&what, &y, &r32, 2e-6);
                let y = run(isa, &xd, &[3, n], -1, Op::Softmax(a));
                check_close(&what, &y, &r64, 1e-14);
            }
            let mut shifted = vec![0.0f32; 3 * n + 1];
            shifted[1..].copy_from_slice(&x32);
            let y = run(
                isa,
                &shifted[1..],
                &[3, n],
                -1,
                Op::Softmax(Algorithm::TwoPass),
            );
            check_close("misaligned", &y, &r32, 2e-6);
        }
    }
}

#[test]
fn simd_paths_match_portable_path() {
    let isas = Isa::supported();
    for &n in &lengths() {
        let x: Vec<f32> = data(2 * n, 7 + n as u64, 80.0)
            .iter()
            .map(|&v| v as f32)
            .collect();
        for op in [
            Op::LogSoftmax,
            Op::Softmax(Algorithm::TwoPass),
            Op::Softmax(Algorithm::Online),
        ] {
            let base = run(Isa::Scalar, &x, &[2, n], -1, op);
            for &isa in &isas[1..] {
                let y = run(isa, &x, &[2, n], -1, op);
                for (a, b) in y.iter().zip(&base) {
                    let tol = if op == Op::LogSoftmax {
                        4e-6 * (1.0 + b.abs())
                    } else {
                        4e-6 * b.abs() + 1e-37
                    };
                    assert!(
                        (a - b).abs() <= tol,
                        "{isa:?} {op:?} n={n}: {a} vs portable {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn log_softmax_and_logsumexp_rows() {
    for isa in Isa::supported() {
        for &n in &lengths() {
            if n == 0 {
                continue;
            }
            let x: Vec<f64> = data(2 * n, 3 + n as u64, 1e4);
            let y = run(isa, &x, &[2, n], -1, Op::LogSoftmax);
            let lse = logsumexp_with(
                isa,
                ArrayViewD::from_shape(IxDyn(&[2, n]), &x).expect("shape"),
                1,
                None,
            )
            .expect("lse");
            for (r, row) in x.chunks(n).enumerate() {
                let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let l = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                assert!(
                    (lse[[r]] - l).abs() <= 1e-12 * l.abs().max(1.0),
                    "{isa:?} n={n}: lse {} vs {l}",
                    lse[[r]]
                );
                for (i, &v) in row.iter().enumerate() {
                    let want = v - l;
                    let got = y[r * n + i];
                    assert!(
                        (got - want).abs() <= 1e-12 * (1.0 + v.abs()),
                        "{isa:?} n={n}: {got} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn strided_axes_match_rows() {
    for isa in Isa::supported() {
        for &(a, b, c) in &[
            (2usize, 5usize, 3usize),
            (1, 7, 64),
            (3, 17, 67),
            (2, 1, 130),
            (1, 300, 16),
            (2, 0, 5),
        ] {
            let x: Vec<f32> = data(a * b * c, (a + b + c) as u64, 40.0)
                .iter()
                .map(|&v| v as f32)
                .collect();
            for op in [
                Op::LogSoftmax,
                Op::Softmax(Algorithm::TwoPass),
                Op::Softmax(Algorithm::Online),
                Op::Softmax(Algorithm::ThreePassReload),
                Op::Softmax(Algorithm::ThreePassRecompute),
            ] {
                let y = run(isa, &x, &[a, b, c], 1, op);
                // Reference: transpose to rows, compute, compare.
                for o in 0..a {
                    for k in 0..c {
                        let col: Vec<f64> = (0..b).map(|i| x[(o * b + i) * c + k] as f64).collect();
                        let r = ref_softmax(&col);
                        for i in 0..b {
                            let got = y[(o * b + i) * c + k] as f64;
                            let want = if op == Op::LogSoftmax {
                                r[i].ln()
                            } else {
                                r[i]
                            };
                            let tol = if op == Op::LogSoftmax {
                                3e-6 * (1.0 + want.abs())
                            } else {
                                2e-6 * want.abs() + 1e-37
                            };
                            assert!(
                                (got - want).abs() <= tol,
                                "{isa:?} {op:?} ({a},{b},{c}) [{o},{i},{k}]: {got} vs {want}"
                            );
                        }
                    }
                }
            }
            let lse = logsumexp_with(
                isa,
                ArrayViewD::from_shape(IxDyn(&[a, b, c]), &x).expect("shape"),
                1,
                None,
            )
            .expect("lse");
            for o in 0..a {
                for k in 0..c {
                    let col: Vec<f64> = (0..b).map(|i| x[(o * b + i) * c + k] as f64).collect();
                    let m = col.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let l = if b == 0 {
                        f64::NEG_INFINITY
                    } else {
                        m + col.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
                    };
                    let got = lse[[o, k]] as f64;
                    assert!(
                        got == l || (got - l).abs() <= 2e-6 * l.abs().max(1.0),
                        "{isa:?} lse ({a},{b},{c}) [{o},{k}]: {got} vs {l}"
                    );
                }
            }
        }
    }
}

#[test]
fn special_values_every_algorithm() {
    let ninf = f32::NEG_INFINITY;
    let cases: Vec<(Vec<f32>, Vec<f32>)> = vec![
        (vec![ninf, 0.0, 0.0], vec![0.0, 0.5, 0.5]),
        (vec![ninf, ninf], vec![f32::NAN, f32::NAN]),
        (vec![f32::INFINITY, 0.0], vec![f32::NAN, f32::NAN]),
        (vec![f32::NAN, 0.0], vec![f32::NAN, f32::NAN]),
        (vec![3e38, 0.0], vec![1.0, 0.0]),
        (vec![-3e38, -2e38], vec![0.0, 1.0]),
        (vec![-1e6, -1e6 + 1.0], vec![0.268_941_43, 0.731_058_6]),
        (vec![1e6, 1e6 - 1.0], vec![0.731_058_6, 0.268_941_43]),
    ];
    for isa in Isa::supported() {
        for a in ALGOS {
            for (x, want) in &cases {
                for pad in [0usize, 17, 40] {
                    // Pad with -inf so the special entries meet full vectors and tails alike.
                    let mut xx = x.clone();
                    xx.extend(std::iter::repeat_n(ninf, pad));
                    let y = run(isa, &xx, &[1, xx.len()], -1, Op::Softmax(a));
                    for (i, &w) in want.iter().enumerate() {
                        let g = y[i];
                        let ok = if w.is_nan() {
                            g.is_nan()
                        } else {
                            (g - w).abs() <= 1e-6
                        };
                        assert!(ok, "{isa:?} {a:?} {x:?} pad {pad}: got {y:?}");
                    }
                    if !want[0].is_nan() {
                        assert!(
                            y[x.len()..].iter().all(|&v| v == 0.0),
                            "{isa:?} {a:?}: -inf pad must give exact 0"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn extended_exponent_merge() {
    let a = ExtSum {
        m: 1.25f32,
        e: 10.0,
    };
    let b = ExtSum { m: 1.5f32, e: 8.0 };
    let c = ExtSum {
        m: 0.75f32,
        e: -200.0,
    };
    let v = |s: ExtSum<f32>| s.m as f64 * 2f64.powf(s.e as f64);
    assert_eq!(a.merge(b), b.merge(a));
    assert_eq!(a.merge(ExtSum::empty()), a);
    assert_eq!(ExtSum::<f32>::empty().merge(ExtSum::empty()).m, 0.0);
    let l = a.merge(b).merge(c);
    let r = a.merge(b.merge(c));
    assert!((v(l) - v(r)).abs() <= 1e-7 * v(l));
    assert!((v(l) - (v(a) + v(b))).abs() <= 1e-7 * v(l));
    // Far-apart exponents do not overflow or underflow the mantissa.
    let big = ExtSum {
        m: 1.0f32,
        e: 100_000.0,
    };
    assert_eq!(big.merge(c), big);
}

#[test]
fn long_rows_chunked_are_deterministic_across_threads() {
    let n = (1 << 20) + 12_345;
    let x: Vec<f32> = data(n, 99, 20.0).iter().map(|&v| v as f32).collect();
    let isa = crate::simd::active();
    crate::threads::set_num_threads(1).expect("threads");
    let y1 = run(isa, &x, &[1, n], -1, Op::Softmax(Algorithm::TwoPass));
    crate::threads::set_num_threads(3).expect("threads");
    let y3 = run(isa, &x, &[1, n], -1, Op::Softmax(Algorithm::TwoPass));
    assert!(y1.iter().zip(&y3).all(|(a, b)| a.to_bits() == b.to_bits()));
    let r = ref_softmax(&x.iter().map(|&v| v as f64).collect::<Vec<_>>());
    check_close("long row", &y1, &r, 2e-6);
}

/// ext_write with non-temporal stores equals the plain stores, bit for bit, for every ISA,
/// length around the vector widths and output misalignment.
struct WriteBoth<'a, E> {
    x: &'a [E],
    plain: &'a mut [E],
    streamed: &'a mut [E],
}

impl<E: crate::simd::Lanes> crate::simd::Kernel<E> for WriteBoth<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: crate::simd::Simd<E = E>>(self) {
        let s = super::extexp::ext_sum::<S>(self.x);
        super::extexp::ext_write::<S>(self.x, self.plain, s, false);
        super::extexp::ext_write::<S>(self.x, self.streamed, s, true);
        super::extexp::ext_write_log::<S>(self.x, self.plain, s, false);
        let mut tmp = self.streamed.to_vec();
        super::extexp::ext_write_log::<S>(self.x, &mut tmp, s, true);
        // Same values (NaN-free data): compare as f64.
        assert!(tmp
            .iter()
            .zip(self.plain.iter())
            .all(|(a, b)| a.to_f64() == b.to_f64()));
        super::extexp::ext_write::<S>(self.x, self.plain, s, false);
    }
}

#[test]
fn streaming_stores_match_plain_stores() {
    for isa in Isa::supported() {
        for &n in &lengths() {
            for off in 0..3 {
                let x: Vec<f32> = data(n, 5 + n as u64, 10.0)
                    .iter()
                    .map(|&v| v as f32)
                    .collect();
                let mut plain = vec![0.0f32; n];
                let mut buf = vec![f32::NAN; n + off + 1];
                let streamed = &mut buf[off..off + n];
                crate::simd::dispatch(
                    isa,
                    WriteBoth {
                        x: &x,
                        plain: &mut plain,
                        streamed,
                    },
                );
                assert!(
                    plain
                        .iter()
                        .zip(&buf[off..off + n])
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{isa:?} n={n} off={off}"
                );
                assert!(
                    buf[..off].iter().chain(&buf[off + n..]).all(|v| v.is_nan()),
                    "out of bounds write"
                );
            }
        }
    }
}

#[test]
fn large_outputs_take_the_streaming_path() {
    // 5M f32 = 20 MB output: above the threshold of a 32 MiB L3, rows and one long row,
    // misaligned start.
    let small_l3 = crate::cpu_info::Thresholds {
        reload_max_row_bytes: 1 << 20,
        stream_min_bytes: 16 << 20,
    };
    crate::cpu_info::with_thresholds(small_l3, streamed_rows_match_the_reference);
}

fn streamed_rows_match_the_reference() {
    let n = (5 << 20) + 3;
    let xd = data(n + 1, 17, 30.0);
    let x: Vec<f32> = xd.iter().map(|&v| v as f32).collect();
    for shape in [[1usize, n], [n / 1027, 1027]] {
        let len = shape[0] * shape[1];
        let xs = &x[1..=len];
        let y = run(
            crate::simd::active(),
            xs,
            &shape,
            -1,
            Op::Softmax(Algorithm::TwoPass),
        );
        let r: Vec<f64> = xs
            .chunks(shape[1])
            .flat_map(|c| ref_softmax(&c.iter().map(|&v| v as f64).collect::<Vec<_>>()))
            .collect();
        check_close("streamed", &y, &r, 2e-6);
    }
}

#[test]
fn auto_follows_the_caches() {
    use super::driver::resolve_auto;
    use crate::cpu_info::{with_thresholds, Thresholds};
    let t = |l2: usize, l3: usize| Thresholds {
        reload_max_row_bytes: l2,
        stream_min_bytes: l3 / 2,
    };
    let (reload, two) = (Algorithm::ThreePassReload, Algorithm::TwoPass);
    // (L2, L3, row length, output bytes) -> the algorithm.
    let cases = [
        (1 << 20, 32 << 20, 1024, 16 << 20, reload),
        (1 << 20, 32 << 20, 65536, 64 << 20, two), // streams past a 32 MiB L3
        (1 << 20, 260 << 20, 65536, 64 << 20, reload), // in a 260 MiB L3
        (1 << 20, 260 << 20, 1 << 24, 64 << 20, two), // beyond the L2
        (2 << 20, 260 << 20, 1 << 18, 1 << 20, two), // a long row: two-pass splits it
        (2 << 20, 260 << 20, (1 << 18) - 1, 1 << 20, reload),
        (512 << 10, 32 << 20, (1 << 17) + 16, 1 << 20, two), // beyond a 512 KiB L2
        (1 << 20, 32 << 20, 512, 64 << 20, reload),          // short rows never take two-pass
    ];
    for (l2, l3, n, bytes, want) in cases {
        let got = with_thresholds(t(l2, l3), || resolve_auto::<f32>(n, bytes));
        assert_eq!(got, want, "L2 {l2} L3 {l3} n {n} bytes {bytes}");
    }
}
