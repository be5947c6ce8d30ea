//! The small middle of a SOFT head: W = pinv(K(L, L)) C with C = K(L, q) v, or with SOFT's
//! symmetric normalisation W = D^-1/2 pinv(K(L, L)) D^-1/2 C, D = diag(K(L, L) 1). Both factors
//! are l x l and l x dv (l ~ 49), so this runs in double precision and W is rounded to E once:
//! pinv(K(L, L)) has entries of the order of cond(K(L, L)) (~1e4 for segment-mean landmarks)
//! with alternating signs, and a product formed in f32 would lose that many units of the last
//! place.

use super::soft_blocks::{load_cols, store_cols, CV};
use super::soft_project::round_up;
use super::SoftOptions;
use crate::error::Result;
use crate::linalg::{pinv, spd_pinv_f64, GemmElem};
use crate::simd::{dispatch, Isa, Kernel, Lanes, Simd};
use ndarray::Array2;

/// W for the expansion kernel: rows of `ldw` elements (whole column blocks of the widest ISA),
/// zero past dv.
pub(super) struct Weights<E> {
    pub(super) wp: Vec<E>,
    pub(super) ldw: usize,
}

/// W from the symmetric K(L, L) and C (l rows of stride `ldc`, dv columns).
pub(super) fn weights<E: GemmElem + Lanes>(
    isa: Isa,
    kll: &Array2<E>,
    c: &[E],
    ldc: usize,
    dv: usize,
    opts: &SoftOptions,
) -> Result<Weights<E>> {
    let l = kll.nrows();
    // pinv(K(L, L)): directly in f64 when that is as accurate as iterating can be (the usual
    // case: K(L, L) is SPD), else by Newton–Schulz in E (fixed step counts, singular K(L, L)).
    let p: Vec<f64> = match spd_pinv_f64(kll.view(), &opts.pinv)? {
        Some(inv) => inv.to_dense(),
        None => pinv(kll.view(), &opts.pinv)?
            .0
            .iter()
            .map(|x| x.to_f64())
            .collect(),
    };
    let scale: Vec<f64> = if opts.normalize {
        kll.rows()
            .into_iter()
            .map(|r| 1.0 / r.iter().map(|x| x.to_f64()).sum::<f64>().sqrt())
            .collect()
    } else {
        vec![1.0; l]
    };
    let ld = round_up(dv, 8);
    let mut c64 = vec![0.0f64; l * ld];
    for (j, row) in c64.chunks_exact_mut(ld).enumerate() {
        for (k, x) in row[..dv].iter_mut().enumerate() {
            *x = c[j * ldc + k].to_f64() * scale[j];
        }
    }
    let mut w64 = vec![0.0f64; l * ld];
    dispatch(
        isa,
        Product {
            p: &p,
            b: &c64,
            ld,
            cols: dv,
            out: &mut w64,
        },
    );
    let ldw = round_up(dv, CV * 16);
    let mut wp = vec![E::ZERO; l * ldw];
    for (j, row) in wp.chunks_exact_mut(ldw).enumerate() {
        for (k, x) in row[..dv].iter_mut().enumerate() {
            *x = E::from_f64(w64[j * ld + k] * scale[j]);
        }
    }
    Ok(Weights { wp, ldw })
}

/// out (l x cols, stride ld) = p (l x l, dense) b (l x cols, stride ld).
struct Product<'a> {
    p: &'a [f64],
    b: &'a [f64],
    ld: usize,
    cols: usize,
    out: &'a mut [f64],
}

impl Kernel<f64> for Product<'_> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = f64>>(self) {
        let l = self.b.len() / self.ld.max(1);
        let i4 = l / 4 * 4;
        for i0 in (0..i4).step_by(4) {
            rows::<S, 4>(self.p, self.b, self.ld, self.cols, i0, self.out);
        }
        for i0 in i4..l {
            rows::<S, 1>(self.p, self.b, self.ld, self.cols, i0, self.out);
        }
    }
}

/// Rows i0 .. i0 + IB of the product, two column vectors at a time (2 IB independent sums).
#[inline(always)]
fn rows<S: Simd<E = f64>, const IB: usize>(
    p: &[f64],
    b: &[f64],
    ld: usize,
    cols: usize,
    i0: usize,
    out: &mut [f64],
) {
    let (w, l) = (S::LANES, b.len() / ld);
    let zero = S::splat(0.0);
    for c0 in (0..cols).step_by(2 * w) {
        let n = (2 * w).min(cols - c0);
        let mut acc = [[zero; 2]; IB];
        for j in 0..l {
            // SAFETY: row j of b has ld >= c0 + n elements.
            let x = unsafe {
                let r = b.as_ptr().add(j * ld + c0);
                [load_cols::<S>(r, 0, n), load_cols::<S>(r, 1, n)]
            };
            for (t, a) in acc.iter_mut().enumerate() {
                let y = S::splat(p[(i0 + t) * l + j]);
                a[0] = S::fma(y, x[0], a[0]);
                a[1] = S::fma(y, x[1], a[1]);
            }
        }
        for (t, a) in acc.iter().enumerate() {
            let row = &mut out[(i0 + t) * ld + c0..];
            assert!(row.len() >= n);
            // SAFETY: the row has n elements past c0 (checked).
            unsafe {
                store_cols::<S>(row.as_mut_ptr(), 0, n, a[0]);
                store_cols::<S>(row.as_mut_ptr(), 1, n, a[1]);
            }
        }
    }
}
