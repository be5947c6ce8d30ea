//! What the crate's tests share (BLAKE3's test.rs idea): lengths around every vector width and
//! unroll, a seeded generator, and the loop over every ISA this CPU runs.

use crate::simd::{Elem, Isa};

/// 0..=small, then k * w - 1, k * w, k * w + 1 for every k in `ks` and width in `widths`,
/// sorted and without repeats.
pub fn lengths_around(small: usize, ks: &[usize], widths: &[usize]) -> Vec<usize> {
    let mut v: Vec<usize> = (0..=small).collect();
    for &k in ks {
        for &w in widths {
            v.extend([(k * w).saturating_sub(1), k * w, k * w + 1]);
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// `len` deterministic pseudo-random values, uniform in [lo, hi) (xorshift64 from `seed`).
pub fn uniform<E: Elem>(len: usize, seed: u64, lo: f64, hi: f64) -> Vec<E> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            E::from_f64(lo + (s >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo))
        })
        .collect()
}

/// `f` on every ISA this CPU supports, narrowest (the portable oracle) first.
pub fn for_each_isa(mut f: impl FnMut(Isa)) {
    for isa in Isa::supported() {
        f(isa);
    }
}
