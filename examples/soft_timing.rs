//! Times the parts of one SOFT head: `cargo run --release --example soft_timing`.
use ndarray::Array2;
use softcore::attention::soft::{gaussian_kernel, segment_means};
use softcore::linalg::{matmul, pinv, PinvOptions};
use std::time::Instant;

fn time<T>(name: &str, mut f: impl FnMut() -> T) -> T {
    let mut best = f64::MAX;
    let mut out = f();
    for _ in 0..20 {
        let t = Instant::now();
        out = f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("{name}: {:.3} ms", best * 1e3);
    out
}

fn main() {
    softcore::threads::set_num_threads(1).expect("threads");
    let (n, d, l) = (4096usize, 32usize, 49usize);
    let mut s = 0x1234_5678u64;
    let mut rnd = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) as f32
    };
    let q = Array2::from_shape_fn((n, d), |_| rnd() * 0.8);
    let v = Array2::from_shape_fn((n, d), |_| rnd());
    let lm = time("segment_means", || segment_means(q.view(), l));
    let lm = lm.mapv(|x| x * 4.0);
    let kql = time("K(q,L)", || {
        gaussian_kernel(q.view(), lm.view()).expect("k")
    });
    time("q L^T (GEMM only)", || {
        matmul(q.view(), lm.t()).expect("mm")
    });
    let kll = time("K(L,L)", || {
        gaussian_kernel(lm.view(), lm.view()).expect("k")
    });
    // As soft_head does: exactly symmetric, so pinv takes the SPD (Cholesky) start.
    let kll = (&kll + &kll.t()).mapv(|x| x * 0.5);
    let (p, info) = time("pinv", || {
        pinv(kll.view(), &PinvOptions::default()).expect("pinv")
    });
    println!("pinv steps {}", info.iterations);
    let kv = time("K(L,q) v", || matmul(kql.t(), v.view()).expect("mm"));
    let pkv = time("P (K v)", || matmul(p.view(), kv.view()).expect("mm"));
    time("K(q,L) (P K v)", || {
        matmul(kql.view(), pkv.view()).expect("mm")
    });
}
