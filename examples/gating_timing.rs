//! Times top_k_gating on the benchmark shapes: `cargo run --release --example gating_timing`.
use ndarray::Array2;
use softcore::moe::{top_k_gating, GateOptions, GroupScore, Score};
use std::time::Instant;

fn main() {
    softcore::threads::set_num_threads(1).expect("threads");
    let mut s = 0x1234_5678u64;
    for (t, e, k) in [
        (65536usize, 64usize, 2usize),
        (65536, 8, 2),
        (16384, 256, 8),
    ] {
        let x = Array2::from_shape_fn((t, e), |_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) as f32 * 4.0
        });
        let bias = ndarray::Array1::from_shape_fn(e, |j| (j % 7) as f32 * 0.01);
        let v3 = GateOptions {
            score: Score::Sigmoid,
            n_group: 8,
            topk_group: 4,
            group_score: GroupScore::SumTop2,
            ..GateOptions::new(k)
        };
        for (name, opts, b) in [
            ("plain", GateOptions::new(k), None),
            ("v3", v3, Some(bias.view())),
        ] {
            if name == "v3" && e < 64 {
                continue;
            }
            let mut best = f64::MAX;
            for _ in 0..10 {
                let t0 = Instant::now();
                let r = top_k_gating(x.view(), b, &opts).expect("gate");
                std::hint::black_box(r);
                best = best.min(t0.elapsed().as_secs_f64());
            }
            println!("({t},{e},k={k}) {name}: {:.2} ms", best * 1e3);
        }
    }
}
