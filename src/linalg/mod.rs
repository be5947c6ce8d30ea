//! Dense linear algebra: the one GEMM entry point, the Newton–Schulz pseudo-inverse and the
//! small SPD solve SOFT uses when it is as accurate.

mod batch;
pub mod blocks;
mod cholesky;
mod gemm;
pub mod newton_schulz;
mod spd_inverse;

pub use batch::{pinv_backward_batch, pinv_batch};
pub use blocks::{small_gemm, small_gemm_with, SmallGemm};
pub use cholesky::CholeskyF64;
pub use gemm::{gemm, gemm_rows, matmul, GemmElem};
pub(crate) use newton_schulz::spd_solver_symmetric_f64;
pub use newton_schulz::{
    default_tol, pinv, pinv_backward, spd_solver_f64, PinvInfo, PinvOptions, MAX_ITERS,
};
pub(crate) use spd_inverse::padded;
