//! The portable path: one lane, plain Rust. It is the oracle the SIMD paths are tested against
//! and the path every other target runs. No FMA is assumed (a software `mul_add` is slow), so
//! range reduction is arranged to be exact without it.

use super::vector::{Elem, Simd};

#[derive(Clone, Copy, Debug, Default)]
pub struct ScalarF32;
#[derive(Clone, Copy, Debug, Default)]
pub struct ScalarF64;

/// x86 `maxps` semantics: the second operand when either is NaN.
#[inline(always)]
fn max_x86<T: PartialOrd>(a: T, b: T) -> T {
    if a > b {
        a
    } else {
        b
    }
}

#[inline(always)]
fn min_x86<T: PartialOrd>(a: T, b: T) -> T {
    if a < b {
        a
    } else {
        b
    }
}

/// 2^k for k in [-126, 127] (f32) built from the exponent bits.
#[inline(always)]
fn pow2_f32(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

#[inline(always)]
fn pow2_f64(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

macro_rules! scalar_common {
    ($e:ty) => {
        type E = $e;
        type V = $e;
        const LANES: usize = 1;

        #[inline(always)]
        unsafe fn load(p: *const $e) -> $e {
            // SAFETY: the caller guarantees p is readable.
            unsafe { p.read_unaligned() }
        }
        #[inline(always)]
        unsafe fn store(p: *mut $e, v: $e) {
            // SAFETY: the caller guarantees p is writable.
            unsafe { p.write_unaligned(v) }
        }
        #[inline(always)]
        unsafe fn load_partial(_p: *const $e, _n: usize, fill: $e) -> $e {
            // n < LANES = 1: nothing to read.
            fill
        }
        #[inline(always)]
        unsafe fn store_partial(_p: *mut $e, _n: usize, _v: $e) {}
        #[inline(always)]
        fn splat(x: $e) -> $e {
            x
        }
        #[inline(always)]
        fn add(a: $e, b: $e) -> $e {
            a + b
        }
        #[inline(always)]
        fn sub(a: $e, b: $e) -> $e {
            a - b
        }
        #[inline(always)]
        fn mul(a: $e, b: $e) -> $e {
            a * b
        }
        #[inline(always)]
        fn fma(a: $e, b: $e, c: $e) -> $e {
            a * b + c
        }
        #[inline(always)]
        fn max(a: $e, b: $e) -> $e {
            max_x86(a, b)
        }
        #[inline(always)]
        fn min(a: $e, b: $e) -> $e {
            min_x86(a, b)
        }
        #[inline(always)]
        fn round(a: $e) -> $e {
            // Adding and removing 1.5 * 2^(digits - 1) rounds to nearest-even in the current
            // (default) rounding mode for |a| < 2^(digits - 2), far beyond the |n| the kernels
            // produce; `round_ties_even` is a libm call on baseline x86-64 (no SSE4.1).
            let magic: $e = 1.5 * (1u64 << (<$e>::MANTISSA_DIGITS - 1)) as $e;
            if a.abs() < magic * 0.25 {
                (a + magic) - magic
            } else {
                a.round_ties_even()
            }
        }
        #[inline(always)]
        fn reduce_add(v: $e) -> $e {
            v
        }
        #[inline(always)]
        fn reduce_max(v: $e) -> $e {
            v
        }
        #[inline(always)]
        fn eq_mask(a: $e, b: $e) -> u64 {
            (a == b) as u64
        }
        #[inline(always)]
        fn select_ge(a: $e, b: $e, x: $e, y: $e) -> $e {
            if a >= b {
                x
            } else {
                y
            }
        }
        #[inline(always)]
        fn div(a: $e, b: $e) -> $e {
            a / b
        }
        #[inline(always)]
        unsafe fn load_strided(p: *const $e, _stride: usize) -> $e {
            unsafe { *p }
        }
        #[inline(always)]
        fn below_or(a: $e, t: $e, fill: $e) -> $e {
            if a < t {
                a
            } else {
                fill
            }
        }
        #[inline(always)]
        fn to_lanes(v: $e, out: &mut [$e]) {
            out[0] = v;
        }
    };
}

impl Simd for ScalarF32 {
    scalar_common!(f32);

    #[inline(always)]
    fn ldexp(p: f32, n: f32) -> f32 {
        if n.is_nan() {
            return f32::NAN;
        }
        // Split so each factor is a normal power of two: gradual underflow, one rounding.
        let k = n.clamp(-252.0, 254.0) as i32;
        let k1 = k >> 1;
        p * pow2_f32(k1) * pow2_f32(k - k1)
    }
    #[inline(always)]
    fn ldexp_ftz(p: f32, d: f32) -> f32 {
        // d = -127 builds the bit pattern of +0.0: terms below 2^-126 are flushed.
        let k = d.clamp(-127.0, 0.0) as i32;
        p * f32::from_bits(((k + 127) as u32) << 23)
    }
    #[inline(always)]
    fn reduce_ln2(x: f32, n: f32) -> f32 {
        // Without FMA, n * LN2_HI is exact only for |n| < 2^12; double precision is exact enough
        // for every |n| <= 1.5e5 the kernels produce.
        (x as f64 - n as f64 * std::f64::consts::LN_2) as f32
    }
}

impl Simd for ScalarF64 {
    scalar_common!(f64);

    #[inline(always)]
    fn ldexp(p: f64, n: f64) -> f64 {
        if n.is_nan() {
            return f64::NAN;
        }
        let k = n.clamp(-2044.0, 2046.0) as i64;
        let k1 = k >> 1;
        p * pow2_f64(k1) * pow2_f64(k - k1)
    }
    #[inline(always)]
    fn ldexp_ftz(p: f64, d: f64) -> f64 {
        let k = d.clamp(-1023.0, 0.0) as i64;
        p * f64::from_bits(((k + 1023) as u64) << 52)
    }
    #[inline(always)]
    fn reduce_ln2(x: f64, n: f64) -> f64 {
        // LN2_HI has 21 trailing zero bits: n * LN2_HI is exact for |n| < 2^21 (fdlibm).
        (x - n * f64::LN2_HI) - n * f64::LN2_LO
    }
}
