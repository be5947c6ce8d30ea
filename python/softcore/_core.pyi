"""Type stubs and documentation for the compiled extension ``softcore._core``."""

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__version__: str
__all__ = [
    "__version__",
    "get_num_threads",
    "isa",
    "log_softmax",
    "logsumexp",
    "set_num_threads",
    "softmax",
    "supported_isas",
]

_Algorithm = Literal["auto", "two_pass", "online", "three_pass_reload", "three_pass_recompute"]

def isa() -> str:
    """The SIMD path in use: ``"avx512f"``, ``"avx2"`` or ``"scalar"``.

    ``SOFTCORE_ISA=scalar|avx2|avx512f`` (read once, at first use) forces a narrower path; a
    request wider than the CPU supports is ignored.
    """

def supported_isas() -> list[str]:
    """Every SIMD path this CPU supports, narrowest first."""

def set_num_threads(n: int) -> None:
    """Set the number of threads softcore computes with (default: ``SOFTCORE_NUM_THREADS`` or
    the number of CPUs). Results are bitwise identical for any thread count.

    Raises:
        ValueError: ``n`` is not in 1..=4096.
    """

def get_num_threads() -> int:
    """The number of threads softcore computes with."""

def softmax(
    x: ArrayLike,
    axis: int = -1,
    *,
    algorithm: _Algorithm = "auto",
    where: ArrayLike | None = None,
    out: NDArray[np.floating] | None = None,
) -> NDArray[np.floating]:
    """Softmax along ``axis``: ``exp(x - max) / sum(exp(x - max))``.

    Args:
        x: float16, float32 or float64 array of any shape and strides. float16 is computed in
            float32 and returned as float16.
        axis: the axis to normalise over (negative counts from the end).
        algorithm: ``"two_pass"`` is Dukhan & Ablavatski's extended-exponent algorithm (no max
            pass); ``"online"`` the running-max normaliser; ``"three_pass_reload"`` and
            ``"three_pass_recompute"`` the classic baselines; ``"auto"`` picks three-pass-reload
            for rows that stay in L2 (up to 1 MiB) and two-pass for longer rows and for
            arrays larger than the L3 cache (rows of 1024+ elements, output over 16 MiB, written
            with non-temporal stores). All agree to rounding.
        where: bool mask broadcastable to ``x``; masked-out entries give 0 and a row with
            nothing kept gives 0s.
        out: C-contiguous writeable array of ``x``'s shape and dtype, not overlapping the
            inputs; the result is written there and returned.

    Returns:
        A new C-contiguous array (or ``out``). A -inf entry gives exactly 0 when its row has a
        finite entry; a row of only -inf, or holding +inf or NaN, gives NaN.

    Raises:
        TypeError: ``x`` is not a float16/32/64 array, or ``where`` is not bool.
        ValueError: bad ``axis``, ``algorithm``, ``where`` shape or ``out``.

    Example:
        >>> import numpy as np, softcore
        >>> softcore.softmax(np.array([0.0, np.log(3.0)]))
        array([0.25, 0.75])
    """

def log_softmax(
    x: ArrayLike,
    axis: int = -1,
    *,
    where: ArrayLike | None = None,
    out: NDArray[np.floating] | None = None,
) -> NDArray[np.floating]:
    """Log-softmax along ``axis``: ``x - logsumexp(x)``, computed in two passes with no max pass.

    Args:
        x: float16, float32 or float64 array of any shape and strides.
        axis: the axis to normalise over.
        where: bool mask broadcastable to ``x``; masked-out entries (and rows with nothing kept)
            give -inf, the log of their softmax value 0.
        out: as for :func:`softmax`.

    Returns:
        A new C-contiguous array (or ``out``); rows with +inf, NaN or only -inf give NaN.

    Raises:
        TypeError: unsupported dtype. ValueError: bad ``axis``, ``where`` or ``out``.

    Example:
        >>> softcore.log_softmax(np.array([0.0, 0.0]))
        array([-0.69314718, -0.69314718])
    """

def logsumexp(
    x: ArrayLike,
    axis: int = -1,
    *,
    where: ArrayLike | None = None,
) -> NDArray[np.floating]:
    """``log(sum(exp(x)))`` along ``axis``, which is removed from the result's shape.

    Args:
        x: float16, float32 or float64 array of any shape and strides.
        axis: the axis to reduce.
        where: bool mask broadcastable to ``x``; masked entries are left out.

    Returns:
        An array of ``x``'s dtype (0-d for 1-d input): +inf for a row holding +inf (and no NaN),
        NaN with a NaN, -inf for an empty or all -inf row (or one with nothing kept).

    Raises:
        TypeError: unsupported dtype. ValueError: bad ``axis`` or ``where``.

    Example:
        >>> float(softcore.logsumexp(np.array([0.0, 0.0])))
        0.6931471805599453
    """
