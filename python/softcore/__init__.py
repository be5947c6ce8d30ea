"""softcore: fast, correct CPU kernels for the softmax family, efficient attention and MoE gating.

Every function takes NumPy arrays (or anything ``np.asarray`` accepts) and returns new NumPy
arrays. See ``softcore.reference`` for the float64 definition of each function.
"""

from softcore._core import (
    PinvInfo,
    __version__,
    get_num_threads,
    isa,
    log_softmax,
    logsumexp,
    pinv,
    pinv_backward,
    set_num_threads,
    soft_attention,
    softmax,
    supported_isas,
)

__all__ = [
    "PinvInfo",
    "__version__",
    "get_num_threads",
    "isa",
    "log_softmax",
    "logsumexp",
    "pinv",
    "pinv_backward",
    "set_num_threads",
    "soft_attention",
    "softmax",
    "supported_isas",
]
