//! Attention kernels: SOFT (softmax-free Gaussian-kernel attention through Nyström landmarks),
//! exact tiled softmax attention, and linear attention (non-causal, chunked causal, decayed,
//! streaming) with its feature maps. `heads` holds the plumbing every function shares.

pub mod agent;
pub mod decode;
pub mod exact;
pub mod feature;
pub(crate) mod heads;
#[cfg(test)]
mod isa_tests;
pub mod linear;
pub(crate) mod overflow;
pub mod soft;
pub mod tensor;

pub use agent::{agent_attention, agent_pool, AgentOptions};
pub use decode::{decode_attention, DecodeInfo, DecodeOptions};
pub use exact::{softmax_attention, ExactOptions};
pub use feature::{hedgehog_feature_map, FeatureMap};
pub use linear::{
    causal_dot_product, inline_attention, linear_attention, rala_attention, Decay, LinearOptions,
    LinearState,
};
pub use soft::{soft_attention, soft_head, HeadScratch, SoftOptions};
pub use tensor::{tensor_attention, TensorInputs, TensorOptions};
