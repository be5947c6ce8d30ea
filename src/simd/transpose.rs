//! In-register transposes of one LANES x LANES block of f32 (the packing step of kernels that
//! put tokens in lanes). The network is the usual three stages: interleave pairs of rows
//! (unpack ps), pairs of pairs (unpack pd), then move 128-bit lanes (shuffle f32x4 on AVX-512,
//! permute2f128 on AVX2): 4 x 16 shuffles for 16 x 16, where a gather per column costs far more.

use std::arch::x86_64::*;

/// dst[c * ds + r] = src[r * ss + c] for r, c < 16.
///
/// # Safety
/// AVX-512F must be enabled in the caller; rows r < 16 of 16 elements at `src + r ss` must be
/// readable and at `dst + c ds` writable.
#[inline(always)]
pub(super) unsafe fn transpose16(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
    // SAFETY: forwarded from the caller.
    unsafe {
        let r: [__m512; 16] = std::array::from_fn(|i| _mm512_loadu_ps(src.add(i * ss)));
        // t[2p], t[2p + 1]: rows 2p and 2p + 1 interleaved (low and high pairs of each lane).
        let mut t = [_mm512_setzero_ps(); 16];
        for p in 0..8 {
            t[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
            t[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
        }
        // u[4g + m]: column m (+ 4, 8, 12 in the other 128-bit lanes) of rows 4g .. 4g + 3.
        let mut u = [_mm512_setzero_ps(); 16];
        for g in 0..4 {
            let pd = |x: __m512| _mm512_castps_pd(x);
            let (a, b, c, d) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
            u[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(a), pd(c)));
            u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(a), pd(c)));
            u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(b), pd(d)));
            u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(b), pd(d)));
        }
        for m in 0..4 {
            let a = _mm512_shuffle_f32x4::<0x88>(u[m], u[4 + m]);
            let b = _mm512_shuffle_f32x4::<0x88>(u[8 + m], u[12 + m]);
            let c = _mm512_shuffle_f32x4::<0xDD>(u[m], u[4 + m]);
            let d = _mm512_shuffle_f32x4::<0xDD>(u[8 + m], u[12 + m]);
            _mm512_storeu_ps(dst.add(m * ds), _mm512_shuffle_f32x4::<0x88>(a, b));
            _mm512_storeu_ps(dst.add((m + 8) * ds), _mm512_shuffle_f32x4::<0xDD>(a, b));
            _mm512_storeu_ps(dst.add((m + 4) * ds), _mm512_shuffle_f32x4::<0x88>(c, d));
            _mm512_storeu_ps(dst.add((m + 12) * ds), _mm512_shuffle_f32x4::<0xDD>(c, d));
        }
    }
}

/// dst[c * ds + r] = src[r * ss + c] for r, c < 8.
///
/// # Safety
/// AVX must be enabled in the caller; rows r < 8 of 8 elements at `src + r ss` must be readable
/// and at `dst + c ds` writable.
#[inline(always)]
pub(super) unsafe fn transpose8(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
    // SAFETY: forwarded from the caller.
    unsafe {
        let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * ss)));
        let mut t = [_mm256_setzero_ps(); 8];
        for p in 0..4 {
            t[2 * p] = _mm256_unpacklo_ps(r[2 * p], r[2 * p + 1]);
            t[2 * p + 1] = _mm256_unpackhi_ps(r[2 * p], r[2 * p + 1]);
        }
        // u[4g + m]: column m (and m + 4 in the high lane) of rows 4g .. 4g + 3.
        let mut u = [_mm256_setzero_ps(); 8];
        for g in 0..2 {
            let pd = |x: __m256| _mm256_castps_pd(x);
            let (a, b, c, d) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
            u[4 * g] = _mm256_castpd_ps(_mm256_unpacklo_pd(pd(a), pd(c)));
            u[4 * g + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(pd(a), pd(c)));
            u[4 * g + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(pd(b), pd(d)));
            u[4 * g + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(pd(b), pd(d)));
        }
        for m in 0..4 {
            _mm256_storeu_ps(
                dst.add(m * ds),
                _mm256_permute2f128_ps::<0x20>(u[m], u[4 + m]),
            );
            _mm256_storeu_ps(
                dst.add((m + 4) * ds),
                _mm256_permute2f128_ps::<0x31>(u[m], u[4 + m]),
            );
        }
    }
}
