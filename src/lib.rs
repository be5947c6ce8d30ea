//! softcore: fast, correct CPU kernels for the softmax family, efficient attention and
//! mixture-of-experts gating. Kernels see `ndarray` views and slices; `py` is the thin PyO3 layer.

pub mod attention;
pub mod cpu_info;
pub mod error;
pub mod linalg;
pub mod memory;
pub mod moe;
pub mod regression;
pub mod simd;
pub mod softmax;
pub mod threads;

#[cfg(test)]
mod drivers_proptest;
#[cfg(test)]
mod test_support;

mod py;

pub use error::{Error, Result};
