//! Attention kernels. So far: SOFT (softmax-free Gaussian-kernel attention through Nyström
//! landmarks and a Newton–Schulz pseudo-inverse).

pub mod soft;

pub use soft::{soft_attention, SoftOptions};
