//! den_i += x_i . z over rows of x: the normaliser's share of a block (phi(Q) . z, and with
//! z = 1 the row sums of the intra-chunk block). Vectorised over the row, four accumulators,
//! so a row is not one long chain of dependent adds.

use crate::simd::{self, dispatch, Kernel, Lanes, Simd};
use crate::softmax::online_tile::{load_upto, store_upto};
use std::mem::MaybeUninit;

struct RowDots<'a, E> {
    x: &'a [E],
    z: &'a [E],
    den: &'a mut [E],
}

impl<E: Lanes> Kernel<E> for RowDots<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        let (d, w) = (self.z.len(), S::LANES);
        if d == 0 {
            return;
        }
        let zero = S::splat(E::ZERO);
        let pz = self.z.as_ptr();
        for (row, dn) in self.x.chunks_exact(d).zip(self.den.iter_mut()) {
            let px = row.as_ptr();
            let mut acc = [zero; 4];
            let mut j = 0;
            // SAFETY: row and z hold d elements; every access is below d.
            unsafe {
                while j + 4 * w <= d {
                    for (u, a) in acc.iter_mut().enumerate() {
                        let o = j + u * w;
                        *a = S::fma(S::load(px.add(o)), S::load(pz.add(o)), *a);
                    }
                    j += 4 * w;
                }
                while j < d {
                    let k = (d - j).min(w);
                    let xv = load_upto::<S>(px.add(j), k, E::ZERO);
                    acc[0] = S::fma(xv, load_upto::<S>(pz.add(j), k, E::ZERO), acc[0]);
                    j += k;
                }
            }
            let v = S::add(S::add(acc[0], acc[1]), S::add(acc[2], acc[3]));
            *dn = *dn + S::reduce_add(v);
        }
    }
}

/// den_i += x_i . z for the rows of x (z.len() elements each).
pub(super) fn add_dots<E: Lanes>(x: &[E], z: &[E], den: &mut [E]) {
    dispatch(simd::active(), RowDots { x, z, den })
}

/// out_r = f(den_r) o_r for rows of `dv` elements (the output's normalisation, vectorised:
/// the output is written once, here).
struct ScaleRowsInto<'a, E, F> {
    o: &'a [E],
    den: &'a [E],
    f: F,
    dv: usize,
    out: &'a mut [MaybeUninit<E>],
}

impl<E: Lanes, F: Fn(E) -> E> Kernel<E> for ScaleRowsInto<'_, E, F> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        let (dv, w) = (self.dv, S::LANES);
        if dv == 0 {
            return;
        }
        let rows = self.o.chunks_exact(dv).zip(self.den);
        for ((orow, &dn), dst) in rows.zip(self.out.chunks_exact_mut(dv)) {
            let c = S::splat((self.f)(dn));
            let (po, pd) = (orow.as_ptr(), dst.as_mut_ptr().cast::<E>());
            let mut j = 0;
            // SAFETY: orow and dst hold dv elements; every access is below dv; MaybeUninit<E>
            // has E's layout.
            unsafe {
                while j < dv {
                    let k = (dv - j).min(w);
                    let x = S::mul(load_upto::<S>(po.add(j), k, E::ZERO), c);
                    store_upto::<S>(pd.add(j), k, x);
                    j += k;
                }
            }
        }
    }
}

/// out_r = f(den_r) o_r for the rows (dv elements) of o.
pub(super) fn scale_rows_into<E: Lanes>(
    o: &[E],
    den: &[E],
    f: impl Fn(E) -> E,
    dv: usize,
    out: &mut [MaybeUninit<E>],
) {
    dispatch(simd::active(), ScaleRowsInto { o, den, f, dv, out })
}
