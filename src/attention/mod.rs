//! Attention kernels. So far: SOFT (softmax-free Gaussian-kernel attention through Nyström
//! landmarks and a Newton–Schulz pseudo-inverse).

pub mod soft;
mod soft_blocks;
#[cfg(test)]
mod soft_formula_tests;
mod soft_head;
mod soft_project;
#[cfg(test)]
mod soft_tests;
mod soft_weights;

pub use soft::{soft_attention, SoftOptions};
pub use soft_head::{soft_head, HeadScratch};
