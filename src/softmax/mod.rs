//! The softmax family: softmax (five algorithms), log-softmax and logsumexp along any axis, with
//! optional masks. `driver` maps arrays of any layout onto the contiguous-row kernels (`rows`) or
//! the column-strip kernels (`strided`) and splits the work across threads.

mod axes;
mod driver;
mod extexp;
mod maxsub;
pub(crate) mod online_tile;
mod power;
mod rows;
mod strided;
mod vmap;

#[cfg(test)]
mod tests;

pub use axes::{logsumexp_axes_with, softmax_axes_with, Axes};
pub use driver::{log_softmax, logsumexp, logsumexp_with, softmax, softmax_with, Op};
pub use power::power_softmax;

use crate::error::{Error, Result};
use crate::simd::Lanes;

/// logsumexp of a contiguous slice on ISA S, in double precision (-inf when empty or all -inf,
/// +inf with a +inf entry, NaN with a NaN), for callers already inside a dispatched kernel.
#[inline(always)]
pub(crate) fn logsumexp_on<S: crate::simd::Simd>(x: &[S::E]) -> f64
where
    S::E: Lanes,
{
    rows::logsumexp_row::<S>(x)
}

/// How softmax is computed. All give the same result up to rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `ThreePassReload` for rows that stay in cache, `TwoPass` for long rows and for arrays far
    /// beyond the caches (see `driver::resolve_auto`).
    Auto,
    /// Dukhan & Ablavatski's extended-exponent two-pass algorithm: no max pass.
    TwoPass,
    /// Milakov & Gimelshein's running max and rescaled sum, then a write pass.
    Online,
    /// max, then e^{x - max} stored and summed, then a rescaling pass.
    ThreePassReload,
    /// max, then the sum of e^{x - max}, then e^{x - max} recomputed and scaled.
    ThreePassRecompute,
}

impl Algorithm {
    pub const NAMES: [&'static str; 5] = [
        "auto",
        "two_pass",
        "online",
        "three_pass_reload",
        "three_pass_recompute",
    ];

    pub fn from_name(name: &str) -> Result<Algorithm> {
        Ok(match name {
            "auto" => Algorithm::Auto,
            "two_pass" => Algorithm::TwoPass,
            "online" => Algorithm::Online,
            "three_pass_reload" => Algorithm::ThreePassReload,
            "three_pass_recompute" => Algorithm::ThreePassRecompute,
            _ => {
                return Err(Error::Invalid(format!(
                    "unknown softmax algorithm {name:?}; expected one of {:?}",
                    Algorithm::NAMES
                )))
            }
        })
    }
}
