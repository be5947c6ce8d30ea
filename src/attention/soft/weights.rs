//! The small middle of a SOFT head: W = pinv(K(L, L)) C with C = K(L, q) v, or with SOFT's
//! symmetric normalisation W = D^-1/2 pinv(K(L, L)) D^-1/2 C, D = diag(K(L, L) 1). Both factors
//! are l x l and l x dv (l ~ 49), so this runs in double precision and W is rounded to E once:
//! pinv(K(L, L)) has entries of the order of cond(K(L, L)) (~1e4 for segment-mean landmarks)
//! with alternating signs, and a product formed in f32 would lose that many units of the last
//! place.

use super::blocks::CV;
use super::project::round_up;
use super::SoftOptions;
use crate::error::{Error, Result};
use crate::linalg::{matmul, padded, pinv, spd_solver_symmetric_f64, GemmElem};
use crate::simd::{Isa, Lanes};
use ndarray::{Array2, ArrayView2};

/// W for the expansion kernel: rows of `ldw` elements (whole column blocks of the widest ISA),
/// zero past dv.
pub(super) struct Weights<E> {
    pub(super) wp: Vec<E>,
    pub(super) ldw: usize,
}

/// W from K(L, L) (`kll`: l rows of `linalg::padded(l)` f64, exactly symmetric; consumed) and
/// C (l rows of stride `ldc`, dv columns); `kll_e` forms K(L, L) in E for Newton–Schulz, when
/// the Cholesky solve is declined.
#[allow(clippy::too_many_arguments)]
pub(super) fn weights<E: GemmElem + Lanes>(
    isa: Isa,
    kll: Vec<f64>,
    l: usize,
    kll_e: impl FnOnce() -> Result<Array2<E>>,
    c: &[E],
    ldc: usize,
    dv: usize,
    opts: &SoftOptions,
) -> Result<Weights<E>> {
    let scale: Vec<f64> = if opts.normalize {
        kll.chunks_exact(padded(l))
            .map(|r| 1.0 / r[..l].iter().sum::<f64>().sqrt())
            .collect()
    } else {
        vec![1.0; l]
    };
    // D^-1/2 C in f64, rows padded to whole vectors for the solve.
    let ldb = round_up(dv.max(1), 8);
    let mut b = vec![0.0f64; l * ldb];
    for (j, row) in b.chunks_exact_mut(ldb).enumerate() {
        for (k, x) in row[..dv].iter_mut().enumerate() {
            *x = c[j * ldc + k].to_f64() * scale[j];
        }
    }
    // pinv(K(L, L)) applied directly in f64 when that is as accurate as iterating can be (the
    // usual case: K(L, L) is SPD), else formed by Newton–Schulz in E (fixed step counts,
    // singular K(L, L)).
    match spd_solver_symmetric_f64::<E>(isa, kll, l, &opts.pinv)? {
        Some(f) => f.solve_in_place(&mut b, ldb),
        None => {
            let p = pinv(kll_e()?.view(), &opts.pinv)?.0.mapv(|x| x.to_f64());
            let b64 = ArrayView2::from_shape((l, ldb), &b[..])
                .map_err(|e| Error::Invalid(e.to_string()))?;
            let w64 = matmul(p.view(), b64)?;
            b.copy_from_slice(
                w64.as_slice()
                    .ok_or_else(|| Error::Invalid("internal: W layout".into()))?,
            );
        }
    }
    let ldw = round_up(dv, CV * 16);
    let mut wp = vec![E::ZERO; l * ldw];
    for (j, row) in wp.chunks_exact_mut(ldw).enumerate() {
        for (k, x) in row[..dv].iter_mut().enumerate() {
            *x = E::from_f64(b[j * ldb + k] * scale[j]);
        }
    }
    Ok(Weights { wp, ldw })
}
