//! SIMD layer: one `Simd` trait of vector primitives, implemented for the portable scalar path
//! (the oracle) and, on x86-64, for AVX2+FMA and AVX-512F. ISA detection runs once and is cached
//! (the BLAKE3 `platform.rs` pattern); `SOFTCORE_ISA` may force a narrower path, as polars'
//! cpuid override does, so tests and benchmarks can exercise every path on one machine.
//!
//! Naming: a function that takes the ISA as a runtime argument (`isa: Isa`, dispatched inside)
//! ends in `_with` (`softmax_with`, `small_gemm_with`, `online_tile_with`); an in-kernel helper
//! generic over the ISA (`<S: Simd>`, called from inside a dispatched kernel) ends in `_on`
//! (`exp_poly_on::<S>`, `logsumexp_on::<S>`). Module-private steps of one driver keep plain names.

// The vector types and the `Simd` trait stay inside the crate: their safe methods execute ISA
// instructions, so only `dispatch` (which checks the CPU first) may reach them. `Lanes` is
// public but unnameable outside (a sealed bound on the public generic functions).
mod dispatch;
pub(crate) mod exp;
pub(crate) mod expmap;
pub(crate) mod scalar;
mod vector;

#[cfg(test)]
mod exp2_tests;
#[cfg(test)]
mod tests;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod transpose;

pub use dispatch::Lanes;
pub(crate) use dispatch::{dispatch, Kernel};
pub use vector::Elem;
pub(crate) use vector::Simd;

use std::sync::OnceLock;

/// An instruction-set path. Ordered from narrowest to widest so `min` picks the narrower one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    Scalar,
    Avx2,
    Avx512F,
}

impl Isa {
    /// The name used by `softcore.isa()` and `SOFTCORE_ISA`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512F => "avx512f",
        }
    }

    pub fn from_name(name: &str) -> Option<Isa> {
        match name.trim().to_ascii_lowercase().as_str() {
            "scalar" | "portable" => Some(Isa::Scalar),
            "avx2" => Some(Isa::Avx2),
            "avx512f" | "avx512" => Some(Isa::Avx512F),
            _ => None,
        }
    }

    /// Every path this CPU can run, narrowest first (used by tests to sweep all of them).
    pub fn supported() -> Vec<Isa> {
        let best = detect_hardware();
        [Isa::Scalar, Isa::Avx2, Isa::Avx512F]
            .into_iter()
            .filter(|&i| i <= best)
            .collect()
    }
}

/// The widest path the hardware supports, ignoring the environment.
pub fn detect_hardware() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512F;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Isa::Avx2;
        }
    }
    Isa::Scalar
}

/// The path in use: the hardware's best, narrowed by `SOFTCORE_ISA` if set. An unknown or wider
/// request than the hardware supports is ignored (never widened: that would fault).
pub fn active() -> Isa {
    static ACTIVE: OnceLock<Isa> = OnceLock::new();
    *ACTIVE.get_or_init(|| {
        let hw = detect_hardware();
        match std::env::var("SOFTCORE_ISA")
            .ok()
            .as_deref()
            .and_then(Isa::from_name)
        {
            Some(req) => req.min(hw),
            None => hw,
        }
    })
}

/// The run length (whole 64-byte lines) that splits a stream of `bytes` into `parts` runs for
/// `prefetch_run`: the one division, done once per stream instead of once per hint.
pub(crate) fn prefetch_step(bytes: usize, parts: usize) -> usize {
    bytes.div_ceil(parts.max(1)).next_multiple_of(64)
}

/// Hints that bytes [k * step, (k + 1) * step) of `xs` (clamped to the slice) will be read soon
/// (into L1). For streams the hardware prefetchers miss: those read in bursts with long compute
/// between them. A no-op off x86-64.
#[inline(always)]
pub(crate) fn prefetch_run<E>(xs: &[E], k: usize, step: usize) {
    let bytes = std::mem::size_of_val(xs);
    let lo = k.saturating_mul(step).min(bytes);
    let hi = lo.saturating_add(step).min(bytes);
    // A plain counted loop: `step_by` kept overflow bookkeeping in the loop (about 20
    // instructions per hint, measurable on a SOFT head).
    #[cfg(target_arch = "x86_64")]
    {
        let base = xs.as_ptr().cast::<u8>();
        let mut off = lo;
        while off < hi {
            // SAFETY: off < hi <= bytes, so the address is inside `xs`; a prefetch never faults
            // and has no architectural effect (SSE, part of the x86-64 baseline).
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(base.add(off).cast::<i8>());
            }
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (lo, hi);
}

/// Whether every element is finite: 0 x is 0 for finite x and NaN for inf and NaN, and four
/// independent vector sums of it run at load speed (an early-exit `any` does not vectorise).
/// On the active ISA: every input check of the crate goes through here.
pub fn all_finite<E: Lanes>(xs: &[E]) -> bool {
    all_finite_with(active(), xs)
}

/// `all_finite` on `isa` (tests run every ISA).
pub fn all_finite_with<E: Lanes>(isa: Isa, xs: &[E]) -> bool {
    dispatch(isa, AllFinite { xs })
}

struct AllFinite<'a, E> {
    xs: &'a [E],
}

impl<E: Lanes> Kernel<E> for AllFinite<'_, E> {
    type Output = bool;
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) -> bool {
        let (w, n, p) = (S::LANES, self.xs.len(), self.xs.as_ptr());
        let zero = S::splat(E::ZERO);
        let mut acc = [zero; 4];
        let mut j = 0;
        // SAFETY: every access is below n = xs.len().
        unsafe {
            while j + 4 * w <= n {
                for (u, a) in acc.iter_mut().enumerate() {
                    *a = S::fma(S::load(p.add(j + u * w)), zero, *a);
                }
                j += 4 * w;
            }
        }
        let tail = self.xs[j..].iter().all(|x| x.is_finite());
        let v = S::add(S::add(acc[0], acc[1]), S::add(acc[2], acc[3]));
        tail && S::reduce_add(v) == E::ZERO
    }
}
