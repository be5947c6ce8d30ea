//! Runs SOFT attention (8 heads, n=4096, d=32, 49 segment-mean landmarks, f32, one thread) in a
//! loop (best time per call; HEADS=h and N=n change the head count and length, an argument the
//! repetitions; LANDMARKS=given passes landmarks in):
//! `cargo run --release --example soft_timing`.
use ndarray::Array3;
use softcore::attention::{soft_attention, SoftOptions};
use softcore::linalg::PinvOptions;
use std::time::Instant;

fn main() {
    softcore::threads::set_num_threads(1).expect("threads");
    let h: usize = std::env::var("HEADS")
        .ok()
        .and_then(|x| x.parse().ok())
        .unwrap_or(8);
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|x| x.parse().ok())
        .unwrap_or(4096);
    let d = 32usize;
    let mut s = 0x1234_5678u64;
    let mut rnd = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) as f32
    };
    let q = Array3::from_shape_fn((h, n, d), |_| rnd() * 0.8);
    let v = Array3::from_shape_fn((h, n, d), |_| rnd());
    // LANDMARKS=given: landmarks passed in (0.25 x uniform noise of unit variance), as learned
    // landmarks are; otherwise segment means of q, formed inside the timed call.
    let given = std::env::var("LANDMARKS").is_ok_and(|x| x == "given");
    let lm = Array3::from_shape_fn((h, 49, d), |_| rnd() * 0.87);
    let opts = SoftOptions {
        num_landmarks: 49,
        pinv: PinvOptions::default(),
        normalize: false,
    };
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        let out = soft_attention(
            q.view().into_dyn(),
            v.view().into_dyn(),
            given.then(|| lm.view().into_dyn()),
            &opts,
        )
        .expect("soft");
        best = best.min(t.elapsed().as_secs_f64());
        std::hint::black_box(out);
    }
    println!(
        "best {:.3} ms per call ({:.3} ms per head)",
        best * 1e3,
        best * 1e3 / h as f64
    );
}
