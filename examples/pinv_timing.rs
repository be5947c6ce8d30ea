//! Times `pinv` on SOFT-like Gaussian landmark batches: `cargo run --release --example pinv_timing`.
use ndarray::{Array3, Axis};
use softcore::linalg::{pinv_batch, PinvOptions};
use std::time::Instant;

fn main() {
    softcore::threads::set_num_threads(1).expect("threads");
    for &(b, m) in &[(64usize, 49usize), (64, 64), (16, 128), (4, 256)] {
        let mut s = 0x9E37_79B9u64;
        let mut rnd = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let l: Vec<f64> = (0..b * m * 32).map(|_| 0.25 * rnd() * 3.4).collect();
        let mut k = Array3::<f32>::zeros((b, m, m));
        for (bi, mut mat) in k.axis_iter_mut(Axis(0)).enumerate() {
            for i in 0..m {
                for j in 0..m {
                    let d: f64 = (0..32)
                        .map(|t| (l[(bi * m + i) * 32 + t] - l[(bi * m + j) * 32 + t]).powi(2))
                        .sum();
                    mat[[i, j]] = (-d / 2.0).exp() as f32;
                }
            }
        }
        let opts = PinvOptions::default();
        let kd = k.into_dyn();
        let mut best = f64::MAX;
        let mut iters = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let (_, info) = pinv_batch(kd.view(), &opts).expect("pinv");
            best = best.min(t.elapsed().as_secs_f64());
            iters = info.iter().map(|i| i.iterations).sum::<usize>();
        }
        let flops = 2.0 * 2.0 * (m * m * m) as f64 * iters as f64;
        println!(
            "({b},{m},{m}): {:.2} ms, {iters} steps in all, {:.1} GFLOP/s",
            best * 1e3,
            flops / best / 1e9
        );
    }
}
