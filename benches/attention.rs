//! Criterion benchmarks for issue 12's shapes, f32, one thread (SOFTCORE_NUM_THREADS changes
//! that; SOFTCORE_ISA=avx2 or =scalar runs a narrower path): exact softmax attention (8, 4096,
//! 64), causal and not; linear attention non-causal (8, 16384, 64), causal (8, 4096, 64) with and
//! without per-step decay; a decoding step (32 heads, d = dv = 128); and issue 13's (`papers`).
//! The ratios against NumPy and PyTorch are measured by benches/attention_compare.py and
//! benches/papers_compare.py (benches/README.md).

use criterion::{criterion_group, criterion_main, Criterion};
use ndarray::{s, Array2, Array3};
use softcore::attention::{
    agent_attention, decode_attention, inline_attention, linear_attention, rala_attention,
    softmax_attention, tensor_attention, AgentOptions, DecodeOptions, ExactOptions, FeatureMap,
    LinearOptions, TensorInputs, TensorOptions,
};
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

fn bench_exact(c: &mut Criterion) {
    one_thread();
    let (q, k, v) = (
        data((8, 4096, 64), 1, 1.0),
        data((8, 4096, 64), 2, 1.0),
        data((8, 4096, 64), 3, 1.0),
    );
    let mut g = c.benchmark_group("softmax_attention_8x4096x64");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for causal in [false, true] {
        let opts = ExactOptions {
            causal,
            ..ExactOptions::default()
        };
        g.bench_function(if causal { "causal" } else { "full" }, |b| {
            b.iter(|| {
                softmax_attention(
                    black_box(q.view().into_dyn()),
                    k.view().into_dyn(),
                    v.view().into_dyn(),
                    &opts,
                )
            })
        });
    }
    g.finish();
}

fn bench_linear(c: &mut Criterion) {
    one_thread();
    let mut g = c.benchmark_group("linear_attention");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    let (q, k, v) = (
        data((8, 16384, 64), 4, 0.5),
        data((8, 16384, 64), 5, 0.5),
        data((8, 16384, 64), 6, 1.0),
    );
    let opts = LinearOptions::default();
    g.bench_function("elu1_8x16384x64", |b| {
        b.iter(|| {
            linear_attention(
                black_box(q.view().into_dyn()),
                k.view().into_dyn(),
                v.view().into_dyn(),
                None,
                None,
                &opts,
            )
        })
    });
    let (q, k, v) = (
        data((8, 4096, 64), 7, 0.5),
        data((8, 4096, 64), 8, 0.5),
        data((8, 4096, 64), 9, 1.0),
    );
    let causal = LinearOptions {
        causal: true,
        ..LinearOptions::default()
    };
    g.bench_function("causal_8x4096x64", |b| {
        b.iter(|| {
            linear_attention(
                black_box(q.view().into_dyn()),
                k.view().into_dyn(),
                v.view().into_dyn(),
                None,
                None,
                &causal,
            )
        })
    });
    let gate = Array2::from_elem((8, 4096), -0.05f32).into_dyn();
    g.bench_function("causal_step_decay_8x4096x64", |b| {
        b.iter(|| {
            linear_attention(
                black_box(q.view().into_dyn()),
                k.view().into_dyn(),
                v.view().into_dyn(),
                Some(gate.view()),
                None,
                &causal,
            )
        })
    });
    let (q, k, v) = (
        data((32, 1, 128), 10, 0.5),
        data((32, 1, 128), 11, 0.5),
        data((32, 1, 128), 12, 1.0),
    );
    let s0 = data((32, 128, 128), 13, 0.1).into_dyn();
    let z0 = Array2::from_elem((32, 128), 1.0f32).into_dyn();
    g.bench_function("decode_step_32x128", |b| {
        b.iter(|| {
            linear_attention(
                black_box(q.view().into_dyn()),
                k.view().into_dyn(),
                v.view().into_dyn(),
                None,
                Some((s0.view(), Some(z0.view()))),
                &causal,
            )
        })
    });
    g.finish();
}

/// Issue 13's shapes: decoding against a 32-head cache of 8192 keys (d = 128, synchronised and
/// unified max), InLine and RALA (8, 16384, 64), Agent attention (8, 4096, 64) with 49 agents,
/// exact tensor attention (n = 256, d = 32).
fn bench_papers(c: &mut Criterion) {
    one_thread();
    let mut g = c.benchmark_group("papers");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    let qd = data((1, 32, 128), 7, 1.0)
        .into_shape_with_order((32, 128))
        .expect("2-D");
    let (kd, vd) = (data((32, 8192, 128), 8, 1.0), data((32, 8192, 128), 9, 1.0));
    for (name, phi) in [("decode_32x8192x128", None), ("decode_unified", Some(4.0))] {
        let opts = DecodeOptions {
            unified_max: phi,
            ..DecodeOptions::default()
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                decode_attention(
                    black_box(qd.view().into_dyn()),
                    kd.view().into_dyn(),
                    vd.view().into_dyn(),
                    &opts,
                )
            })
        });
    }
    let (q, k, v) = (
        data((8, 16384, 64), 4, 0.5),
        data((8, 16384, 64), 5, 0.5),
        data((8, 16384, 64), 6, 1.0),
    );
    let (qv, kv, vv) = (
        q.view().into_dyn(),
        k.view().into_dyn(),
        v.view().into_dyn(),
    );
    g.bench_function("inline_8x16384x64", |b| {
        b.iter(|| {
            inline_attention(
                black_box(qv.clone()),
                kv.clone(),
                vv.clone(),
                None,
                FeatureMap::Identity,
            )
        })
    });
    g.bench_function("rala_8x16384x64", |b| {
        b.iter(|| rala_attention(black_box(qv.clone()), kv.clone(), vv.clone(), None, 1e-6))
    });
    let n = 4096;
    let (qa, ka, va) = (
        q.slice(s![.., ..n, ..]),
        k.slice(s![.., ..n, ..]),
        v.slice(s![.., ..n, ..]),
    );
    let opts = AgentOptions {
        num_agents: 49,
        ..AgentOptions::default()
    };
    g.bench_function("agent_8x4096x64_49", |b| {
        b.iter(|| {
            agent_attention(
                black_box(qa.into_dyn()),
                ka.into_dyn(),
                va.into_dyn(),
                &opts,
            )
        })
    });
    let t: Vec<Array2<f32>> = (0..5)
        .map(|i| {
            data((1, 256, 32), 10 + i, 1.0)
                .into_shape_with_order((256, 32))
                .expect("2-D")
        })
        .collect();
    g.bench_function("tensor_exact_256x32", |b| {
        b.iter(|| {
            tensor_attention(
                TensorInputs {
                    q: black_box(t[0].view().into_dyn()),
                    k1: t[1].view().into_dyn(),
                    k2: t[2].view().into_dyn(),
                    v1: t[3].view().into_dyn(),
                    v2: t[4].view().into_dyn(),
                },
                &TensorOptions::default(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench_exact, bench_linear, bench_papers);
criterion_main!(benches);
