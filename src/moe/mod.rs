//! Mixture-of-experts routing: top-k gating (Shazeer et al. 2017; Switch, Fedus et al. 2021;
//! Mixtral; DeepSeek-V2/V3; dense-to-sparse gating, Nie et al. 2021), token dispatch to
//! capacity-limited experts, gather/combine, and the router losses.

mod dispatch;
mod gating;
mod losses;
mod options;
mod topk;
mod vertical;

pub use dispatch::{moe_combine, moe_dispatch, moe_gather};
pub use losses::{load_balancing_loss, noisy_logits, router_z_loss, LoadBalance};
pub use options::{Activation, GateOptions, GroupScore, Order, Score};

use crate::error::{Error, Result};
use crate::simd::Lanes;
use ndarray::{Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;

/// Rows per parallel task: fixed, so the split never depends on the thread count (each row is
/// independent anyway, so results are identical for any split).
const ROWS_PER_TASK: usize = 512;

/// Top-k gating of logits (T, E): (weights (T, k), expert ids (T, k)), each row ordered by
/// weight descending, ties to the lower expert id. `bias` (E,) changes selection only.
pub fn top_k_gating<E: Lanes>(
    logits: ArrayView2<'_, E>,
    bias: Option<ArrayView1<'_, E>>,
    opts: &GateOptions,
) -> Result<(Array2<E>, Array2<i64>)> {
    let (t, e) = logits.dim();
    opts.validate(e)?;
    let (tau, inv) = (
        E::from_f64(opts.temperature),
        E::from_f64(1.0 / opts.temperature),
    );
    if tau == E::ZERO || !tau.is_finite() || !inv.is_finite() {
        return Err(Error::Invalid(format!(
            "top_k_gating: temperature {} and its reciprocal must be finite and non-zero in the input's precision",
            opts.temperature
        )));
    }
    let bias = match bias {
        Some(b) => {
            if b.len() != e {
                return Err(Error::Shape {
                    what: "bias",
                    expected: vec![e],
                    got: b.shape().to_vec(),
                });
            }
            if b.iter().any(|v| !v.is_finite()) {
                return Err(Error::Invalid(
                    "top_k_gating: bias contains NaN or infinity".into(),
                ));
            }
            Some(b.to_vec())
        }
        None => None,
    };
    let k = opts.k;
    let x = logits.as_standard_layout();
    let xs = x
        .as_slice()
        .ok_or_else(|| Error::Invalid("internal: logits layout".into()))?;
    let mut w = vec![E::ZERO; t * k];
    let mut ids = vec![0i64; t * k];
    let tasks: Vec<Result<()>> = crate::threads::install(|| {
        w.par_chunks_mut(ROWS_PER_TASK * k)
            .zip(ids.par_chunks_mut(ROWS_PER_TASK * k))
            .enumerate()
            .map(|(c, (wc, ic))| {
                let rows = gating::GateRows {
                    xs,
                    experts: e,
                    bias: bias.as_deref(),
                    opts,
                    w: wc,
                    ids: ic,
                    first: c * ROWS_PER_TASK,
                };
                crate::simd::dispatch(crate::simd::active(), rows)
            })
            .collect()
    });
    tasks.into_iter().collect::<Result<()>>()?;
    let shape_err = |e: ndarray::ShapeError| Error::Invalid(e.to_string());
    Ok((
        Array2::from_shape_vec((t, k), w).map_err(shape_err)?,
        Array2::from_shape_vec((t, k), ids).map_err(shape_err)?,
    ))
}
