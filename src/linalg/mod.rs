//! Dense linear algebra: the one GEMM entry point and the Newton–Schulz pseudo-inverse.

mod batch;
mod gemm;
pub mod newton_schulz;
mod spd_inverse;

pub use batch::{pinv_backward_batch, pinv_batch};
pub use gemm::{gemm, matmul, GemmElem};
pub use newton_schulz::{
    default_tol, pinv, pinv_backward, spd_pinv_f64, PinvInfo, PinvOptions, MAX_ITERS,
};
pub use spd_inverse::InverseF64;
