//! The max-subtraction passes: the three-pass baselines of the Two-Pass Softmax paper (§3:
//! "reload" stores e^{x - max} and rescales it, "recompute" evaluates the exponential twice),
//! the online normaliser (Milakov & Gimelshein, 2018) and the exact fallback of the two-pass
//! algorithm. Special values follow from IEEE arithmetic: a row with NaN or +inf sums to NaN,
//! an all -inf row has x - max = NaN.

use super::vmap::{map, needs_shift, ExtScaleRow, ExtShift, LogMax, SubExp, VFn};
use crate::simd::exp::{exp_poly_on, ExpPoly};
use crate::simd::{Elem, Simd};

/// max over x (-inf for an empty slice). NaN need not propagate: the sum that follows does.
#[inline(always)]
pub fn max_pass<S: Simd>(x: &[S::E]) -> S::E {
    let w = S::LANES;
    let len = x.len();
    let p = x.as_ptr();
    let ninf = S::splat(S::E::NEG_INFINITY);
    let (mut a, mut b, mut c, mut d) = (ninf, ninf, ninf, ninf);
    let mut i = 0;
    // SAFETY: loads stay within x.
    unsafe {
        while i + 4 * w <= len {
            a = S::max(a, S::load(p.add(i)));
            b = S::max(b, S::load(p.add(i + w)));
            c = S::max(c, S::load(p.add(i + 2 * w)));
            d = S::max(d, S::load(p.add(i + 3 * w)));
            i += 4 * w;
        }
        while i + w <= len {
            a = S::max(a, S::load(p.add(i)));
            i += w;
        }
        if i < len {
            b = S::max(b, S::load_partial(p.add(i), len - i, S::E::NEG_INFINITY));
        }
    }
    S::reduce_max(S::max(S::max(a, b), S::max(c, d)))
}

/// sum of c e^{x - mx} for a row constant c > 0 of this function's choosing, returned with c;
/// with `y`, also stores each term c e^{x - mx} (the "reload" variant: scaling the stored terms
/// by 1 / sum gives softmax whatever c is, and leaving c in saves a multiply per element).
#[inline(always)]
pub fn exp_sum<S: Simd>(x: &[S::E], y: Option<&mut [S::E]>, mx: S::E) -> (S::E, S::E) {
    let len = x.len();
    if let Some(y) = y.as_deref() {
        assert_eq!(y.len(), len);
    }
    let q = y.map(|y| y.as_mut_ptr());
    // See `needs_shift`: e^{x - mx} without rounding x - mx where that rounding would show.
    if needs_shift(mx) {
        let f = ExtShift::<S>::new(mx);
        (exp_sum_map_on::<S, _>(x, q, f), f.c())
    } else {
        (
            exp_sum_map_on::<S, _>(x, q, SubExp::new(mx, S::E::ONE)),
            S::E::ONE,
        )
    }
}

#[inline(always)]
fn exp_sum_map_on<S: Simd, F: VFn<S>>(x: &[S::E], q: Option<*mut S::E>, f: F) -> S::E {
    let w = S::LANES;
    let len = x.len();
    let p = x.as_ptr();
    let zero = S::splat(S::E::ZERO);
    // Whole vectors after the last block, and the tail.
    let (mut a, mut b) = (zero, zero);
    // Blocked summation: the four chains restart every BLOCK steps and their block sums add
    // into `total`, so no chain is longer than BLOCK + len / (BLOCK 4 w) additions. With one
    // lane (the scalar path) a plain chain of len / 4 additions broke issue 15's 2e-6 bound on
    // f32 rows of 65536 (benches/README.md).
    const BLOCK: usize = 64;
    let mut total = zero;
    let mut i = 0;
    // SAFETY: loads stay within x; q, when given, points to a slice of the same length.
    unsafe {
        while i + 4 * w <= len {
            let end = len.min(i + BLOCK * 4 * w);
            let (mut a, mut b, mut c, mut d) = (zero, zero, zero, zero);
            while i + 4 * w <= end {
                a = S::add(a, term::<S, F>(p, q, i, f));
                b = S::add(b, term::<S, F>(p, q, i + w, f));
                c = S::add(c, term::<S, F>(p, q, i + 2 * w, f));
                d = S::add(d, term::<S, F>(p, q, i + 3 * w, f));
                i += 4 * w;
            }
            total = S::add(total, S::add(S::add(a, b), S::add(c, d)));
        }
        while i + w <= len {
            a = S::add(a, term::<S, F>(p, q, i, f));
            i += w;
        }
        if i < len {
            let v = S::load_partial(p.add(i), len - i, S::E::NEG_INFINITY);
            let t = f.call(0, v);
            if let Some(q) = q {
                S::store_partial(q.add(i), len - i, t);
            }
            // A -inf pad gives e^{-inf - mx} = 0 for finite mx; otherwise the row is NaN anyway.
            b = S::add(b, t);
        }
    }
    S::reduce_add(S::add(total, S::add(a, b)))
}

/// f(x[i]), also stored to q[i] when q is given.
///
/// # Safety
/// p[i..i+LANES] readable, q[i..i+LANES] writable.
#[inline(always)]
unsafe fn term<S: Simd, F: VFn<S>>(p: *const S::E, q: Option<*mut S::E>, i: usize, f: F) -> S::V {
    // SAFETY: forwarded from the caller.
    unsafe {
        let t = f.call(0, S::load(p.add(i)));
        if let Some(q) = q {
            S::store(q.add(i), t);
        }
        t
    }
}

/// y *= s in place.
#[inline(always)]
pub fn scale_in_place<S: Simd>(y: &mut [S::E], s: S::E) {
    let sv = S::splat(s);
    let w = S::LANES;
    let len = y.len();
    let q = y.as_mut_ptr();
    let mut i = 0;
    // SAFETY: loads and stores stay within y.
    unsafe {
        while i + 2 * w <= len {
            let a = S::mul(S::load(q.add(i)), sv);
            let b = S::mul(S::load(q.add(i + w)), sv);
            S::store(q.add(i), a);
            S::store(q.add(i + w), b);
            i += 2 * w;
        }
        while i + w <= len {
            S::store(q.add(i), S::mul(S::load(q.add(i)), sv));
            i += w;
        }
        if i < len {
            let v = S::mul(S::load_partial(q.add(i), len - i, S::E::ZERO), sv);
            S::store_partial(q.add(i), len - i, v);
        }
    }
}

/// y = e^{x - mx} * s.
#[inline(always)]
pub fn exp_scale_write<S: Simd>(x: &[S::E], y: &mut [S::E], mx: S::E, s: S::E) {
    if mx.is_nan() || mx == S::E::INFINITY || s.is_nan() {
        // A NaN or +inf entry (inf - inf): the whole row is NaN. Said here, not left to the
        // exponential: a NaN argument meeting a NaN-dropping clamp came out as inf on AVX-512.
        y.fill(S::E::NAN);
        return;
    }
    if needs_shift(mx) {
        map::<S, _>(x, y, ExtScaleRow::shifted(mx, s));
    } else {
        map::<S, _>(x, y, SubExp::new(mx, s));
    }
}

/// y = (x - mx) - ln_s.
#[inline(always)]
pub fn log_write_max<S: Simd>(x: &[S::E], y: &mut [S::E], mx: S::E, ln_s: S::E) {
    map::<S, _>(
        x,
        y,
        LogMax::<S> {
            m: S::splat(mx),
            l: S::splat(ln_s),
        },
    );
}

/// The lower clamp of the online rescale arguments: factors below the smallest normal are 0 to
/// the sum's precision, and clamping their arguments keeps the exponential off subnormal
/// results (a microcode assist per instruction on x86), which chains that start at the lowest
/// value hit on every row.
#[inline(always)]
pub(super) fn rescale_arg_min<S: Simd>() -> S::V {
    S::splat(S::E::from_f64(if std::mem::size_of::<S::E>() == 4 {
        -87.0
    } else {
        -708.0
    }))
}

/// One vector into a running (max, sum, compensation): the sum is rescaled to the new max and
/// the new term added with Kahan's compensation (uncompensated, the error of each lane's chain
/// of additions broke issue 15's 2e-6 bound on f32 rows of 65536; benches/README.md). `lo` is
/// `rescale_arg_min`.
#[inline(always)]
pub(super) fn online_step<S: Simd>(
    acc: &mut (S::V, S::V, S::V),
    v: S::V,
    poly: &ExpPoly<S>,
    lo: S::V,
) {
    let (m, s, c) = *acc;
    let mn = S::max(m, v);
    let f = exp_poly_on::<S>(S::max(S::sub(m, mn), lo), poly);
    let e = exp_poly_on::<S>(S::sub(v, mn), poly);
    let (s, c) = (S::mul(s, f), S::mul(c, f));
    let y = S::sub(e, c);
    let t = S::add(s, y);
    *acc = (mn, t, S::sub(S::sub(t, s), y));
}

/// Online normaliser: per-lane running max and rescaled sum in one pass, lanes merged at the end.
/// Returns (max, sum of e^{x - max}). Starting from the lowest finite value (not -inf) keeps
/// e^{m - m_new} free of -inf - -inf.
#[inline(always)]
pub fn online_pass<S: Simd>(x: &[S::E]) -> (S::E, S::E) {
    let w = S::LANES;
    let len = x.len();
    let p = x.as_ptr();
    let lo = S::splat(S::E::LOWEST);
    let zero = S::splat(S::E::ZERO);
    // Four independent (max, sum, compensation) chains: the compensated update is a longer
    // dependent chain than the plain FMA it replaces.
    let mut acc = [(lo, zero, zero); 4];
    let arg_lo = rescale_arg_min::<S>();
    let poly = ExpPoly::<S>::softmax(S::splat(S::E::ONE));
    let mut i = 0;
    // SAFETY: loads stay within x.
    unsafe {
        while i + 4 * w <= len {
            for (k, a) in acc.iter_mut().enumerate() {
                online_step::<S>(a, S::load(p.add(i + k * w)), &poly, arg_lo);
            }
            i += 4 * w;
        }
        // At most three whole vectors are left; constant indices keep the chains in registers.
        for a in &mut acc[..3] {
            if i + w <= len {
                online_step::<S>(a, S::load(p.add(i)), &poly, arg_lo);
                i += w;
            }
        }
        if i < len {
            let v = S::load_partial(p.add(i), len - i, S::E::NEG_INFINITY);
            online_step::<S>(&mut acc[3], v, &poly, arg_lo);
        }
    }
    // The four chains merge lane-wise, then the lanes, with the vector exp (one code path per
    // ISA, no scalar exp per lane).
    let m = acc.iter().fold(lo, |m, a| S::max(m, a.0));
    let mut sv = zero;
    for a in &acc {
        let part = S::sub(a.1, a.2);
        sv = S::fma(
            part,
            exp_poly_on::<S>(S::max(S::sub(a.0, m), arg_lo), &poly),
            sv,
        );
    }
    let mx = S::reduce_max(m);
    let lane_f = exp_poly_on::<S>(S::max(S::sub(m, S::splat(mx)), arg_lo), &poly);
    let scaled = S::mul(sv, lane_f);
    (mx, S::reduce_add(scaled))
}
