//! AVX2+FMA vectors (8 x f32, 4 x f64). Tails use `vmaskmov`, which never faults on the masked-off
//! lanes. There is no `vscalef`: p * 2^n is built from exponent bits, split into two factors so
//! each is a normal power of two (gradual underflow with a single rounding).
//!
//! Every method is `#[inline(always)]` and only ever runs inside a function compiled with
//! `#[target_feature(enable = "avx2,fma")]`, reached after `detect_hardware()` saw both features.

use super::vector::Simd;
use std::arch::x86_64::*;

#[derive(Clone, Copy, Debug, Default)]
pub struct Avx2F32;
#[derive(Clone, Copy, Debug, Default)]
pub struct Avx2F64;

const ROUND_NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
const ROUND_FLOOR: i32 = _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC;

// SAFETY (both impls): the intrinsics need AVX2 and FMA, checked by the dispatcher before entering
// the `#[target_feature]` function these are inlined into; pointer arguments follow the trait's
// documented contracts.

#[inline(always)]
fn lane_mask_32(n: usize) -> __m256i {
    unsafe {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }
}

#[inline(always)]
fn lane_mask_64(n: usize) -> __m256i {
    unsafe { _mm256_cmpgt_epi64(_mm256_set1_epi64x(n as i64), _mm256_setr_epi64x(0, 1, 2, 3)) }
}

/// 2^k for integer-valued k in [-126, 127].
#[inline(always)]
fn pow2_ps(k: __m256) -> __m256 {
    unsafe {
        let ki = _mm256_cvtps_epi32(k);
        _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            ki,
            _mm256_set1_epi32(127),
        )))
    }
}

/// 2^k for integer-valued k in [-1022, 1023]: k + 1023 lands in the low mantissa bits of
/// k + (1.5 * 2^52 + 1023) and is shifted into the exponent field.
#[inline(always)]
fn pow2_pd(k: __m256d) -> __m256d {
    unsafe {
        let t = _mm256_add_pd(k, _mm256_set1_pd(6_755_399_441_056_767.0)); // 0x1.8p52 + 1023
        _mm256_castsi256_pd(_mm256_slli_epi64::<52>(_mm256_castpd_si256(t)))
    }
}

impl Simd for Avx2F32 {
    type E = f32;
    type V = __m256;
    const LANES: usize = 8;

    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m256 {
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m256) {
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize, fill: f32) -> __m256 {
        let m = lane_mask_32(n);
        unsafe {
            let x = _mm256_maskload_ps(p, m);
            _mm256_blendv_ps(_mm256_set1_ps(fill), x, _mm256_castsi256_ps(m))
        }
    }
    #[inline(always)]
    unsafe fn store_partial(p: *mut f32, n: usize, v: __m256) {
        unsafe { _mm256_maskstore_ps(p, lane_mask_32(n), v) }
    }
    #[inline(always)]
    unsafe fn stream(p: *mut f32, v: __m256) {
        unsafe { _mm256_stream_ps(p, v) }
    }
    #[inline(always)]
    fn stream_fence() {
        unsafe { _mm_sfence() }
    }
    #[inline(always)]
    fn splat(x: f32) -> __m256 {
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    fn add(a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn max(a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    fn min(a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_min_ps(a, b) }
    }
    #[inline(always)]
    fn round(a: __m256) -> __m256 {
        unsafe { _mm256_round_ps::<ROUND_NEAREST>(a) }
    }
    #[inline(always)]
    fn ldexp(p: __m256, n: __m256) -> __m256 {
        unsafe {
            // Clamp keeps NaN (second operand); a NaN n only meets a NaN p in our kernels.
            let n = _mm256_min_ps(
                _mm256_set1_ps(254.0),
                _mm256_max_ps(_mm256_set1_ps(-252.0), n),
            );
            let n1 = _mm256_round_ps::<ROUND_FLOOR>(_mm256_mul_ps(n, _mm256_set1_ps(0.5)));
            let n2 = _mm256_sub_ps(n, n1);
            _mm256_mul_ps(_mm256_mul_ps(p, pow2_ps(n1)), pow2_ps(n2))
        }
    }
    #[inline(always)]
    fn ldexp_ftz(p: __m256, d: __m256) -> __m256 {
        unsafe {
            // d = -127 yields the bit pattern of +0.0.
            let d = _mm256_max_ps(_mm256_set1_ps(-127.0), d);
            _mm256_mul_ps(p, pow2_ps(d))
        }
    }
    #[inline(always)]
    fn reduce_add(v: __m256) -> f32 {
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_add_ss(s, _mm_movehdup_ps(s));
            _mm_cvtss_f32(s)
        }
    }
    #[inline(always)]
    fn reduce_max(v: __m256) -> f32 {
        unsafe {
            let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
            let s = _mm_max_ss(s, _mm_movehdup_ps(s));
            _mm_cvtss_f32(s)
        }
    }
    #[inline(always)]
    fn eq_mask(a: __m256, b: __m256) -> u64 {
        unsafe { _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(a, b)) as u32 as u64 }
    }
    #[inline(always)]
    fn select_ge(a: __m256, b: __m256, x: __m256, y: __m256) -> __m256 {
        unsafe { _mm256_blendv_ps(y, x, _mm256_cmp_ps::<_CMP_GE_OQ>(a, b)) }
    }
    #[inline(always)]
    fn div(a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_div_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn load_strided(p: *const f32, stride: usize) -> __m256 {
        let s = stride as i32;
        unsafe {
            let idx = _mm256_mullo_epi32(
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                _mm256_set1_epi32(s),
            );
            _mm256_i32gather_ps::<4>(p, idx)
        }
    }
    #[inline(always)]
    fn below_or(a: __m256, t: __m256, fill: __m256) -> __m256 {
        unsafe { _mm256_blendv_ps(fill, a, _mm256_cmp_ps::<_CMP_LT_OQ>(a, t)) }
    }
    #[inline(always)]
    unsafe fn transpose(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
        unsafe { super::transpose::transpose8(src, ss, dst, ds) }
    }
    #[inline(always)]
    fn to_lanes(v: __m256, out: &mut [f32]) {
        assert!(out.len() >= 8);
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) }
    }
}

impl Simd for Avx2F64 {
    type E = f64;
    type V = __m256d;
    const LANES: usize = 4;

    #[inline(always)]
    unsafe fn load(p: *const f64) -> __m256d {
        unsafe { _mm256_loadu_pd(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f64, v: __m256d) {
        unsafe { _mm256_storeu_pd(p, v) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f64, n: usize, fill: f64) -> __m256d {
        let m = lane_mask_64(n);
        unsafe {
            let x = _mm256_maskload_pd(p, m);
            _mm256_blendv_pd(_mm256_set1_pd(fill), x, _mm256_castsi256_pd(m))
        }
    }
    #[inline(always)]
    unsafe fn store_partial(p: *mut f64, n: usize, v: __m256d) {
        unsafe { _mm256_maskstore_pd(p, lane_mask_64(n), v) }
    }
    #[inline(always)]
    unsafe fn stream(p: *mut f64, v: __m256d) {
        unsafe { _mm256_stream_pd(p, v) }
    }
    #[inline(always)]
    fn stream_fence() {
        unsafe { _mm_sfence() }
    }
    #[inline(always)]
    fn splat(x: f64) -> __m256d {
        unsafe { _mm256_set1_pd(x) }
    }
    #[inline(always)]
    fn add(a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_add_pd(a, b) }
    }
    #[inline(always)]
    fn sub(a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_sub_pd(a, b) }
    }
    #[inline(always)]
    fn mul(a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_mul_pd(a, b) }
    }
    #[inline(always)]
    fn fma(a: __m256d, b: __m256d, c: __m256d) -> __m256d {
        unsafe { _mm256_fmadd_pd(a, b, c) }
    }
    #[inline(always)]
    fn max(a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_max_pd(a, b) }
    }
    #[inline(always)]
    fn min(a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_min_pd(a, b) }
    }
    #[inline(always)]
    fn round(a: __m256d) -> __m256d {
        unsafe { _mm256_round_pd::<ROUND_NEAREST>(a) }
    }
    #[inline(always)]
    fn ldexp(p: __m256d, n: __m256d) -> __m256d {
        unsafe {
            let n = _mm256_min_pd(
                _mm256_set1_pd(2044.0),
                _mm256_max_pd(_mm256_set1_pd(-2044.0), n),
            );
            let n1 = _mm256_round_pd::<ROUND_FLOOR>(_mm256_mul_pd(n, _mm256_set1_pd(0.5)));
            let n2 = _mm256_sub_pd(n, n1);
            _mm256_mul_pd(_mm256_mul_pd(p, pow2_pd(n1)), pow2_pd(n2))
        }
    }
    #[inline(always)]
    fn ldexp_ftz(p: __m256d, d: __m256d) -> __m256d {
        unsafe {
            let d = _mm256_max_pd(_mm256_set1_pd(-1023.0), d);
            _mm256_mul_pd(p, pow2_pd(d))
        }
    }
    #[inline(always)]
    fn reduce_add(v: __m256d) -> f64 {
        unsafe {
            let s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
            _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
        }
    }
    #[inline(always)]
    fn reduce_max(v: __m256d) -> f64 {
        unsafe {
            let s = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
            _mm_cvtsd_f64(_mm_max_sd(s, _mm_unpackhi_pd(s, s)))
        }
    }
    #[inline(always)]
    fn eq_mask(a: __m256d, b: __m256d) -> u64 {
        unsafe { _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_EQ_OQ>(a, b)) as u32 as u64 }
    }
    #[inline(always)]
    fn select_ge(a: __m256d, b: __m256d, x: __m256d, y: __m256d) -> __m256d {
        unsafe { _mm256_blendv_pd(y, x, _mm256_cmp_pd::<_CMP_GE_OQ>(a, b)) }
    }
    #[inline(always)]
    fn div(a: __m256d, b: __m256d) -> __m256d {
        unsafe { _mm256_div_pd(a, b) }
    }
    #[inline(always)]
    unsafe fn load_strided(p: *const f64, stride: usize) -> __m256d {
        let s = stride as i32;
        unsafe {
            let idx = _mm_mullo_epi32(_mm_setr_epi32(0, 1, 2, 3), _mm_set1_epi32(s));
            _mm256_i32gather_pd::<8>(p, idx)
        }
    }
    #[inline(always)]
    fn below_or(a: __m256d, t: __m256d, fill: __m256d) -> __m256d {
        unsafe { _mm256_blendv_pd(fill, a, _mm256_cmp_pd::<_CMP_LT_OQ>(a, t)) }
    }
    #[inline(always)]
    fn to_lanes(v: __m256d, out: &mut [f64]) {
        assert!(out.len() >= 4);
        unsafe { _mm256_storeu_pd(out.as_mut_ptr(), v) }
    }
}
