//! Batched drivers for `pinv` and `pinv_backward`: (..., m, n) stacks, one matrix per task,
//! in parallel over the batch (each matrix's result does not depend on the thread count).

use super::gemm::GemmElem;
use super::newton_schulz::{pinv, pinv_backward, PinvInfo, PinvOptions};
use crate::error::{Error, Result};
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewD, IxDyn};
use rayon::prelude::*;

/// (..., r, c) -> (..., c, r).
fn transposed_shape(shape: &[usize]) -> Vec<usize> {
    let mut t = shape.to_vec();
    let k = t.len();
    t.swap(k - 2, k - 1);
    t
}

/// Splits (..., r, c) into the batch size and (r, c).
fn batch_dims(shape: &[usize], what: &str) -> Result<(usize, usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::Invalid(format!(
            "{what} must have at least 2 dimensions (..., m, n), got shape {shape:?}"
        )));
    }
    let (r, c) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    Ok((shape[..shape.len() - 2].iter().product(), r, c))
}

/// `pinv` over a batch (..., m, n) -> (..., n, m), each matrix scaled and stopped on its own,
/// in parallel over the batch (results do not depend on the thread count).
pub fn pinv_batch<E: GemmElem>(
    a: ArrayViewD<'_, E>,
    opts: &PinvOptions,
) -> Result<(ArrayD<E>, Vec<PinvInfo>)> {
    let (b, m, n) = batch_dims(a.shape(), "pinv input")?;
    let a = a.as_standard_layout();
    let flat = a
        .as_slice()
        .ok_or_else(|| Error::Invalid("internal: layout".into()))?;
    let per = m * n;
    let results: Vec<Result<(Array2<E>, PinvInfo)>> = crate::threads::install(|| {
        (0..b)
            .into_par_iter()
            .map(|i| {
                let ai = ArrayView2::from_shape((m, n), &flat[i * per..(i + 1) * per])
                    .map_err(|e| Error::Invalid(format!("internal: {e}")))?;
                pinv(ai, opts)
            })
            .collect()
    });
    let mut out = Vec::with_capacity(b * per);
    let mut infos = Vec::with_capacity(b);
    for r in results {
        let (v, info) = r?;
        out.extend(v.iter().copied());
        infos.push(info);
    }
    let out = ArrayD::from_shape_vec(IxDyn(&transposed_shape(a.shape())), out)
        .map_err(|e| Error::Invalid(format!("internal: {e}")))?;
    Ok((out, infos))
}

/// `pinv_backward` over a batch: a (..., m, n), a_pinv and grad (..., n, m).
pub fn pinv_backward_batch<E: GemmElem>(
    a: ArrayViewD<'_, E>,
    p: ArrayViewD<'_, E>,
    g: ArrayViewD<'_, E>,
) -> Result<ArrayD<E>> {
    let (b, m, n) = batch_dims(a.shape(), "a")?;
    let want = transposed_shape(a.shape());
    for (what, x) in [("a_pinv", &p), ("grad", &g)] {
        if x.shape() != want.as_slice() {
            return Err(Error::Shape {
                what,
                expected: want.clone(),
                got: x.shape().to_vec(),
            });
        }
    }
    let (a, p, g) = (
        a.as_standard_layout(),
        p.as_standard_layout(),
        g.as_standard_layout(),
    );
    let (fa, fp, fg) = match (a.as_slice(), p.as_slice(), g.as_slice()) {
        (Some(x), Some(y), Some(z)) => (x, y, z),
        _ => return Err(Error::Invalid("internal: layout".into())),
    };
    let per = m * n;
    let results: Vec<Result<Array2<E>>> = crate::threads::install(|| {
        (0..b)
            .into_par_iter()
            .map(|i| {
                let r = i * per..(i + 1) * per;
                pinv_backward(
                    mat(&fa[r.clone()], m, n)?,
                    mat(&fp[r.clone()], n, m)?,
                    mat(&fg[r], n, m)?,
                )
            })
            .collect()
    });
    let mut out = Vec::with_capacity(b * per);
    for r in results {
        out.extend(r?.iter().copied());
    }
    ArrayD::from_shape_vec(IxDyn(a.shape()), out)
        .map_err(|e| Error::Invalid(format!("internal: {e}")))
}

fn mat<E>(f: &[E], r: usize, c: usize) -> Result<ArrayView2<'_, E>> {
    ArrayView2::from_shape((r, c), f).map_err(|e| Error::Invalid(format!("internal: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn batch_is_per_matrix_and_thread_independent() {
        // Two matrices of very different scale: per-matrix V0 keeps both exact.
        let mut a = Array3::<f64>::zeros((2, 3, 3));
        for i in 0..3 {
            a[[0, i, i]] = 1e-3 * (i + 1) as f64;
            a[[1, i, i]] = 1e3 * (i + 1) as f64;
        }
        a[[1, 0, 2]] = 5.0;
        let opts = PinvOptions::default();
        crate::threads::set_num_threads(1).expect("threads");
        let (p1, info) = pinv_batch(a.view().into_dyn(), &opts).expect("pinv");
        crate::threads::set_num_threads(2).expect("threads");
        let (p2, _) = pinv_batch(a.view().into_dyn(), &opts).expect("pinv");
        assert_eq!(p1, p2);
        assert!(info.iter().all(|i| i.converged));
        for i in 0..3 {
            assert!((p1[[0, i, i]] - 1e3 / (i + 1) as f64).abs() < 1e-9 * 1e3);
        }
        let eye: f64 = (0..3)
            .map(|i| (0..3).map(|k| a[[1, i, k]] * p1[[1, k, i]]).sum::<f64>())
            .sum();
        assert!((eye - 3.0).abs() < 1e-12);
    }

    #[test]
    fn fewer_than_two_dims_is_an_error() {
        let a = ndarray::Array1::<f32>::zeros(3);
        assert!(pinv_batch(a.view().into_dyn(), &PinvOptions::default()).is_err());
    }
}
