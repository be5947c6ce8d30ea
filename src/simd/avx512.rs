//! AVX-512F vectors (16 x f32, 8 x f64). Masked loads and stores handle tails without reading or
//! writing past the end; `vscalefps` gives an exact p * 2^n with gradual underflow.
//!
//! Every method is `#[inline(always)]` and only ever runs inside a function compiled with
//! `#[target_feature(enable = "avx512f")]`, reached after `detect_hardware()` saw the feature.

use super::vector::Simd;
use std::arch::x86_64::*;

#[derive(Clone, Copy, Debug, Default)]
pub struct Avx512F32;
#[derive(Clone, Copy, Debug, Default)]
pub struct Avx512F64;

const ROUND_NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

// SAFETY (whole impl): the intrinsics need AVX-512F, which the dispatcher checked before entering
// the `#[target_feature]` function these are inlined into; pointer arguments follow the trait's
// documented contracts.
impl Simd for Avx512F32 {
    type E = f32;
    type V = __m512;
    const LANES: usize = 16;

    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m512) {
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize, fill: f32) -> __m512 {
        let m: __mmask16 = ((1u32 << n) - 1) as __mmask16;
        unsafe { _mm512_mask_loadu_ps(_mm512_set1_ps(fill), m, p) }
    }
    #[inline(always)]
    unsafe fn store_partial(p: *mut f32, n: usize, v: __m512) {
        let m: __mmask16 = ((1u32 << n) - 1) as __mmask16;
        unsafe { _mm512_mask_storeu_ps(p, m, v) }
    }
    #[inline(always)]
    unsafe fn stream(p: *mut f32, v: __m512) {
        unsafe { _mm512_stream_ps(p, v) }
    }
    #[inline(always)]
    fn stream_fence() {
        unsafe { _mm_sfence() }
    }
    #[inline(always)]
    fn splat(x: f32) -> __m512 {
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    fn add(a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn max(a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    fn min(a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_min_ps(a, b) }
    }
    #[inline(always)]
    fn round(a: __m512) -> __m512 {
        unsafe { _mm512_roundscale_ps::<ROUND_NEAREST>(a) }
    }
    #[inline(always)]
    fn ldexp(p: __m512, n: __m512) -> __m512 {
        unsafe { _mm512_scalef_ps(p, n) }
    }
    #[inline(always)]
    fn ldexp_ftz(p: __m512, d: __m512) -> __m512 {
        unsafe { _mm512_scalef_ps(p, d) }
    }
    #[inline(always)]
    fn reduce_add(v: __m512) -> f32 {
        unsafe { _mm512_reduce_add_ps(v) }
    }
    #[inline(always)]
    fn reduce_max(v: __m512) -> f32 {
        unsafe { _mm512_reduce_max_ps(v) }
    }
    #[inline(always)]
    fn eq_mask(a: __m512, b: __m512) -> u64 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b) as u64 }
    }
    #[inline(always)]
    fn select_ge(a: __m512, b: __m512, x: __m512, y: __m512) -> __m512 {
        unsafe { _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_GE_OQ>(a, b), y, x) }
    }
    #[inline(always)]
    fn div(a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_div_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn load_strided(p: *const f32, stride: usize) -> __m512 {
        let s = stride as i32;
        unsafe {
            let idx = _mm512_mullo_epi32(
                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                _mm512_set1_epi32(s),
            );
            _mm512_i32gather_ps::<4>(idx, p)
        }
    }
    #[inline(always)]
    fn below_or(a: __m512, t: __m512, fill: __m512) -> __m512 {
        unsafe { _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, t), fill, a) }
    }
    #[inline(always)]
    unsafe fn transpose(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
        unsafe { super::transpose::transpose16(src, ss, dst, ds) }
    }
    #[inline(always)]
    fn to_lanes(v: __m512, out: &mut [f32]) {
        assert!(out.len() >= 16);
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), v) }
    }
}

impl Simd for Avx512F64 {
    type E = f64;
    type V = __m512d;
    const LANES: usize = 8;

    #[inline(always)]
    unsafe fn load(p: *const f64) -> __m512d {
        unsafe { _mm512_loadu_pd(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f64, v: __m512d) {
        unsafe { _mm512_storeu_pd(p, v) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f64, n: usize, fill: f64) -> __m512d {
        let m: __mmask8 = ((1u32 << n) - 1) as __mmask8;
        unsafe { _mm512_mask_loadu_pd(_mm512_set1_pd(fill), m, p) }
    }
    #[inline(always)]
    unsafe fn store_partial(p: *mut f64, n: usize, v: __m512d) {
        let m: __mmask8 = ((1u32 << n) - 1) as __mmask8;
        unsafe { _mm512_mask_storeu_pd(p, m, v) }
    }
    #[inline(always)]
    unsafe fn stream(p: *mut f64, v: __m512d) {
        unsafe { _mm512_stream_pd(p, v) }
    }
    #[inline(always)]
    fn stream_fence() {
        unsafe { _mm_sfence() }
    }
    #[inline(always)]
    fn splat(x: f64) -> __m512d {
        unsafe { _mm512_set1_pd(x) }
    }
    #[inline(always)]
    fn add(a: __m512d, b: __m512d) -> __m512d {
        unsafe { _mm512_add_pd(a, b) }
    }
    #[inline(always)]
    fn sub(a: __m512d, b: __m512d) -> __m512d {
        unsafe { _mm512_sub_pd(a, b) }
    }
    #[inline(always)]
    fn mul(a: __m512d, b: __m512d) -> __m512d {
        unsafe { _mm512_mul_pd(a, b) }
    }
    #[inline(always)]
    fn fma(a: __m512d, b: __m512d, c: __m512d) -> __m512d {
        unsafe { _mm512_fmadd_pd(a, b, c) }
    }
    #[inline(always)]
    fn max(a: __m512d, b: __m512d) -> __m512d {
        unsafe { _mm512_max_pd(a, b) }
    }
    #[inline(always)]
    fn min(a: __m512d, b: __m512d) -> __m512d {
        unsafe { _mm512_min_pd(a, b) }
    }
    #[inline(always)]
    fn round(a: __m512d) -> __m512d {
        unsafe { _mm512_roundscale_pd::<ROUND_NEAREST>(a) }
    }
    #[inline(always)]
    fn ldexp(p: __m512d, n: __m512d) -> __m512d {
        unsafe { _mm512_scalef_pd(p, n) }
    }
    #[inline(always)]
    fn ldexp_ftz(p: __m512d, d: __m512d) -> __m512d {
        unsafe { _mm512_scalef_pd(p, d) }
    }
    #[inline(always)]
    fn reduce_add(v: __m512d) -> f64 {
        unsafe { _mm512_reduce_add_pd(v) }
    }
    #[inline(always)]
    fn reduce_max(v: __m512d) -> f64 {
        unsafe { _mm512_reduce_max_pd(v) }
    }
    #[inline(always)]
    fn eq_mask(a: __m512d, b: __m512d) -> u64 {
        unsafe { _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(a, b) as u64 }
    }
    #[inline(always)]
    fn select_ge(a: __m512d, b: __m512d, x: __m512d, y: __m512d) -> __m512d {
        unsafe { _mm512_mask_blend_pd(_mm512_cmp_pd_mask::<_CMP_GE_OQ>(a, b), y, x) }
    }
    #[inline(always)]
    fn div(a: __m512d, b: __m512d) -> __m512d {
        unsafe { _mm512_div_pd(a, b) }
    }
    #[inline(always)]
    unsafe fn load_strided(p: *const f64, stride: usize) -> __m512d {
        let s = stride as i32;
        unsafe {
            let idx = _mm256_mullo_epi32(
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                _mm256_set1_epi32(s),
            );
            _mm512_i32gather_pd::<8>(idx, p)
        }
    }
    #[inline(always)]
    fn below_or(a: __m512d, t: __m512d, fill: __m512d) -> __m512d {
        unsafe { _mm512_mask_blend_pd(_mm512_cmp_pd_mask::<_CMP_LT_OQ>(a, t), fill, a) }
    }
    #[inline(always)]
    fn to_lanes(v: __m512d, out: &mut [f64]) {
        assert!(out.len() >= 8);
        unsafe { _mm512_storeu_pd(out.as_mut_ptr(), v) }
    }
}
