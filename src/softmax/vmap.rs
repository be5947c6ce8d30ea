//! Element-wise maps as small functor structs rather than closures: a closure is its own function,
//! compiled without the caller's `#[target_feature]`s, so its intrinsics would become calls.
//! `#[inline(always)]` methods are folded into the ISA entry point instead.

use crate::simd::exp::{exp_parts_with, exp_with, ExpPoly};
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
        let (p, n) = exp_parts_with::<S>(v, &self.poly);
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
        let (p, n) = exp_parts_with::<S>(v, &self.poly);
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
        let (pm, nm) = exp_parts_with::<S>(S::splat(mx), &poly);
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
        let (p, n) = exp_parts_with::<S>(v, &self.poly);
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
        exp_with::<S>(S::sub(v, self.m), &self.poly)
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
    let w = S::LANES;
    let len = x.len();
    let (p, q) = (x.as_ptr(), y.as_mut_ptr());
    let mut i = 0;
    // SAFETY: x and y have len elements; loads and stores stay below len.
    unsafe {
        while i + 2 * w <= len {
            let a = f.call(0, S::load(p.add(i)));
            let b = f.call(0, S::load(p.add(i + w)));
            S::store(q.add(i), a);
            S::store(q.add(i + w), b);
            i += 2 * w;
        }
        while i + w <= len {
            S::store(q.add(i), f.call(0, S::load(p.add(i))));
            i += w;
        }
        if i < len {
            let v = f.call(0, S::load_partial(p.add(i), len - i, S::E::ZERO));
            S::store_partial(q.add(i), len - i, v);
        }
    }
}

/// `map` with non-temporal stores, for outputs far larger than the caches: the output lines are
/// not read first (a copy-like 1 read + 1 write instead of 1 + 2). Stores are aligned by handling
/// a short head with a masked store; the fence makes the data visible in order to other threads.
#[inline(always)]
pub fn map_stream<S: Simd, F: VFn<S>>(x: &[S::E], y: &mut [S::E], f: F) {
    assert_eq!(x.len(), y.len());
    let w = S::LANES;
    let align = w * std::mem::size_of::<S::E>();
    let len = x.len();
    let (p, q) = (x.as_ptr(), y.as_mut_ptr());
    // Elements before the first aligned output vector (y is at least element-aligned).
    let head = (q.align_offset(align)).min(len);
    let mut i = 0;
    // SAFETY: x and y have len elements; every access stays below len, and streamed stores start
    // at q + head, which is `align`-aligned, and advance by whole vectors.
    unsafe {
        if head > 0 && head < w {
            let v = f.call(0, S::load_partial(p, head, S::E::ZERO));
            S::store_partial(q, head, v);
            i = head;
        } else if head >= w {
            // Not even element-aligned for streaming (cannot happen for f32/f64 slices); plain path.
            map::<S, F>(x, y, f);
            return;
        }
        while i + 2 * w <= len {
            let a = f.call(0, S::load(p.add(i)));
            let b = f.call(0, S::load(p.add(i + w)));
            S::stream(q.add(i), a);
            S::stream(q.add(i + w), b);
            i += 2 * w;
        }
        while i + w <= len {
            S::stream(q.add(i), f.call(0, S::load(p.add(i))));
            i += w;
        }
        if i < len {
            let v = f.call(0, S::load_partial(p.add(i), len - i, S::E::ZERO));
            S::store_partial(q.add(i), len - i, v);
        }
    }
    S::stream_fence();
}
