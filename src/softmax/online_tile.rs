//! The crate-internal row API of tiled attention: the online-softmax update (Milakov &
//! Gimelshein, 2018; FlashAttention-2's form) of a tile of scores. Each row keeps a running max
//! m and a rescaled sum l; a new tile of scores s turns into p = e^(s - m') in place, with
//! m' = max(m, max s), l' = l e^(m - m') + sum p, and the factor e^(m - m') the caller applies
//! to its output accumulator. A row whose scores so far are all -inf (nothing visible) keeps
//! m = -inf, l = 0 and gets p = 0, so masked rows never produce NaN.

use crate::simd::exp::{exp_poly_on, ExpPoly};
use crate::simd::{dispatch, Elem, Isa, Kernel, Lanes, Simd};

/// One tile: `rows` rows of `cols` scores at stride `ld` in `s`; `m`, `l`, `alpha` per row.
pub(crate) struct OnlineTile<'a, E> {
    pub s: &'a mut [E],
    pub ld: usize,
    pub cols: usize,
    pub m: &'a mut [E],
    pub l: &'a mut [E],
    pub alpha: &'a mut [E],
}

impl<E: Lanes> Kernel<E> for OnlineTile<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        let (cols, ld) = (self.cols, self.ld);
        if cols == 0 {
            self.alpha.fill(E::ONE);
            return;
        }
        let poly = ExpPoly::<S>::softmax(S::splat(E::ONE));
        let rows = self.m.len();
        for r in 0..rows {
            let row = &mut self.s[r * ld..r * ld + cols];
            let mt = row_max::<S>(row);
            let m_old = self.m[r];
            let m_new = if mt > m_old { mt } else { m_old };
            if m_new == E::NEG_INFINITY {
                // Nothing visible yet in this row.
                row.fill(E::ZERO);
                self.alpha[r] = E::ONE;
                continue;
            }
            let a = if m_old == m_new {
                E::ONE
            } else {
                E::from_f64((m_old.to_f64() - m_new.to_f64()).exp())
            };
            let sum = exp_sub_sum::<S>(row, m_new, &poly);
            self.alpha[r] = a;
            self.l[r] = self.l[r] * a + sum;
            self.m[r] = m_new;
        }
    }
}

/// x <- e^(x - m') with m' = max(m, max x), returning (m', sum of the new x in f64): one block
/// of an online softmax whose whole block shares one running max (RALA's softmax over keys,
/// tensor attention's over key pairs). Nothing finite yet (m' = -inf) gives 0s.
struct OnlineWeights<'a, E> {
    x: &'a mut [E],
    m: f64,
}

impl<E: Lanes> Kernel<E> for OnlineWeights<'_, E> {
    type Output = (f64, f64);
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) -> (f64, f64) {
        let m = self.m.max(row_max::<S>(self.x).to_f64());
        if m == f64::NEG_INFINITY {
            self.x.fill(E::ZERO);
            return (m, 0.0);
        }
        let poly = ExpPoly::<S>::softmax(S::splat(E::ONE));
        let sum = exp_sub_sum::<S>(self.x, E::from_f64(m), &poly);
        (m, sum.to_f64())
    }
}

/// `OnlineWeights` on `isa`.
pub(crate) fn online_weights_with<E: Lanes>(isa: Isa, x: &mut [E], m: f64) -> (f64, f64) {
    dispatch(isa, OnlineWeights { x, m })
}

/// The online update of one tile on `isa`.
pub(crate) fn online_tile_with<E: Lanes>(isa: Isa, tile: OnlineTile<'_, E>) {
    dispatch(isa, tile)
}

/// max of a row (-inf when empty), four vector accumulators.
#[inline(always)]
pub(crate) fn row_max<S: Simd>(x: &[S::E]) -> S::E {
    let (w, n, p) = (S::LANES, x.len(), x.as_ptr());
    let ninf = S::splat(S::E::NEG_INFINITY);
    let mut acc = [ninf; 4];
    let mut j = 0;
    // SAFETY: every access is below n = x.len().
    unsafe {
        while j + 4 * w <= n {
            for (u, a) in acc.iter_mut().enumerate() {
                *a = S::max(*a, S::load(p.add(j + u * w)));
            }
            j += 4 * w;
        }
        while j + w <= n {
            acc[0] = S::max(acc[0], S::load(p.add(j)));
            j += w;
        }
        if j < n {
            acc[1] = S::max(acc[1], S::load_partial(p.add(j), n - j, S::E::NEG_INFINITY));
        }
    }
    let v = S::max(S::max(acc[0], acc[1]), S::max(acc[2], acc[3]));
    S::reduce_max(v)
}

/// x <- e^(x - m) in place, returning the sum (two vector accumulators).
#[inline(always)]
pub(crate) fn exp_sub_sum<S: Simd>(x: &mut [S::E], m: S::E, poly: &ExpPoly<S>) -> S::E {
    let (w, n, p) = (S::LANES, x.len(), x.as_mut_ptr());
    let mv = S::splat(m);
    let zero = S::splat(S::E::ZERO);
    let (mut s0, mut s1) = (zero, zero);
    let mut j = 0;
    // SAFETY: every access is below n = x.len().
    unsafe {
        while j + 2 * w <= n {
            let e0 = exp_poly_on::<S>(S::sub(S::load(p.add(j)), mv), poly);
            let e1 = exp_poly_on::<S>(S::sub(S::load(p.add(j + w)), mv), poly);
            S::store(p.add(j), e0);
            S::store(p.add(j + w), e1);
            s0 = S::add(s0, e0);
            s1 = S::add(s1, e1);
            j += 2 * w;
        }
        while j < n {
            let k = (n - j).min(w);
            let t = S::sub(load_upto::<S>(p.add(j), k, S::E::NEG_INFINITY), mv);
            let e = exp_poly_on::<S>(t, poly);
            store_upto::<S>(p.add(j), k, e);
            s0 = S::add(s0, e);
            j += k;
        }
    }
    S::reduce_add(S::add(s0, s1))
}

/// Softmax of a row in place: max, e^(x - max) with its sum, then a scale by 1/sum.
#[inline(always)]
pub(crate) fn softmax_in_place_on<S: Simd>(x: &mut [S::E]) {
    if x.is_empty() {
        return;
    }
    let poly = ExpPoly::<S>::softmax(S::splat(S::E::ONE));
    let m = row_max::<S>(x);
    let inv = S::E::ONE / exp_sub_sum::<S>(x, m, &poly);
    for v in x.iter_mut() {
        *v = *v * inv;
    }
}

/// `k <= LANES` elements at p (the fill beyond them): a full load when k = LANES, since
/// `load_partial` takes fewer than LANES.
///
/// # Safety
/// p must hold k readable elements.
#[inline(always)]
pub(crate) unsafe fn load_upto<S: Simd>(p: *const S::E, k: usize, fill: S::E) -> S::V {
    // SAFETY: as the caller's.
    unsafe {
        if k == S::LANES {
            S::load(p)
        } else {
            S::load_partial(p, k, fill)
        }
    }
}

/// Stores the first `k <= LANES` lanes of v at p.
///
/// # Safety
/// p must hold k writable elements.
#[inline(always)]
pub(crate) unsafe fn store_upto<S: Simd>(p: *mut S::E, k: usize, v: S::V) {
    // SAFETY: as the caller's.
    unsafe {
        if k == S::LANES {
            S::store(p, v)
        } else {
            S::store_partial(p, k, v)
        }
    }
}
