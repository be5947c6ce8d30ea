//! The small middle of a SOFT head: W = pinv(K(L, L)) C with C = K(L, q) v, or with SOFT's
//! symmetric normalisation W = D^-1/2 pinv(K(L, L)) D^-1/2 C, D = diag(K(L, L) 1). Both factors
//! are l x l and l x dv (l ~ 49), so this runs in double precision and W is rounded to E once:
//! pinv(K(L, L)) has entries of the order of cond(K(L, L)) (~1e4 for segment-mean landmarks)
//! with alternating signs, and a product formed in f32 would lose that many units of the last
//! place.

use super::soft_blocks::CV;
use super::soft_project::round_up;
use super::SoftOptions;
use crate::error::{Error, Result};
use crate::linalg::{matmul, pinv, spd_pinv_f64, GemmElem};
use crate::simd::Lanes;
use ndarray::Array2;

/// W for the expansion kernel: rows of `ldw` elements (whole column blocks of the widest ISA),
/// zero past dv.
pub(super) struct Weights<E> {
    pub(super) wp: Vec<E>,
    pub(super) ldw: usize,
}

/// W from the symmetric K(L, L) and C (l rows of stride `ldc`, dv columns).
pub(super) fn weights<E: GemmElem + Lanes>(
    kll: &Array2<E>,
    c: &[E],
    ldc: usize,
    dv: usize,
    opts: &SoftOptions,
) -> Result<Weights<E>> {
    let l = kll.nrows();
    // pinv(K(L, L)): directly in f64 when that is as accurate as iterating can be (the usual
    // case: K(L, L) is SPD), else by Newton–Schulz in E (fixed step counts, singular K(L, L)).
    let p: Array2<f64> = match spd_pinv_f64(kll.view(), &opts.pinv)? {
        Some(inv) => Array2::from_shape_vec((l, l), inv.to_dense())
            .map_err(|e| Error::Invalid(e.to_string()))?,
        None => pinv(kll.view(), &opts.pinv)?.0.mapv(|x| x.to_f64()),
    };
    let scale: Vec<f64> = if opts.normalize {
        kll.rows()
            .into_iter()
            .map(|r| 1.0 / r.iter().map(|x| x.to_f64()).sum::<f64>().sqrt())
            .collect()
    } else {
        vec![1.0; l]
    };
    let c64 = Array2::from_shape_fn((l, dv), |(j, k)| c[j * ldc + k].to_f64() * scale[j]);
    let w64 = matmul(p.view(), c64.view())?;
    let ldw = round_up(dv, CV * 16);
    let mut wp = vec![E::ZERO; l * ldw];
    for (j, row) in wp.chunks_exact_mut(ldw).enumerate() {
        for (k, x) in row[..dv].iter_mut().enumerate() {
            *x = E::from_f64(w64[[j, k]] * scale[j]);
        }
    }
    Ok(Weights { wp, ldw })
}
