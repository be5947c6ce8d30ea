//! Property tests of the raw Rust drivers (the layer under the Python bindings), as the hostile
//! Python suite (tests/test_hostile.py) does for the bindings: generated shapes (zero sizes
//! included), strides (negative, zero, steps), NaN/inf, masks, split counts and indices. Every
//! call returns Ok or Err, never panics, and an Ok result keeps the contract (rows summing to 1,
//! every ISA matching the portable path, averages within the values' range).
//!
//! `PROPTEST_CASES=2000 cargo test --lib drivers_proptest` runs a long profile.

use crate::attention::{decode_attention, softmax_attention, DecodeOptions, ExactOptions};
use crate::moe::{moe_dispatch, top_k_gating, GateOptions};
use crate::simd::Isa;
use crate::softmax::{logsumexp_with, softmax_with, Algorithm, Op};
use ndarray::{s, Array, ArrayD, ArrayViewD, IxDyn, ShapeBuilder};
use proptest::prelude::*;

/// Values of a row: mostly normal, sometimes large, sometimes NaN/inf.
fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => -8.0f32..8.0,
        1 => -1e30f32..1e30,
        1 => prop_oneof![Just(f32::NAN), Just(f32::INFINITY), Just(f32::NEG_INFINITY)],
    ]
}

/// A (b, n) array viewed through a step (1, 2 or reversed) along each axis, or broadcast.
#[derive(Debug, Clone)]
struct Strided {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
    layout: u8,
}

fn strided() -> impl Strategy<Value = Strided> {
    (0usize..5, 0usize..40, 0u8..5).prop_flat_map(|(rows, cols, layout)| {
        prop::collection::vec(value(), 2 * rows * 2 * cols).prop_map(move |data| Strided {
            data,
            rows,
            cols,
            layout,
        })
    })
}

impl Strided {
    /// The view: C order, every other element, reversed rows, transposed, or one row broadcast.
    fn view(&self) -> ArrayViewD<'_, f32> {
        let full = ndarray::ArrayView2::from_shape((2 * self.rows, 2 * self.cols), &self.data)
            .expect("shape");
        let (r, c) = (self.rows as isize, self.cols as isize);
        match self.layout {
            0 => full.slice_move(s![..r, ..c]).into_dyn(),
            1 => full.slice_move(s![..2 * r;2, ..2 * c;2]).into_dyn(),
            2 => full.slice_move(s![..r;-1, ..c]).into_dyn(),
            3 => full.slice_move(s![..r, ..c]).reversed_axes().into_dyn(),
            _ if self.rows == 0 => full.slice_move(s![..r, ..c]).into_dyn(),
            // Row 0 broadcast down the rows (stride 0).
            _ => ndarray::ArrayView2::from_shape(
                (self.rows, self.cols).strides((0, 1)),
                &self.data[..self.cols],
            )
            .expect("broadcast")
            .into_dyn(),
        }
    }
}

fn softmax_on(isa: Isa, x: ArrayViewD<'_, f32>, axis: isize, op: Op) -> Option<ArrayD<f32>> {
    let mut out = ArrayD::<f32>::zeros(x.raw_dim());
    softmax_with(isa, x, axis, op, None, out.view_mut()).ok()?;
    Some(out)
}

fn close(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 2e-6 * a.abs().max(b.abs()).max(1e-30)
}

proptest! {
    // Cases from PROPTEST_CASES (default 256); failures are printed, not saved to a file.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn softmax_every_isa_matches_portable_and_sums_to_one(
        x in strided(), axis in -2isize..2, algo in 0usize..4, log in any::<bool>(),
    ) {
        let v = x.view();
        let algorithm = [
            Algorithm::TwoPass,
            Algorithm::ThreePassReload,
            Algorithm::Online,
            Algorithm::Auto,
        ][algo];
        let op = if log { Op::LogSoftmax } else { Op::Softmax(algorithm) };
        let portable = softmax_on(Isa::Scalar, v.view(), axis, op).expect("valid axis");
        for isa in Isa::supported() {
            let got = softmax_on(isa, v.view(), axis, op).expect("valid axis");
            for (a, b) in got.iter().zip(portable.iter()) {
                // log_softmax near 0 is a difference of terms of the row's size: absolute.
                let near = log && (a - b).abs() <= 2e-6 * a.abs().max(b.abs()).max(1.0);
                prop_assert!(close(*a, *b) || near, "{isa:?}: {a} vs portable {b}; x {v:?}");
            }
        }
        // A row of finite values (with its max finite) sums to 1.
        let ax = axis.rem_euclid(2) as usize;
        if !log {
            for (row, inp) in portable.lanes(ndarray::Axis(ax)).into_iter()
                .zip(v.lanes(ndarray::Axis(ax)))
            {
                if !inp.is_empty() && inp.iter().all(|t| t.is_finite()) {
                    let sum: f64 = row.iter().map(|&t| t as f64).sum();
                    prop_assert!((sum - 1.0).abs() < 1e-5, "sum {sum}");
                }
            }
        }
        prop_assert!(softmax_on(Isa::Scalar, v.view(), 2, op).is_none());
    }

    #[test]
    fn logsumexp_every_isa_matches_portable(x in strided(), axis in -2isize..2) {
        let v = x.view();
        let portable = logsumexp_with(Isa::Scalar, v.view(), axis, None).expect("axis");
        for isa in Isa::supported() {
            let got = logsumexp_with(isa, v.view(), axis, None).expect("axis");
            for (a, b) in got.iter().zip(portable.iter()) {
                // Absolute near 0: a log-sum-exp of 0 cancels terms of size 1.
                prop_assert!(close(*a, *b) || (a - b).abs() <= 2e-6, "{isa:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn exact_attention_never_panics_and_averages_v(
        (h, n, s, d, dv) in (1usize..3, 0usize..9, 0usize..9, 0usize..5, 0usize..4),
        causal in any::<bool>(), window in prop::option::of(0usize..4),
        seed in any::<u64>(), masked in any::<bool>(), big in any::<bool>(),
    ) {
        let scale = if big { 1e19 } else { 1.0 };
        let r = |len: usize, k: u64| -> Vec<f32> {
            values(len, seed ^ k).into_iter().map(|t| t * scale).collect()
        };
        let q = Array::from_shape_vec(IxDyn(&[h, n, d]), r(h * n * d, 1)).expect("q");
        let k = Array::from_shape_vec(IxDyn(&[h, s, d]), r(h * s * d, 2)).expect("k");
        let v = Array::from_shape_vec(IxDyn(&[h, s, dv]), values(h * s * dv, seed))
            .expect("v");
        let mask = Array::from_shape_fn(IxDyn(&[n, s]), |ix| !(ix[0] * 7 + ix[1] * 3 + (seed % 4) as usize).is_multiple_of(4));
        let opts = ExactOptions {
            scale: None,
            causal,
            window,
            mask: masked.then(|| mask.view()),
        };
        if let Ok((out, lse)) = softmax_attention(q.view(), k.view(), v.view(), &opts) {
            let (lo, hi) = v.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &t| (a.min(t), b.max(t)));
            for (row, &l) in out.lanes(ndarray::Axis(2)).into_iter().zip(lse.iter()) {
                if l == f32::NEG_INFINITY {
                    prop_assert!(row.iter().all(|&t| t == 0.0));
                } else {
                    prop_assert!(l.is_finite(), "lse {l}");
                    prop_assert!(row.iter().all(|&t| t >= lo - 1e-5 && t <= hi + 1e-5), "{row:?}");
                }
            }
        }
    }

    #[test]
    fn decode_attention_never_panics(
        (hkv, g, s, d, dv) in (1usize..3, 1usize..3, 0usize..40, 1usize..6, 1usize..4),
        len in 0i64..45, splits in prop::option::of(1usize..50),
        phi in prop::option::of(-100.0f64..100.0), seed in any::<u64>(), nan_at in prop::option::of(0usize..40),
    ) {
        let q = Array::from_shape_vec(IxDyn(&[hkv * g, d]), values(hkv * g * d, seed)).expect("q");
        let mut kd = values(hkv * s * d, seed ^ 5);
        if let Some(i) = nan_at.filter(|&i| i < kd.len()) {
            kd[i] = f32::NAN;
        }
        let k = Array::from_shape_vec(IxDyn(&[hkv, s, d]), kd).expect("k");
        let v = Array::from_shape_vec(IxDyn(&[hkv, s, dv]), values(hkv * s * dv, seed ^ 9)).expect("v");
        let kv_len = ndarray::arr0(len).into_dyn();
        let opts = DecodeOptions { scale: None, kv_len: Some(kv_len.view()), num_splits: splits, unified_max: phi };
        let r = decode_attention(q.view(), k.view(), v.view(), &opts);
        if len as usize > s {
            prop_assert!(r.is_err());
        }
        if let Ok((out, lse, _)) = r {
            let sync = decode_attention(q.view(), k.view(), v.view(), &DecodeOptions { unified_max: None, ..opts }).expect("sync");
            for (a, b) in out.iter().zip(sync.0.iter()) {
                prop_assert!(close(*a, *b) || (a - b).abs() < 1e-5, "unified {a} vs sync {b}");
            }
            prop_assert!(lse.iter().zip(sync.1.iter()).all(|(a, b)| close(*a, *b) || (a - b).abs() < 1e-5));
        }
    }

    #[test]
    fn routing_never_panics(
        (t, e, k) in (0usize..20, 1usize..12, 1usize..5), seed in any::<u64>(),
        bad in prop::option::of(-3i64..20), cap in prop::option::of(0usize..6),
    ) {
        let logits = Array::from_shape_vec((t, e), values(t * e, seed)).expect("logits");
        let opts = GateOptions::new(k);
        if let Ok((w, idx)) = top_k_gating(logits.view(), None, &opts) {
            for row in w.rows() {
                let sum: f32 = row.iter().sum();
                prop_assert!((sum - 1.0).abs() < 1e-5, "weights {row:?}");
            }
            let mut idx = idx;
            if let (Some(b), Some(first)) = (bad, idx.iter_mut().next()) {
                *first = b;
            }
            let r = moe_dispatch(idx.view(), e, cap);
            let valid = idx.iter().all(|&i| i >= 0 && (i as usize) < e);
            prop_assert_eq!(r.is_ok(), valid);
        }
    }
}

/// Deterministic values in [-3, 3) from a seed (the crate's test generator).
fn values(len: usize, seed: u64) -> Vec<f32> {
    crate::test_support::uniform(len, seed, -3.0, 3.0)
}
