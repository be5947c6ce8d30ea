//! Criterion benchmarks: every softmax algorithm on every ISA this CPU has, single rows of 1K to
//! 64M f32 elements, plus log-softmax and logsumexp. Throughput counts the bytes read and written
//! once (input + output), so GB/s is comparable with a copy. One thread: set
//! SOFTCORE_NUM_THREADS to change that. `cargo bench --bench softmax -- <filter>` narrows it.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::{ArrayD, IxDyn};
use softcore::simd::Isa;
use softcore::softmax::{logsumexp_with, softmax_with, Algorithm, Op};
use std::hint::black_box;
use std::time::Duration;

const SIZES: [usize; 6] = [1 << 10, 1 << 14, 1 << 16, 1 << 20, 1 << 24, 1 << 26];

fn data(n: usize) -> Vec<f32> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 8.0
        })
        .collect()
}

fn bench_softmax(c: &mut Criterion) {
    if std::env::var_os("SOFTCORE_NUM_THREADS").is_none() {
        softcore::threads::set_num_threads(1).expect("threads");
    }
    let algos = [
        ("two_pass", Op::Softmax(Algorithm::TwoPass)),
        ("three_pass_reload", Op::Softmax(Algorithm::ThreePassReload)),
        (
            "three_pass_recompute",
            Op::Softmax(Algorithm::ThreePassRecompute),
        ),
        ("online", Op::Softmax(Algorithm::Online)),
        ("auto", Op::Softmax(Algorithm::Auto)),
        ("log_softmax", Op::LogSoftmax),
    ];
    for &n in &SIZES {
        let x = ArrayD::from_shape_vec(IxDyn(&[1, n]), data(n)).expect("shape");
        let mut y = ArrayD::<f32>::zeros(IxDyn(&[1, n]));
        let mut g = c.benchmark_group(format!("softmax_f32_{n}"));
        g.throughput(Throughput::Bytes((2 * n * 4) as u64));
        if n >= 1 << 24 {
            g.sample_size(10)
                .measurement_time(Duration::from_secs(4))
                .warm_up_time(Duration::from_secs(1));
        }
        for isa in Isa::supported() {
            for (name, op) in algos {
                g.bench_function(BenchmarkId::new(name, isa.name()), |b| {
                    b.iter(|| {
                        softmax_with(isa, black_box(x.view()), -1, op, None, y.view_mut())
                            .expect("softmax")
                    })
                });
            }
            g.bench_function(BenchmarkId::new("logsumexp", isa.name()), |b| {
                b.iter(|| logsumexp_with(isa, black_box(x.view()), -1, None).expect("lse"))
            });
        }
        g.bench_function("copy", |b| b.iter(|| y.assign(black_box(&x))));
        g.finish();
    }
}

criterion_group!(benches, bench_softmax);
criterion_main!(benches);
