//! Criterion benchmarks for issue 3's shapes, f32, one thread (SOFTCORE_NUM_THREADS changes
//! that; SOFTCORE_ISA=avx2 or =scalar runs a narrower path): `soft_attention` on 8 heads of
//! n=4096, d=32 with 49 landmarks (segment means, and given), and `pinv` on batches of SOFT-like
//! Gaussian landmark matrices K(L, L), L ~ 0.25 N(0, 1) in 32 dims. The ratios against NumPy are
//! measured by benches/soft_compare.py and benches/pinv_compare.py (benches/README.md).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ndarray::{Array3, Axis};
use softcore::attention::{soft_attention, SoftOptions};
use softcore::linalg::{pinv_batch, PinvOptions};
use std::hint::black_box;
use std::time::Duration;

/// Normal-ish values (sum of four uniforms) times `scale`.
fn data(shape: (usize, usize, usize), seed: u64, scale: f32) -> Array3<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut u = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    Array3::from_shape_fn(shape, |_| (u() + u() + u() + u()) * 1.73 * scale)
}

fn one_thread() {
    if std::env::var_os("SOFTCORE_NUM_THREADS").is_none() {
        softcore::threads::set_num_threads(1).expect("threads");
    }
}

fn bench_soft(c: &mut Criterion) {
    one_thread();
    let (h, n, d) = (8, 4096, 32);
    let q = data((h, n, d), 1, (d as f32).powf(-0.25));
    let v = data((h, n, d), 2, 1.0);
    let lm = data((h, 49, d), 3, 0.25);
    let opts = SoftOptions {
        num_landmarks: 49,
        pinv: PinvOptions::default(),
        normalize: false,
    };
    let mut g = c.benchmark_group("soft_attention_8x4096x32_l49");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("segment_means", |b| {
        b.iter(|| {
            soft_attention(
                black_box(q.view().into_dyn()),
                v.view().into_dyn(),
                None,
                &opts,
            )
        })
    });
    g.bench_function("given_landmarks", |b| {
        let l = Some(lm.view().into_dyn());
        b.iter(|| {
            soft_attention(
                black_box(q.view().into_dyn()),
                v.view().into_dyn(),
                l.clone(),
                &opts,
            )
        })
    });
    g.finish();
}

fn bench_pinv(c: &mut Criterion) {
    one_thread();
    let mut g = c.benchmark_group("pinv_soft_kll");
    g.measurement_time(Duration::from_secs(2));
    for (batch, m) in [(64usize, 49usize), (64, 64), (16, 128), (4, 256)] {
        let lm = data((batch, m, 32), m as u64, 0.25);
        let k = Array3::from_shape_fn((batch, m, m), |(b, i, j)| {
            let (x, y) = (lm.index_axis(Axis(0), b), lm.index_axis(Axis(0), b));
            let sq: f32 = x
                .row(i)
                .iter()
                .zip(y.row(j))
                .map(|(p, q)| (p - q) * (p - q))
                .sum();
            (-sq / 2.0).exp()
        });
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("{batch}x{m}x{m}")),
            &k,
            |b, k| b.iter(|| pinv_batch(black_box(k.view().into_dyn()), &PinvOptions::default())),
        );
    }
    g.finish();
}

criterion_group!(benches, bench_soft, bench_pinv);
criterion_main!(benches);
