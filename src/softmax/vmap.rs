//! Element-wise maps as small functor structs rather than closures: a closure is its own function,
//! compiled without the caller's `#[target_feature]`s, so its intrinsics would become calls.
//! `#[inline(always)]` methods are folded into the ISA entry point instead.

use crate::simd::exp::{exp_parts_on, exp_poly_on, ExpPoly};
use crate::simd::{Elem, Simd};

/// v -> f(v), with an index for per-vector parameters (strip kernels), ignored by most maps.
pub trait VFn<S: Simd>: Copy {
    fn call(&self, k: usize, v: S::V) -> S::V;
}

/// Pass 2 of the two-pass algorithm down column strips: p 2^{n - e} / m per vector of lanes,
/// with `inv_m` = 1/m. Also e^{x - mx} * scale without rounding x - mx, with e = n_m and
/// inv_m = scale / p_m.
#[derive(Clone, Copy)]
pub struct ExtScale<S: Simd, const V: usize> {
    pub poly: ExpPoly<S>,
    pub inv_m: [S::V; V],
    pub e: [S::V; V],
}

impl<S: Simd, const V: usize> VFn<S> for ExtScale<S, V> {
    #[inline(always)]
    fn call(&self, k: usize, v: S::V) -> S::V {
        let (p, n) = exp_parts_on::<S>(v, &self.poly);
        S::ldexp(S::mul(p, self.inv_m[k]), S::sub(n, self.e[k]))
    }
}

/// The same for one row, with the scale folded into the polynomial: no multiply per element.
#[derive(Clone, Copy)]
pub struct ExtScaleRow<S: Simd> {
    poly: ExpPoly<S>,
    e: S::V,
}

impl<S: Simd> ExtScaleRow<S> {
    /// p 2^{n - e} * scale.
    #[inline(always)]
    pub fn new(e: S::E, scale: S::E) -> Self {
        ExtScaleRow {
            poly: ExpPoly::softmax(S::splat(scale)),
            e: S::splat(e),
        }
    }

    /// e^{x - mx} * scale as p_x (scale / p_m) 2^{n_x - n_m}.
    #[inline(always)]
    pub fn shifted(mx: S::E, scale: S::E) -> Self {
        let shift = ExtShift::<S>::new(mx);
        ExtScaleRow {
            poly: ExpPoly::softmax(S::splat(scale / shift.pm)),
            e: shift.nm,
        }
    }
}

impl<S: Simd> VFn<S> for ExtScaleRow<S> {
    #[inline(always)]
    fn call(&self, _: usize, v: S::V) -> S::V {
        let (p, n) = exp_parts_on::<S>(v, &self.poly);
        S::ldexp(p, S::sub(n, self.e))
    }
}

/// p_x 2^{n_x - n_m} = p_m e^{x - mx}: e^{x - mx} up to the row constant p_m, with no rounded
/// subtraction and no multiply.
#[derive(Clone, Copy)]
pub struct ExtShift<S: Simd> {
    poly: ExpPoly<S>,
    nm: S::V,
    pm: S::E,
}

impl<S: Simd> ExtShift<S> {
    #[inline(always)]
    pub fn new(mx: S::E) -> Self {
        let poly = ExpPoly::softmax(S::splat(S::E::ONE));
        let (pm, nm) = exp_parts_on::<S>(S::splat(mx), &poly);
        let mut l = [S::E::ZERO; 16];
        S::to_lanes(pm, &mut l);
        ExtShift { poly, nm, pm: l[0] }
    }

    /// The row constant c = p_m: each value is c e^{x - mx}.
    #[inline(always)]
    pub fn c(&self) -> S::E {
        self.pm
    }
}

impl<S: Simd> VFn<S> for ExtShift<S> {
    #[inline(always)]
    fn call(&self, _: usize, v: S::V) -> S::V {
        let (p, n) = exp_parts_on::<S>(v, &self.poly);
        S::ldexp(p, S::sub(n, self.nm))
    }
}

/// Log-softmax pass 2: (x - e ln2) - ln m.
#[derive(Clone, Copy)]
pub struct ExtLog<S: Simd, const V: usize> {
    pub e: [S::V; V],
    pub ln_m: [S::V; V],
}

impl<S: Simd, const V: usize> VFn<S> for ExtLog<S, V> {
    #[inline(always)]
    fn call(&self, k: usize, v: S::V) -> S::V {
        S::sub(S::reduce_ln2(v, self.e[k]), self.ln_m[k])
    }
}

/// e^{x - m} * scale with a rounded subtraction (exact when x and m are within a factor 2).
#[derive(Clone, Copy)]
pub struct SubExp<S: Simd> {
    m: S::V,
    poly: ExpPoly<S>,
}

impl<S: Simd> VFn<S> for SubExp<S> {
    #[inline(always)]
    fn call(&self, _: usize, v: S::V) -> S::V {
        exp_poly_on::<S>(S::sub(v, self.m), &self.poly)
    }
}

impl<S: Simd> SubExp<S> {
    #[inline(always)]
    pub fn new(m: S::E, scale: S::E) -> Self {
        SubExp {
            m: S::splat(m),
            poly: ExpPoly::softmax(S::splat(scale)),
        }
    }
}

/// (x - m) - l.
#[derive(Clone, Copy)]
pub struct LogMax<S: Simd> {
    pub m: S::V,
    pub l: S::V,
}

impl<S: Simd> VFn<S> for LogMax<S> {
    #[inline(always)]
    fn call(&self, _: usize, v: S::V) -> S::V {
        S::sub(S::sub(v, self.m), self.l)
    }
}

/// Whether e^{x - mx} must avoid the subtraction x - mx (see `maxsub`): by Sterbenz's lemma it
/// is exact for every x with a representable result unless mx is in (EXP_UNDERFLOW,
/// -2 EXP_UNDERFLOW).
#[inline(always)]
pub fn needs_shift<E: Elem>(mx: E) -> bool {
    let u = E::EXP_UNDERFLOW;
    mx > u && mx < -(u + u)
}

/// y[i] = f(x[i]) vector by vector, two at a time, tail masked.
#[inline(always)]
pub fn map<S: Simd, F: VFn<S>>(x: &[S::E], y: &mut [S::E], f: F) {
    assert_eq!(x.len(), y.len());
    // SAFETY: x and y both have x.len() elements.
    unsafe { map_raw::<S, F, false>(x.as_ptr(), y.as_mut_ptr(), x.len(), f) };
}

/// `map` with non-temporal stores, for outputs far larger than the caches: the output lines are
/// not read first (a copy-like 1 read + 1 write instead of 1 + 2). A short head goes through a
/// masked store so the streamed stores are aligned; the fence orders them before anything the
/// caller does next (e.g. handing the data to another thread).
#[inline(always)]
pub fn map_stream<S: Simd, F: VFn<S>>(x: &[S::E], y: &mut [S::E], f: F) {
    assert_eq!(x.len(), y.len());
    let len = x.len();
    let (p, q) = (x.as_ptr(), y.as_mut_ptr());
    // Elements before the first output vector aligned to its size (usize::MAX if impossible).
    let head = q.align_offset(S::LANES * std::mem::size_of::<S::E>());
    if head >= S::LANES {
        map::<S, F>(x, y, f);
        return;
    }
    let head = head.min(len);
    // SAFETY: the head covers p[..head] < len with masked access; the rest starts at the aligned
    // q + head and covers the remaining len - head elements.
    unsafe {
        if head > 0 {
            let v = f.call(0, S::load_partial(p, head, S::E::ZERO));
            S::store_partial(q, head, v);
        }
        map_raw::<S, F, true>(p.add(head), q.add(head), len - head, f);
    }
    S::stream_fence();
}

/// The loop of `map`/`map_stream`; `NT` selects non-temporal stores for full vectors.
///
/// # Safety
/// p[..len] readable, q[..len] writable; with NT, q aligned to LANES * size_of::<E>() bytes.
#[inline(always)]
unsafe fn map_raw<S: Simd, F: VFn<S>, const NT: bool>(
    p: *const S::E,
    q: *mut S::E,
    len: usize,
    f: F,
) {
    let w = S::LANES;
    let mut i = 0;
    // SAFETY: loads and stores stay below len.
    unsafe {
        while i + 2 * w <= len {
            let a = f.call(0, S::load(p.add(i)));
            let b = f.call(0, S::load(p.add(i + w)));
            put::<S, NT>(q.add(i), a);
            put::<S, NT>(q.add(i + w), b);
            i += 2 * w;
        }
        while i + w <= len {
            put::<S, NT>(q.add(i), f.call(0, S::load(p.add(i))));
            i += w;
        }
        if i < len {
            let v = f.call(0, S::load_partial(p.add(i), len - i, S::E::ZERO));
            S::store_partial(q.add(i), len - i, v);
        }
    }
}

/// A full-vector store, non-temporal with NT. A function, not a closure: closures are compiled
/// without the caller's target features.
///
/// # Safety
/// As for `map_raw`.
#[inline(always)]
unsafe fn put<S: Simd, const NT: bool>(q: *mut S::E, v: S::V) {
    unsafe {
        if NT {
            S::stream(q, v)
        } else {
            S::store(q, v)
        }
    }
}
