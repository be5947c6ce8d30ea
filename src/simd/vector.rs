//! The `Simd` trait: the handful of vector primitives every kernel is written in, once, generic
//! over the ISA. Implementations are `#[inline(always)]`, so a generic kernel instantiated inside a
//! `#[target_feature]` function compiles to that ISA's instructions with no calls.

use std::fmt::Debug;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// A floating-point element type (f32 or f64) with the constants the kernels need.
pub trait Elem:
    Copy
    + Debug
    + Default
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    const INFINITY: Self;
    const NEG_INFINITY: Self;
    const NAN: Self;
    /// The most negative finite value.
    const LOWEST: Self;
    /// log2(e), rounded to nearest.
    const LOG2E: Self;
    /// Cody–Waite split of ln 2: LN2_HI + LN2_LO = ln 2 to twice the working precision, LN2_HI
    /// with trailing zero bits so n * LN2_HI is exact for the |n| the kernels produce.
    const LN2_HI: Self;
    const LN2_LO: Self;
    /// Coefficients of q(r), highest degree first, in e^r ~= 1 + r + r^2 q(r) on [-ln2/2, ln2/2].
    /// Fitted for this crate (minimax of the relative error, see `simd/exp.rs`).
    const EXP_Q: &'static [Self];
    /// A shorter q for the softmax kernels, whose outputs need 2e-6 (f32), not 2 ULP: degree 3
    /// for f32 (1.8 ULP approximation error, one FMA less per element); the same as EXP_Q for f64.
    const EXP_Q_SOFTMAX: &'static [Self];
    /// Below this `exp` returns +0 (e^x < half the smallest subnormal).
    const EXP_UNDERFLOW: Self;
    /// Above this `exp` returns +inf.
    const EXP_OVERFLOW: Self;
    /// Inputs to the extended-exponent parts are clamped up to this, so n stays an exact integer
    /// small enough for accurate range reduction; -inf becomes a finite number whose share of any
    /// row with a larger entry is exactly 0 (see `softmax::extexp`).
    const EXT_X_MIN: Self;
    /// Two-pass rows whose largest exponent |n| reaches this fall back to max subtraction.
    const EXT_N_LIMIT: Self;
    /// Number of mantissa bits (24 or 53).
    const MANTISSA_DIGITS: u32;

    fn to_f64(self) -> f64;
    fn from_f64(x: f64) -> Self;
    fn is_finite(self) -> bool;
    fn is_nan(self) -> bool;
}

/// One ISA's vectors of one element type. `max`/`min` follow x86 semantics: when either operand
/// is NaN the *second* operand is returned, so `max(acc, x)` propagates a NaN `x`.
pub trait Simd: Copy + Send + Sync + 'static {
    type E: Elem;
    type V: Copy;
    const LANES: usize;

    /// # Safety
    /// `p..p+LANES` must be readable.
    unsafe fn load(p: *const Self::E) -> Self::V;
    /// # Safety
    /// `p..p+LANES` must be writable.
    unsafe fn store(p: *mut Self::E, v: Self::V);
    /// Loads the first `n < LANES` elements; the other lanes hold `fill`. Never reads past `p+n`.
    ///
    /// # Safety
    /// `p..p+n` must be readable.
    unsafe fn load_partial(p: *const Self::E, n: usize, fill: Self::E) -> Self::V;
    /// Stores the first `n < LANES` lanes. Never writes past `p+n`.
    ///
    /// # Safety
    /// `p..p+n` must be writable.
    unsafe fn store_partial(p: *mut Self::E, n: usize, v: Self::V);

    /// Non-temporal store of a full vector (bypasses the caches: no read-for-ownership of the
    /// destination line). Portable default: a plain store.
    ///
    /// # Safety
    /// `p..p+LANES` must be writable and aligned to `LANES * size_of::<E>()` bytes.
    #[inline(always)]
    unsafe fn stream(p: *mut Self::E, v: Self::V) {
        // SAFETY: forwarded from the caller.
        unsafe { Self::store(p, v) }
    }
    /// Orders earlier non-temporal stores before later stores (an `sfence` on x86).
    #[inline(always)]
    fn stream_fence() {}

    fn splat(x: Self::E) -> Self::V;
    fn add(a: Self::V, b: Self::V) -> Self::V;
    fn sub(a: Self::V, b: Self::V) -> Self::V;
    fn mul(a: Self::V, b: Self::V) -> Self::V;
    /// a * b + c, fused where the ISA has FMA.
    fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    fn max(a: Self::V, b: Self::V) -> Self::V;
    fn min(a: Self::V, b: Self::V) -> Self::V;
    /// Round to the nearest integer, ties to even.
    fn round(a: Self::V) -> Self::V;
    /// p * 2^n for integer-valued n in [-2*EMAX, 2*EMAX]: exact, with gradual underflow and
    /// overflow to infinity (n outside that range must be clamped by the caller).
    fn ldexp(p: Self::V, n: Self::V) -> Self::V;
    /// p * 2^d for integer-valued d <= 0 and |p| < 4: may flush results below the smallest normal
    /// to zero. Used where such terms are below the working precision of a sum.
    fn ldexp_ftz(p: Self::V, d: Self::V) -> Self::V;
    /// r = x - n ln2 for integer-valued n with |n| <= 1.5e5 (Cody–Waite, two FMAs).
    #[inline(always)]
    fn reduce_ln2(x: Self::V, n: Self::V) -> Self::V {
        let r = Self::fma(n, Self::splat(-Self::E::LN2_HI), x);
        Self::fma(n, Self::splat(-Self::E::LN2_LO), r)
    }
    fn reduce_add(v: Self::V) -> Self::E;
    fn reduce_max(v: Self::V) -> Self::E;
    /// Bit i set when lane i of a equals lane i of b (ordered: NaN lanes are unequal).
    fn eq_mask(a: Self::V, b: Self::V) -> u64;
    /// Lanes of a that are below t (ordered), the others from `fill`.
    fn below_or(a: Self::V, t: Self::V, fill: Self::V) -> Self::V;
    /// x where a >= b (ordered), else y.
    fn select_ge(a: Self::V, b: Self::V, x: Self::V, y: Self::V) -> Self::V;
    fn div(a: Self::V, b: Self::V) -> Self::V;
    /// Lane l from p[l * stride] (a gather; `stride` in elements, lanes * stride < 2^31).
    ///
    /// # Safety
    /// Every p[l * stride], l < LANES, must be readable.
    unsafe fn load_strided(p: *const Self::E, stride: usize) -> Self::V;
    /// Writes the lanes to `out[..LANES]`.
    fn to_lanes(v: Self::V, out: &mut [Self::E]);
    /// Transposes a LANES x LANES block: dst[c * ds + r] = src[r * ss + c]. Portable default:
    /// element by element (wide f32 paths override it with a shuffle network).
    ///
    /// # Safety
    /// Rows r < LANES of LANES elements at `src + r ss` must be readable, at `dst + r ds`
    /// writable, and the two blocks must not overlap.
    #[inline(always)]
    unsafe fn transpose(src: *const Self::E, ss: usize, dst: *mut Self::E, ds: usize) {
        for r in 0..Self::LANES {
            for c in 0..Self::LANES {
                // SAFETY: forwarded from the caller.
                unsafe { *dst.add(c * ds + r) = *src.add(r * ss + c) };
            }
        }
    }
}

impl Elem for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const INFINITY: Self = f32::INFINITY;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    const NAN: Self = f32::NAN;
    const LOWEST: Self = f32::MIN;
    const LOG2E: Self = std::f32::consts::LOG2_E;
    // 0x1.62e400p-1: 12 trailing zero bits, exact products for |n| < 2^12.
    const LN2_HI: Self = f32::from_bits(0x3f31_7200);
    const LN2_LO: Self = f32::from_bits(0x35bf_be8e); // ln2 - LN2_HI, rounded
    const EXP_Q: &'static [Self] = &[
        f32::from_bits(0x3ab6_4b6d), // 0x1.6c96dap-10
        f32::from_bits(0x3c09_32f4), // 0x1.1265e8p-7
        f32::from_bits(0x3d2a_ab61), // 0x1.5556c2p-5
        f32::from_bits(0x3e2a_aa24), // 0x1.555448p-3
        f32::from_bits(0x3eff_fffe), // 0x1.fffffcp-2
    ];
    const EXP_Q_SOFTMAX: &'static [Self] = &[
        f32::from_bits(0x3c08_28db), // 0x1.1051b6p-7
        f32::from_bits(0x3d2b_9485), // 0x1.57290ap-5
        f32::from_bits(0x3e2a_abe8), // 0x1.5557d0p-3
        f32::from_bits(0x3eff_ff01), // 0x1.fffe02p-2
    ];
    // e^-105 < 2^-150 (half the smallest subnormal); e^88.72284 > f32::MAX.
    const EXP_UNDERFLOW: Self = -105.0;
    const EXP_OVERFLOW: Self = 88.722_84;
    // |n| <= 1.5e5 keeps n * (ln2 - LN2_HI - LN2_LO) below 1e-8: r stays accurate to f32.
    const EXT_X_MIN: Self = -1.0e5;
    const EXT_N_LIMIT: Self = 1.5e5;
    const MANTISSA_DIGITS: u32 = 24;

    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}

impl Elem for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const INFINITY: Self = f64::INFINITY;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    const NAN: Self = f64::NAN;
    const LOWEST: Self = f64::MIN;
    const LOG2E: Self = std::f64::consts::LOG2_E;
    // fdlibm's split: LN2_HI has 21 trailing zero bits (n * LN2_HI exact for |n| < 2^21).
    const LN2_HI: Self = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: Self = f64::from_bits(0x3dea_39ef_3579_3c76);
    const EXP_Q: &'static [Self] = &[
        f64::from_bits(0x3e5a_f450_f471_2d6f), // 0x1.af450f4712d6fp-26
        f64::from_bits(0x3e92_89b9_8ad8_886e), // 0x1.289b98ad8886ep-22
        f64::from_bits(0x3ec7_1de0_8511_19cc), // 0x1.71de0851119ccp-19
        f64::from_bits(0x3efa_019b_054d_f188), // 0x1.a019b054df188p-16
        f64::from_bits(0x3f2a_01a0_1a93_00e6), // 0x1.a01a01a9300e6p-13
        f64::from_bits(0x3f56_c16c_17ad_b6c4), // 0x1.6c16c17adb6c4p-10
        f64::from_bits(0x3f81_1111_1111_07d3), // 0x1.11111111107d3p-7
        f64::from_bits(0x3fa5_5555_5555_374a), // 0x1.555555555374ap-5
        f64::from_bits(0x3fc5_5555_5555_5556), // 0x1.5555555555556p-3
        f64::from_bits(0x3fe0_0000_0000_0001), // 0x1.0000000000001p-1
    ];
    const EXP_Q_SOFTMAX: &'static [Self] = Self::EXP_Q;
    // e^-746 < 2^-1075; e^709.782712893384 > f64::MAX.
    const EXP_UNDERFLOW: Self = -746.0;
    const EXP_OVERFLOW: Self = 709.782_712_893_384;
    // |n| < 2^21 keeps n * LN2_HI exact, so the portable path needs no FMA for r.
    const EXT_X_MIN: Self = -1.0e5;
    const EXT_N_LIMIT: Self = 1.5e5;
    const MANTISSA_DIGITS: u32 = 53;

    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
}
