//! The options of `top_k_gating` and their validation.

use crate::error::{Error, Result};

/// Where the softmax goes relative to the selection (score `Softmax` only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Softmax over all experts, keep the top k (Mixtral in HF transformers, DeepSeek-V2).
    SoftmaxTopk,
    /// Top k of the logits, softmax over those k (the Mixtral reference code).
    TopkSoftmax,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Score {
    Softmax,
    /// Independent sigmoid per expert (DeepSeek-V3).
    Sigmoid,
}

/// Applied to the logits before the temperature (activation dense-to-sparse gate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Sigmoid,
    Tanh,
}

/// How a group of experts is scored for group-limited routing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupScore {
    /// The best expert of the group (DeepSeek-V2 "group-limited greedy").
    Max,
    /// The sum of the two best (DeepSeek-V3).
    SumTop2,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GateOptions {
    pub k: usize,
    pub order: Order,
    /// Divide the k weights by their sum (softmax_topk and sigmoid; topk_softmax already sums to 1).
    pub renormalize: bool,
    /// tau > 0: scores of logits / tau.
    pub temperature: f64,
    pub score: Score,
    pub activation: Option<Activation>,
    /// Experts split into this many consecutive groups; only `topk_group` groups are routed to.
    pub n_group: usize,
    pub topk_group: usize,
    pub group_score: GroupScore,
}

impl GateOptions {
    /// Mixtral-style defaults for k experts.
    pub fn new(k: usize) -> Self {
        GateOptions {
            k,
            order: Order::SoftmaxTopk,
            renormalize: true,
            temperature: 1.0,
            score: Score::Softmax,
            activation: None,
            n_group: 1,
            topk_group: 1,
            group_score: GroupScore::Max,
        }
    }

    /// Checks the options against the number of experts.
    pub fn validate(&self, experts: usize) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(format!("top_k_gating: {m}")));
        if experts == 0 {
            return bad("logits must have at least one expert (last axis is empty)".into());
        }
        if self.k < 1 || self.k > experts {
            return bad(format!("k must be in 1..={experts}, got {}", self.k));
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return bad(format!(
                "temperature must be finite and > 0, got {}",
                self.temperature
            ));
        }
        if self.score == Score::Sigmoid && self.order == Order::TopkSoftmax {
            return bad("order=\"topk_softmax\" needs score=\"softmax\"".into());
        }
        let g = self.n_group;
        if g == 0 || !experts.is_multiple_of(g) {
            return bad(format!(
                "n_group must divide the number of experts {experts}, got {g}"
            ));
        }
        if self.topk_group < 1 || self.topk_group > g {
            return bad(format!(
                "topk_group must be in 1..={g}, got {}",
                self.topk_group
            ));
        }
        let size = experts / g;
        if g > 1 && self.k > self.topk_group * size {
            return bad(format!(
                "k = {} exceeds the {} experts in topk_group = {} groups of {size}",
                self.k,
                self.topk_group * size,
                self.topk_group
            ));
        }
        if g > 1 && self.group_score == GroupScore::SumTop2 && size < 2 {
            return bad(format!(
                "group_score=\"sum_top2\" needs groups of at least 2 experts, got {size}"
            ));
        }
        Ok(())
    }
}
