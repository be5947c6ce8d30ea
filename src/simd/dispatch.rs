//! Runs a kernel written generically over `Simd` on the active ISA. Each ISA gets one
//! `#[target_feature]` entry point; the kernel's `#[inline(always)]` body is compiled into it.

use super::scalar::{ScalarF32, ScalarF64};
use super::vector::{Elem, Simd};
use super::Isa;

#[cfg(target_arch = "x86_64")]
use super::avx2::{Avx2F32, Avx2F64};
#[cfg(target_arch = "x86_64")]
use super::avx512::{Avx512F32, Avx512F64};

/// Maps an element type to its vector type on each ISA.
pub trait Lanes: Elem {
    type Scalar: Simd<E = Self, V = Self>;
    #[cfg(target_arch = "x86_64")]
    type Avx2: Simd<E = Self>;
    #[cfg(target_arch = "x86_64")]
    type Avx512: Simd<E = Self>;
}

impl Lanes for f32 {
    type Scalar = ScalarF32;
    #[cfg(target_arch = "x86_64")]
    type Avx2 = Avx2F32;
    #[cfg(target_arch = "x86_64")]
    type Avx512 = Avx512F32;
}

impl Lanes for f64 {
    type Scalar = ScalarF64;
    #[cfg(target_arch = "x86_64")]
    type Avx2 = Avx2F64;
    #[cfg(target_arch = "x86_64")]
    type Avx512 = Avx512F64;
}

/// A computation generic over the vector type. `run` must be `#[inline(always)]`.
pub trait Kernel<E: Elem> {
    type Output;
    fn run<S: Simd<E = E>>(self) -> Self::Output;
}

/// Runs `k` on `isa`, which must be one `Isa::supported()` returns (callers pass `simd::active()`
/// or a value from `supported()`; anything wider falls back to the widest supported path).
pub fn dispatch<E: Lanes, K: Kernel<E>>(isa: Isa, k: K) -> K::Output {
    let isa = isa.min(super::detect_hardware());
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa <= detect_hardware()`, so the CPU has AVX-512F.
        Isa::Avx512F => unsafe { run_avx512(k) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa <= detect_hardware()`, so the CPU has AVX2 and FMA.
        Isa::Avx2 => unsafe { run_avx2(k) },
        _ => k.run::<E::Scalar>(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn run_avx512<E: Lanes, K: Kernel<E>>(k: K) -> K::Output {
    k.run::<E::Avx512>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<E: Lanes, K: Kernel<E>>(k: K) -> K::Output {
    k.run::<E::Avx2>()
}
