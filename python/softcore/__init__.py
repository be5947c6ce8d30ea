"""softcore: fast, correct CPU kernels for the softmax family, efficient attention and MoE gating.

Every function takes NumPy arrays (or anything ``np.asarray`` accepts) and returns new NumPy
arrays. See ``softcore.reference`` for the float64 definition of each function.
"""

from softcore._core import (
    PinvInfo,
    __version__,
    get_num_threads,
    isa,
    load_balancing_loss,
    log_softmax,
    logsumexp,
    moe_combine,
    moe_dispatch,
    moe_gather,
    noisy_logits,
    pinv,
    pinv_backward,
    power_softmax,
    router_z_loss,
    set_num_threads,
    soft_attention,
    softmax,
    softmax_regression,
    supported_isas,
    top_k_gating,
)

__all__ = [
    "PinvInfo",
    "__version__",
    "get_num_threads",
    "isa",
    "load_balancing_loss",
    "log_softmax",
    "logsumexp",
    "moe_combine",
    "moe_dispatch",
    "moe_gather",
    "noisy_logits",
    "pinv",
    "pinv_backward",
    "power_softmax",
    "router_z_loss",
    "set_num_threads",
    "soft_attention",
    "softmax",
    "softmax_regression",
    "supported_isas",
    "top_k_gating",
]
