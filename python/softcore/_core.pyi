"""Type stubs and documentation for the compiled extension ``softcore._core``."""

from typing import Literal, final, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

__version__: str
__all__ = [
    "PinvInfo",
    "__version__",
    "agent_attention",
    "agent_pool",
    "causal_dot_product",
    "cpu_info",
    "decode_attention",
    "get_num_threads",
    "hedgehog_feature_map",
    "inline_attention",
    "isa",
    "linear_attention",
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
    "rala_attention",
    "router_z_loss",
    "set_num_threads",
    "soft_attention",
    "softmax",
    "softmax_attention",
    "softmax_regression",
    "supported_isas",
    "tensor_attention",
    "top_k_gating",
]

_Order = Literal["softmax_topk", "topk_softmax"]
_FeatureMap = Literal["elu1", "relu", "identity", "exp"]
_Algorithm = Literal["auto", "two_pass", "online", "three_pass_reload", "three_pass_recompute"]

def isa() -> str:
    """The SIMD path in use: ``"avx512f"``, ``"avx2"`` or ``"scalar"``.

    ``SOFTCORE_ISA=scalar|avx2|avx512f`` (read once, at first use) forces a narrower path; a
    request wider than the CPU supports is ignored.

    Example:
        >>> softcore.isa() in softcore.supported_isas()
        True
    """

def supported_isas() -> list[str]:
    """Every SIMD path this CPU supports, narrowest first.

    Example:
        >>> softcore.supported_isas()[0]
        'scalar'
    """

def set_num_threads(n: int) -> None:
    """Set the number of threads softcore computes with (default: ``SOFTCORE_NUM_THREADS`` or
    the number of CPUs). Results are bitwise identical for any thread count.

    Raises:
        ValueError: ``n`` is not in 1..=4096.

    Example:
        >>> n = softcore.get_num_threads()
        >>> softcore.set_num_threads(1)
        >>> softcore.get_num_threads()
        1
        >>> softcore.set_num_threads(n)
    """

def get_num_threads() -> int:
    """The number of threads softcore computes with.

    Example:
        >>> softcore.get_num_threads() >= 1
        True
    """

def cpu_info() -> dict[str, int | str | list[str]]:
    """What softcore detected on this machine and the thresholds it chose from it.

    Keys: ``isa``, ``supported_isas`` and ``threads`` (as :func:`isa`, :func:`supported_isas`,
    :func:`get_num_threads`); ``l1d_bytes`` and ``l2_bytes`` (per core) and ``l3_bytes`` (as
    reported, shared by the cores), read once from Linux's
    ``/sys/devices/system/cpu/cpu0/cache``, else CPUID (leaf 4, or 0x8000001D on AMD), else
    defaults, as ``cache_source`` (``"sysfs"``, ``"cpuid"`` or ``"default"``) says;
    ``softmax_reload_max_row_bytes``: ``algorithm="auto"`` runs three-pass-reload (one
    exponential per element; its later passes re-read the row from the L2) on rows up to this
    many bytes (the L2) and shorter than 2**18 elements, two-pass beyond;
    ``softmax_stream_min_bytes``: outputs larger than this (half the L3: x and y together leave
    it) are written with non-temporal stores, and ``auto`` takes two-pass there for rows of 1024+
    elements; ``output_pool_max_bytes``: softmax and log_softmax outputs of 1 MiB
    or more live in 2 MiB-aligned buffers that return to a pool of at most this many bytes (and
    six buffers) when NumPy frees the array, so ``y = softcore.softmax(x)`` in a loop reuses
    mapped pages instead of faulting in new ones each call (such arrays have an
    ``OutputBuffer`` as their ``base``). ``python -m softcore info`` prints the same.

    Example:
        >>> info = softcore.cpu_info()
        >>> info["l1d_bytes"] <= info["l2_bytes"] == info["softmax_reload_max_row_bytes"]
        True
        >>> info["isa"] == softcore.isa()
        True
    """

def softmax(
    x: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    *,
    algorithm: _Algorithm = "auto",
    where: ArrayLike | None = None,
    out: NDArray[np.floating] | None = None,
) -> NDArray[np.floating]:
    """Softmax along ``axis``: ``exp(x - max) / sum(exp(x - max))``.

    Args:
        x: float16, float32 or float64 array of any shape and strides. float16 is computed in
            float32 and returned as float16.
        axis: the axis to normalise over (negative counts from the end); a tuple of axes
            normalises over all of them at once, ``None`` over the whole array (SciPy's
            ``scipy.special.softmax`` forms; the reduced axes are merged into one, a view for
            C-ordered input and trailing axes, a copy otherwise).
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
        TypeError: ``x`` is not a float16/32/64 array (big-endian ones are computed on a
            native copy), ``where`` is not bool, or ``axis`` is not an int, tuple or None.
        ValueError: bad ``axis`` (out of bounds, repeated), ``algorithm``, ``where`` shape or
            ``out``.

    Example:
        >>> import numpy as np, softcore
        >>> softcore.softmax(np.array([0.0, np.log(3.0)]))
        array([0.25, 0.75])
        >>> softcore.softmax(np.zeros((2, 2)), axis=None)
        array([[0.25, 0.25],
               [0.25, 0.25]])
    """

def log_softmax(
    x: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    *,
    where: ArrayLike | None = None,
    out: NDArray[np.floating] | None = None,
) -> NDArray[np.floating]:
    """Log-softmax along ``axis``: ``x - logsumexp(x)``, computed in two passes with no max pass.

    Args:
        x: float16, float32 or float64 array of any shape and strides.
        axis: the axis to normalise over; a tuple of axes or ``None`` as for :func:`softmax`.
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

@overload
def logsumexp(
    x: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    *,
    where: ArrayLike | None = None,
    keepdims: bool = False,
    b: ArrayLike | None = None,
    return_sign: Literal[False] = False,
) -> NDArray[np.floating]:
    """``log(sum(exp(x)))`` along ``axis``, which is removed from the result's shape.

    Args:
        x: float16, float32 or float64 array of any shape and strides.
        axis: the axis to reduce; a tuple of axes reduces all of them, ``None`` the whole array
            (``scipy.special.logsumexp``'s forms).
        where: bool mask broadcastable to ``x``; masked entries are left out.
        keepdims: keep the reduced axes as size-1 dimensions (NumPy's and SciPy's meaning).
        b: real weights broadcastable to ``x`` (SciPy's meaning): ``log(|sum(b * exp(x))|)``,
            computed row by row in float64 from the maximum of the entries with ``b != 0``
            (a scalar-rate path; without ``b`` the SIMD kernels run). A negative sum gives NaN
            unless ``return_sign``.
        return_sign: also return the sign of the sum: 1, -1, 0 for an empty sum (the result
            then -inf), NaN with a NaN.

    Returns:
        An array of ``x``'s dtype (0-d when every axis is reduced): +inf for a row holding +inf
        (and no NaN), NaN with a NaN, -inf for an empty or all -inf row (or one with nothing
        kept); with ``return_sign`` the pair ``(result, sign)``.

    Raises:
        TypeError: unsupported dtype of ``x`` or ``b``, or a bad ``axis`` type.
        ValueError: bad ``axis``, ``where`` or ``b`` shape.

    Example:
        >>> float(softcore.logsumexp(np.array([0.0, 0.0])))
        0.6931471805599453
        >>> softcore.logsumexp(np.zeros((2, 3)), axis=(0, 1), keepdims=True).shape
        (1, 1)
        >>> r, sign = softcore.logsumexp(np.zeros(2), b=np.array([1.0, -3.0]), return_sign=True)
        >>> float(r), float(sign)
        (0.6931471805599453, -1.0)
    """

@overload
def logsumexp(
    x: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    *,
    where: ArrayLike | None = None,
    keepdims: bool = False,
    b: ArrayLike | None = None,
    return_sign: Literal[True],
) -> tuple[NDArray[np.floating], NDArray[np.floating]]: ...
@overload
def logsumexp(
    x: ArrayLike,
    axis: int | tuple[int, ...] | None = -1,
    *,
    where: ArrayLike | None = None,
    keepdims: bool = False,
    b: ArrayLike | None = None,
    return_sign: bool,
) -> NDArray[np.floating] | tuple[NDArray[np.floating], NDArray[np.floating]]: ...

@final
class PinvInfo:
    """Per-matrix results of ``pinv(..., return_info=True)``; arrays over the batch shape."""

    @property
    def iterations(self) -> NDArray[np.int64]:
        """Steps taken (for ``iters=None``, the step of the iterate returned)."""
    @property
    def step(self) -> NDArray[np.float64]:
        """The last relative step ``||V_k+1 - V_k||_F / ||V_k+1||_F``."""
    @property
    def converged(self) -> NDArray[np.bool_]:
        """Whether that step is within ``tol``."""

@overload
def pinv(
    a: ArrayLike,
    *,
    iters: int | None = None,
    tol: float | None = None,
    order: int = 2,
    ridge: float = 0.0,
    return_info: Literal[False] = False,
) -> NDArray[np.floating]:
    """Moore–Penrose pseudo-inverse of each matrix of ``a`` (..., m, n) by Newton–Schulz
    iteration, as in SOFT; returns (..., n, m).

    Each matrix starts from ``V0 = a^T / (||a||_1 ||a||_inf)`` (its own scale, never the
    batch's) and iterates on the smaller Gram side. With ``iters=None``, an exactly symmetric
    positive definite matrix (such as SOFT's ``K(L, L)``) instead starts from the inverse given
    by float64 Gauss–Jordan elimination; the iteration then usually accepts it after one step
    (restarting from ``I / ||a||_inf`` if rounding put it outside the region of convergence).
    Iterates are never allowed to grow past ``1 / (eps ||a||_F)`` (inverting rounding noise).

    Args:
        a: float32 or float64 (float16 is computed in float32), any layout.
        iters: ``None`` iterates until the relative step ``||V_k+1 - V_k||_F <= tol *
            ||V_k+1||_F``, stopping early (keeping the iterate with the smallest step) when the
            step grows twice in a row after reaching the quadratic phase, and at most 100
            steps; an int (0 to 100000) runs exactly that many steps (SOFT uses 20).
        tol: the step tolerance; default 1e-4 (float32) or 1e-8 (float64): the step is the
            error of the previous iterate, and the one returned has about its square.
        order: 2 (``V <- V(2I - AV)``) or 3 (Nyströmformer's
            ``V <- 0.25 V(13I - AV(15I - AV(7I - AV)))``).
        ridge: computes the pseudo-inverse of ``a + ridge * I`` (SOFT adds 0.01).
        return_info: also return a :class:`PinvInfo`.

    Raises:
        TypeError: unsupported dtype. ValueError: fewer than 2 dimensions, NaN or infinity in
        ``a``, bad ``iters``, ``tol`` or ``order``.

    Example:
        >>> p = softcore.pinv(np.array([[2.0, 0.0], [0.0, 4.0]]))
        >>> np.diag(p), bool(np.all(p[[0, 1], [1, 0]] == 0))  # off-diagonal zeros may be -0.
        (array([0.5 , 0.25]), True)
    """

@overload
def pinv(
    a: ArrayLike,
    *,
    iters: int | None = None,
    tol: float | None = None,
    order: int = 2,
    ridge: float = 0.0,
    return_info: Literal[True],
) -> tuple[NDArray[np.floating], PinvInfo]: ...
@overload
def pinv(
    a: ArrayLike,
    *,
    iters: int | None = None,
    tol: float | None = None,
    order: int = 2,
    ridge: float = 0.0,
    return_info: bool = False,
) -> NDArray[np.floating] | tuple[NDArray[np.floating], PinvInfo]: ...
def pinv_backward(a: ArrayLike, a_pinv: ArrayLike, grad: ArrayLike) -> NDArray[np.floating]:
    """Gradient of a loss with respect to ``a`` through ``P = pinv(a)``, given ``grad = dL/dP``.

    Computes ``-P^T G P^T + (I - A P) G^T P P^T + P^T P G^T (I - P A)``: exact for rectangular
    and rank-deficient ``a`` (the last two terms vanish when ``a`` is invertible, leaving SOFT's
    ``-P^T G P^T``).

    Args:
        a: (..., m, n). a_pinv, grad: (..., n, m), all of one float dtype.

    Raises:
        TypeError: dtypes differ or are not float. ValueError: shapes do not match.

    Example:
        >>> a = np.array([[2.0, 0.0], [0.0, 4.0]])
        >>> softcore.pinv_backward(a, softcore.pinv(a), np.ones((2, 2)))
        array([[-0.25  , -0.125 ],
               [-0.125 , -0.0625]])
    """

def soft_attention(
    q: ArrayLike,
    v: ArrayLike,
    landmarks: ArrayLike | None = None,
    *,
    num_landmarks: int = 49,
    iters: int | None = None,
    ridge: float = 0.0,
    normalize: bool = False,
) -> NDArray[np.floating]:
    """SOFT attention (Lu et al., 2021): the Gaussian kernel ``exp(-||q_i - q_j||^2 / 2)`` with
    keys tied to queries, through Nyström landmarks, without forming an n x n matrix:
    ``K(q, L) (pinv(K(L, L)) (K(L, q) v))``.

    The caller scales q (SOFT uses ``d**-0.25``). Squared distances are clamped at 0.

    Args:
        q: (..., n, d). v: (..., n, dv) with q's batch dims. Same float dtype.
        landmarks: (l, d) shared by all heads or (..., l, d) per head (learned in SOFT); None
            uses the means of ``num_landmarks`` contiguous segments of q (at most n).
        iters, ridge: passed to :func:`pinv` (SOFT uses ``iters=20``, ``ridge=0.01``). With
            ``iters=None`` a symmetric positive definite ``K(L, L) + ridge I`` is applied
            directly by a float64 Cholesky solve when ``n * eps64 * cond_1`` is below pinv's
            tolerance (then no iteration could do better) and ``cond_1 <= 0.1 / eps`` of the
            dtype (beyond, rounding in the dtype has blurred its smallest singular values);
            otherwise, and with an int ``iters``, Newton–Schulz runs as in :func:`pinv`.
            ``pinv(K(L, L)) (K(L, q) v)`` is formed in float64.
        normalize: SOFT's symmetric normalisation
            ``K(q, L) D^-1/2 pinv(K(L, L)) D^-1/2 K(L, q) v`` with ``D = diag(K(L, L) 1)``.

    Returns:
        (..., n, dv), parallel over the batch.

    Raises:
        TypeError: dtypes differ or are not float. ValueError: shapes, NaN/inf, bad
        ``num_landmarks`` or ``iters``.

    Example:
        >>> q = np.zeros((1, 4, 2))  # every kernel entry is 1
        >>> softcore.soft_attention(q, np.ones((1, 4, 2)), num_landmarks=2)
        array([[[4., 4.],
                [4., 4.],
                [4., 4.],
                [4., 4.]]])
    """

@overload
def softmax_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    scale: float | None = None,
    causal: bool = False,
    mask: ArrayLike | None = None,
    window: int | None = None,
    return_lse: Literal[False] = False,
) -> NDArray[np.floating]:
    """Exact softmax attention ``softmax(scale q k^T) v``, tiled with the online softmax
    (FlashAttention's schedule): the n x s score matrix is never formed.

    Follows ``torch.nn.functional.scaled_dot_product_attention`` (bool masks, True = attend;
    ``enable_gqa`` grouped heads) except that ``causal`` is bottom-right aligned as in
    FlashAttention (key j visible to query i when ``j <= i + s - n``; torch aligns top-left) and
    a row with nothing visible gives 0s (torch gives NaN).

    Args:
        q: (..., n, d). k: (..., s, d). v: (..., s, dv). The dim before n/s (heads) may differ:
            q's heads a multiple of k's (grouped-query attention); other batch dims equal.
        scale: multiplies q.k; None is ``d**-0.5``.
        causal: key j visible to query i when ``j <= i + s - n``; tiles above the diagonal
            are skipped.
        mask: bool, broadcastable to (..., n, s), True = attend.
        window: sliding-window attention: keys ``i + s - n - window < j <= i + s - n`` (the
            causal bound is implied).
        return_lse: also return the log-sum-exp of each row's scaled scores, (..., n).

    Returns:
        (..., n, dv), or (out, lse) with ``return_lse=True``; lse is -inf for a row with
        nothing visible. float16 computes in float32.

    Raises:
        TypeError: non-float inputs or a non-bool mask. ValueError: shapes, heads not
        divisible, ``window < 1``, NaN/inf in q, k or v, scores ``scale * q.k`` beyond the
        dtype's range for these finite inputs (no softmax of them is computable in it;
        checked only when a row's result came out non-finite, so it costs nothing otherwise).

    Example:
        >>> q = np.ones((1, 3, 2))  # equal scores: each row averages its visible values
        >>> softcore.softmax_attention(q, q, np.arange(6.0).reshape(1, 3, 2), causal=True)
        array([[[0., 1.],
                [1., 2.],
                [2., 3.]]])
    """

@overload
def softmax_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    scale: float | None = None,
    causal: bool = False,
    mask: ArrayLike | None = None,
    window: int | None = None,
    return_lse: Literal[True],
) -> tuple[NDArray[np.floating], NDArray[np.floating]]: ...
@overload
def softmax_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    scale: float | None = None,
    causal: bool = False,
    mask: ArrayLike | None = None,
    window: int | None = None,
    return_lse: bool = False,
) -> NDArray[np.floating] | tuple[NDArray[np.floating], NDArray[np.floating]]: ...
@overload
def linear_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    feature_map: _FeatureMap = "elu1",
    causal: bool = False,
    decay: ArrayLike | None = None,
    normalize: bool = True,
    scale: float | None = None,
    eps: float = 1e-6,
    chunk_size: int = 64,
    initial_state: tuple[ArrayLike, ArrayLike | None] | None = None,
    return_state: Literal[False] = False,
) -> NDArray[np.floating]:
    """Linear attention (Katharopoulos et al., 2020) and its decayed recurrences (RetNet,
    simple GLA / Mamba-2 scalar gates, GLA per-key gates):
    ``S_t = exp(g_t) S_{t-1} + phi(k_t) v_t^T``, ``z_t = exp(g_t) z_{t-1} + phi(k_t)``,
    ``out_t = s phi(q_t) S_t / (s phi(q_t) . z_t + eps)`` (normalize=True).

    Non-causal: ``phi(K)^T V`` and ``phi(K)^T 1`` first, then phi(Q) times them, O(n d dv).
    Causal: flash-linear-attention's chunk form (a masked, decayed block inside each chunk, a
    carried state across chunks), linear in n; sequences of at most 8 tokens (decoding steps)
    run the recurrence directly. The chunk forms accumulate the state in float64 for every
    dtype; the recurrence (at most 8 tokens) runs in the dtype, in which the state is carried
    between calls anyway. Feature
    maps are applied inside the kernel: "elu1" = elu(x) + 1 (fast-transformers' default),
    "relu", "identity" (for maps applied outside, e.g. :func:`hedgehog_feature_map`), "exp" =
    ``exp(x - max(x))`` per token. fla's naive references differ in defaults (no feature map,
    scale ``d**-0.5``, unnormalised); pass ``feature_map="identity", normalize=False,
    scale=d**-0.5`` for that form.

    Args:
        q: (..., n, d). k: (..., s, d). v: (..., s, dv); grouped heads as in
            :func:`softmax_attention`. causal needs s = n.
        feature_map: "elu1" | "relu" | "identity" | "exp", applied to q and k.
        causal: each token sees itself and the ones before it.
        decay: log-decays g <= 0 (causal only): (...,) per head (RetNet), (..., n) per step
            (simple GLA, Mamba-2), or (..., n, d) per step and key dim (GLA).
        normalize: divide by ``s phi(q) . z + eps``; False gives the numerator (RetNet/GLA).
        scale: s, multiplies q.k (on phi(q)); None is 1.
        eps: added to the normaliser.
        chunk_size: tokens per chunk of the causal form (any n, not only multiples).
        initial_state: (S (..., d, dv), z (..., d) or None) carried in from an earlier call.
        return_state: also return the state (S, z) after the last token.

    Returns:
        (..., n, dv), or (out, (S, z)) with ``return_state=True``.

    Raises:
        TypeError: non-float inputs. ValueError: shapes, ``chunk_size < 1``, an unknown
        feature map, decay > 0 or non-finite, decay without causal, NaN/inf inputs.

    Example:
        >>> q = np.ones((1, 3, 2))  # equal features: each row averages its visible values
        >>> softcore.linear_attention(q, q, np.arange(6.0).reshape(1, 3, 2), causal=True).round(4)
        array([[[0., 1.],
                [1., 2.],
                [2., 3.]]])
    """

@overload
def linear_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    feature_map: _FeatureMap = "elu1",
    causal: bool = False,
    decay: ArrayLike | None = None,
    normalize: bool = True,
    scale: float | None = None,
    eps: float = 1e-6,
    chunk_size: int = 64,
    initial_state: tuple[ArrayLike, ArrayLike | None] | None = None,
    return_state: Literal[True],
) -> tuple[NDArray[np.floating], tuple[NDArray[np.floating], NDArray[np.floating]]]: ...
@overload
def linear_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    feature_map: _FeatureMap = "elu1",
    causal: bool = False,
    decay: ArrayLike | None = None,
    normalize: bool = True,
    scale: float | None = None,
    eps: float = 1e-6,
    chunk_size: int = 64,
    initial_state: tuple[ArrayLike, ArrayLike | None] | None = None,
    return_state: bool = False,
) -> (
    NDArray[np.floating]
    | tuple[NDArray[np.floating], tuple[NDArray[np.floating], NDArray[np.floating]]]
): ...
def causal_dot_product(q: ArrayLike, k: ArrayLike, v: ArrayLike) -> NDArray[np.floating]:
    """``sum_{j <= i} (q_i . k_j) v_j``: the unnormalised causal numerator, as
    fast-transformers' ``causal_product`` (q, k (..., n, d), v (..., n, dv)); the same as
    ``linear_attention(q, k, v, feature_map="identity", causal=True, normalize=False)``.

    Example:
        >>> q = np.ones((1, 3, 2))  # q.k = 2: running sums of v, doubled
        >>> softcore.causal_dot_product(q, q, np.arange(6.0).reshape(1, 3, 2))
        array([[[ 0.,  2.],
                [ 4.,  8.],
                [12., 18.]]])
    """

def hedgehog_feature_map(
    x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None
) -> NDArray[np.floating]:
    """Hedgehog's feature map (Zhang et al., 2024): ``y = x W + b``, then
    ``[softmax(y), softmax(-y)]`` along the features, (..., n, 2f), fused (one GEMM, two
    softmaxes in place, no temporaries beyond the output). Feeds
    ``linear_attention(..., feature_map="identity")``.

    The Hedgehog paper's form; flash-linear-attention's ``HedgehogFeatureMap`` instead takes one
    softmax over ``[2y, -2y]`` (2f features summing to 1, not 2).

    Args:
        x: (..., n, d). weight: (d, f). bias: (f,) or None.

    Example:
        >>> softcore.hedgehog_feature_map(np.zeros((1, 2, 3)), np.ones((3, 2)))
        array([[[0.5, 0.5, 0.5, 0.5],
                [0.5, 0.5, 0.5, 0.5]]])
    """

def agent_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    agents: ArrayLike | None = None,
    *,
    num_agents: int = 49,
    grid: tuple[int, int] | None = None,
    scale: float | None = None,
    agent_bias: ArrayLike | None = None,
    query_bias: ArrayLike | None = None,
) -> NDArray[np.floating]:
    """Agent attention (Han et al. 2024): agent tokens A attend to the keys,
    ``V_A = softmax(scale A K^T + agent_bias) V``, then the queries attend to the agents,
    ``out = softmax(scale Q A^T + query_bias) V_A``; ``scale=None`` is ``d**-0.5``. The score
    matrices are na x s and n x na, never n x s; each softmax runs through the softmax family's
    row kernel (a row that is all -inf after its bias gives 0s), each product through the
    crate's register-blocked kernel.

    Follows LeapLabTHU/Agent-Attention's ``AgentAttention.forward``: agents pooled from q, the
    same two softmaxes; its ``position_bias`` and ``agent_bias`` (built there from learned
    tables) are the additive ``agent_bias`` and ``query_bias`` here, given as arrays. The
    official depthwise convolution of v added to the output is a model part, not included.
    ``agents=None`` pools q with ``agent_pool``: 1-D adaptive average pooling over the tokens
    for any n (the official code needs n a perfect square), or with ``grid=(h, w)`` the
    official 2-D adaptive pooling of the h x w grid to sqrt(num_agents) x sqrt(num_agents).

    Args:
        q: (..., n, d). k: (..., s, d). v: (..., s, dv); grouped heads as softmax_attention.
        agents: (..., na, d), broadcastable to q's batch dims; None pools q.
        num_agents: agents to pool (ignored when agents are given).
        agent_bias: broadcastable to (..., na, s). query_bias: broadcastable to (..., n, na).

    Raises:
        TypeError: non-float inputs. ValueError: shapes, biases that do not broadcast or
        hold NaN or +inf (-inf masks an entry out), NaN/inf in q, k, v or agents, a grid that
        does not hold n tokens, a non-square num_agents with a grid, num_agents outside
        [1, 2**20], inputs whose scores could leave the dtype's range
        (``|scale| d max|agents| max(max|q|, max|k|)`` plus the biases' largest finite
        entries at or above its largest value: checked before computing).

    Example:
        >>> q = np.ones((1, 3, 2))  # equal scores: every row is the mean of v
        >>> softcore.agent_attention(q, q, np.arange(6.0).reshape(1, 3, 2), num_agents=2)
        array([[[2., 3.],
                [2., 3.],
                [2., 3.]]])
    """

def agent_pool(
    x: ArrayLike, num_agents: int, *, grid: tuple[int, int] | None = None
) -> NDArray[np.floating]:
    """Adaptive average pooling of the tokens of x (..., n, d) to (..., num_agents, d), as
    Agent attention pools its agents from q: bins ``floor(i n / na) .. ceil((i + 1) n / na)``
    (PyTorch's ``adaptive_avg_pool1d``); with ``grid=(h, w)`` (h w = n, tokens row-major) the
    2-D form (``adaptive_avg_pool2d`` to p x p, p = sqrt(num_agents), agents row-major).
    Sums in float64. ValueError for num_agents outside [1, 2**20].

    Example:
        >>> softcore.agent_pool(np.arange(10.0).reshape(5, 2), 2)
        array([[2., 3.],
               [6., 7.]])
    """

def tensor_attention(
    q: ArrayLike,
    k1: ArrayLike,
    k2: ArrayLike,
    v1: ArrayLike,
    v2: ArrayLike,
    *,
    scale: float | None = None,
    degree: int | None = None,
    causal: bool = False,
    windows: tuple[int, int] | None = None,
) -> NDArray[np.floating]:
    """Tensor (Kronecker, triple-wise) attention (Alman & Song 2023; the 2-simplicial attention
    of Clift et al. 2019 and Roy et al. 2025): each query attends to pairs of keys,
    ``x_ijl = scale sum_c q_ic k1_jc k2_lc``, ``out_i = sum_jl softmax_jl(x_i) (v1_j * v2_l)``,
    i.e. ``D^-1 exp(Q (K1 (x) K2)^T) (V1 (x) V2)`` with the column-wise Kronecker product;
    ``scale=None`` is ``d**-0.5``.

    Exact (``degree=None``): for each query the scores ``(K1 * q_i) K2^T`` stream through in
    tiles with one running max (the online softmax), and ``sum_jl p_jl v1_j * v2_l`` is taken
    as ``sum_j v1_j * (P V2)_j``; memory O(n d), never the n s^2 scores or the s^2 x d
    Kronecker matrix. ``causal``: keys j, l <= i + s - n (bottom-right, as softmax_attention;
    k1 and k2 of one length s). ``windows=(w1, w2)``: 2-simplicial attention's sliding
    windows, ``i + s - n - w1 < j`` and ``i + s - n - w2 < l`` (the causal bound is implied),
    cost O(n w1 w2 d).

    ``degree=g``: Alman & Song's polynomial method, the Taylor polynomial of degree g of exp,
    ``U1 [(U2^T V1) * (U3^T V2)] / U1 [(U2^T 1) * (U3^T 1)]`` with tensor-power features
    (``sum_t d^t`` of them), O((n + s) d^g dv), non-causal only. With every ``|x_ijl| <= B``,
    each weight's relative error is at most ``eps = B^(g+1) e^B / (g+1)!``, so each output is
    within ``2 eps / (1 - eps) max|v1 * v2|`` of the exact path. An odd g can make the
    normaliser non-positive (a ValueError naming the row); even g cannot.

    Args:
        q: (..., n, d). k1: (..., s1, d), v1: (..., s1, dv); k2: (..., s2, d), v2: (..., s2, dv).
            The heads dim of q may be a multiple of the keys' (grouped heads).

    Raises:
        TypeError: non-float inputs. ValueError: shapes, NaN/inf, windows < 1, causal with
        s1 != s2, degree with causal or windows, a degree needing more than 2**20 features
        (``sum_t d^t``), a non-positive normaliser, inputs whose scores could leave the
        dtype's range (``|scale| d max|q| max|k1| max|k2|`` at or above its largest value:
        checked before computing).

    Example:
        >>> q = np.zeros((1, 2)); k = np.ones((2, 2)); v = np.array([[1.0], [3.0]])
        >>> softcore.tensor_attention(q, k, k, v, v)
        array([[4.]])
    """

def inline_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    scale: float | None = None,
    feature_map: Literal["identity", "relu", "elu1"] = "identity",
) -> NDArray[np.floating]:
    """InLine attention (injective linear attention, Han et al. 2024): with s = ``scale``,
    ``out_i = sum_j w_ij v_j``, ``w_ij = s (phi(q_i).phi(k_j) - phi(q_i).mean_j phi(k_j)) + 1/N``,
    computed as ``phi(Q) [s sum_j (phi(k_j) - mean phi(k)) v_j^T] + mean_j v_j`` in O(N d dv):
    one pass over K and V (statistics in float64), one over Q. Every row of weights sums to 1
    with no division; weights may be negative (the output need not lie in the convex hull of
    the values).

    Follows LeapLabTHU/InLine's ``InLineAttention.forward`` (``q @ kv + (1 - q @ k.mean *
    scale) * v.mean`` with ``kv = k^T v * scale / n``): ``scale=None`` is ``d**-0.5 / N`` as
    there (``self.scale / n``). The official layer's depthwise 3x3 convolution residual of v
    is a model part and not included; the official code uses the identity map, softcore also
    offers ``"relu"`` and ``"elu1"``.

    Args:
        q: (..., n, d). k: (..., N, d). v: (..., N, dv); grouped heads as softmax_attention.

    Raises:
        TypeError: non-float inputs. ValueError: shapes, N = 0, a bad feature map, NaN/inf.

    Example:
        >>> q = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> softcore.inline_attention(q, q, np.array([[1.0], [3.0]]), scale=0.5)
        array([[1.5],
               [2.5]])
    """

def rala_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    scale: float | None = None,
    eps: float = 1e-6,
) -> NDArray[np.floating]:
    """RALA's rank-augmented linear attention (Fan et al. 2025): phi = elu + 1 on q and k; keys
    reweighted by the query summary, ``alpha = softmax_l(scale mean_i(phi(q_i)) . phi(k_l))``,
    ``k'_l = N alpha_l phi(k_l)``; then
    ``out_i = phi(q_i)^T (sum_l k'_l v_l^T / N) / (phi(q_i) . mean_l k'_l + eps)``.
    One pass over Q (its mean), one over K and V (the softmax over keys taken online, its
    statistics in float64), one over Q again; O(N d dv).

    Checked against qhfan/RALA's ``GateLinearAttentionNoSilu.forward``: the same formula with
    ``scale=None`` = ``d**-0.5`` (``self.scale``) and eps 1e-6. The official layer also rotates
    phi(q) and k' by RoPE in the numerator, adds LePE (a 5x5 depthwise convolution of v) and an
    output gate: model parts, not included.

    Args:
        q: (..., n, d). k: (..., N, d). v: (..., N, dv); grouped heads as softmax_attention.
        eps: >= 0, added to the denominator.

    Raises:
        TypeError: non-float inputs. ValueError: shapes, N = 0, negative or non-finite eps,
        NaN/inf.

    Example:
        >>> q = np.ones((1, 3, 2))  # equal features: every row is the mean of v
        >>> softcore.rala_attention(q, q, np.arange(6.0).reshape(1, 3, 2)).round(4)
        array([[[2., 3.],
                [2., 3.],
                [2., 3.]]])
    """

@overload
def decode_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    scale: float | None = None,
    kv_len: ArrayLike | int | None = None,
    num_splits: int | None = None,
    unified_max: float | None = None,
    return_info: Literal[False] = False,
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """Decoding attention: one query per head against a KV cache, split-KV (FlashDecoding):
    the valid keys are cut into ``num_splits`` ranges computed independently (in parallel),
    whose partial softmaxes (max m, sum l, output o) are merged as FlashAttention-2's
    ``combine_attn_seqk_parallel``: a split with nothing visible contributes nothing.

    ``unified_max=phi`` is FlashDecoding++'s asynchronised softmax: every split takes
    ``e^(x - phi)`` of the scaled scores x, with no running max and no rescaling, and the
    merge is a plain sum. A row where some score leaves ``phi +- ln(MAX)/2`` (44 in float32,
    354 in float64; overflow above, every term underflowing below) or whose sums are not
    finite is recomputed with the synchronised merge, so the result does not depend on phi:
    phi only decides how much work is redone (``return_info``). FlashDecoding++ picks phi
    per model from score statistics; any estimate of the scores' max works here.

    Differences from FlashAttention's split-KV: a row with nothing visible has lse ``-inf``
    (FlashAttention writes +inf); ``num_splits=None`` picks ``ceil(max kv_len / 2048)``
    splits from the inputs alone, never from the thread count, so the result is bitwise the
    same for any number of threads (as it is for any given ``num_splits``).

    Args:
        q: (..., hq, d), one query per head; or (..., d) with k (..., s, d).
        k: (..., hkv, s, d) and v (..., hkv, s, dv): the cache. hq a multiple of hkv
            (grouped-query attention: a k/v head's rows are read once for its whole group).
        scale: multiplies q.k; None is ``d**-0.5``.
        kv_len: int or integer array of valid cache lengths in [0, s]: one per sequence
            (shape ``q.shape[:-2]``) or per query head (``q.shape[:-1]``); keys at and beyond
            it are never read (they may hold anything). None: all s.
        num_splits: >= 1; more splits than keys is allowed (the extra ones are empty).
        unified_max: phi, finite, compared with the scaled scores ``scale * q.k``.
        return_info: also return ``{"num_splits": int, "fallback_rows": int}``, the rows
            recomputed with the synchronised merge (0 without ``unified_max``).

    Returns:
        (out (..., hq, dv), lse (..., hq)); a row with nothing visible (kv_len 0) gives 0s and
        lse -inf. float16 computes in float32. NaN or infinity in the visible part of k or v
        propagate to that row's output (the cache is not scanned for them: that would be a
        second read of it).

    Raises:
        TypeError: non-float inputs, non-integer kv_len. ValueError: shapes, heads not
        divisible, kv_len outside [0, s] or of another shape, ``num_splits < 1``, NaN/inf in
        q, non-finite scale or unified_max, scores ``scale * q.k`` beyond the dtype's range
        for finite keys (checked only for a row whose result came out non-finite).

    Example:
        >>> q, k, v = np.ones((2, 4)), np.ones((2, 3, 4)), np.arange(24.0).reshape(2, 3, 4)
        >>> out, lse = softcore.decode_attention(q, k, v, kv_len=2)
        >>> out[0]
        array([2., 3., 4., 5.])
    """

@overload
def decode_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    scale: float | None = None,
    kv_len: ArrayLike | int | None = None,
    num_splits: int | None = None,
    unified_max: float | None = None,
    return_info: Literal[True],
) -> tuple[NDArray[np.floating], NDArray[np.floating], dict[str, int]]: ...
@overload
def decode_attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    scale: float | None = None,
    kv_len: ArrayLike | int | None = None,
    num_splits: int | None = None,
    unified_max: float | None = None,
    return_info: bool = False,
) -> (
    tuple[NDArray[np.floating], NDArray[np.floating]]
    | tuple[NDArray[np.floating], NDArray[np.floating], dict[str, int]]
): ...
def power_softmax(
    x: ArrayLike,
    p: int = 4,
    axis: int = -1,
    *,
    eps: float = 0.0,
    where: ArrayLike | None = None,
) -> NDArray[np.floating]:
    """Power-Softmax ``x**p / (eps + sum(x**p))`` along ``axis`` for a positive even ``p``
    (Zimerman et al. 2024, a polynomial softmax for encrypted inference).

    Computed on ``x / max|x|`` (``eps`` becomes ``eps / max|x|**p``), so powers never overflow;
    accumulates in float64. ``where`` is multiplicative: masked entries give 0 and leave the
    sum; a row with nothing kept gives 0s. A row of zeros gives NaN when ``eps = 0`` (0/0) and
    0s otherwise; NaN or infinity give a NaN row.

    Raises:
        TypeError: unsupported dtype. ValueError: ``p`` not a positive even int (<= 1024),
        negative or non-finite ``eps``, bad axis or mask shape.

    Example:
        >>> softcore.power_softmax(np.array([1.0, -2.0, 3.0]), 2)
        array([0.07142857, 0.28571429, 0.64285714])
    """

@overload
def softmax_regression(
    a: ArrayLike, b: ArrayLike, x: ArrayLike, *, hessian: Literal[False] = False
) -> tuple[float, NDArray[np.floating]]:
    """Loss, gradient (and Hessian) of ``L(x) = 0.5 ||softmax(a @ x) - b||^2`` (softmax
    regression, Deng, Li & Song 2023), ``a`` (n, d), ``b`` (n,), ``x`` (d,).

    ``grad = a.T (f*c - <f, c> f)`` with ``f = softmax(a x)``, ``c = f - b``; the Hessian is
    the closed form ``a.T H a`` (symmetric). Computed in float64, returned in ``a``'s dtype
    (the loss as a Python float); ``a`` is read row by row (no copy of it). Scores ``a @ x``
    beyond float64's range (finite ``a`` and ``x`` near it) are taken through exact
    power-of-two rescaling, so f, the loss and the gradient stay finite; Hessian entries
    beyond float64 (in value or in rounding error) are +-inf.

    Raises:
        TypeError: unsupported dtype. ValueError: shapes, ``n = 0``, NaN or infinity.

    Example:
        >>> loss, grad = softcore.softmax_regression(np.eye(2), np.array([0.5, 0.5]), np.zeros(2))
        >>> loss, grad
        (0.0, array([0., 0.]))
    """

@overload
def softmax_regression(
    a: ArrayLike, b: ArrayLike, x: ArrayLike, *, hessian: Literal[True]
) -> tuple[float, NDArray[np.floating], NDArray[np.floating]]: ...
@overload
def softmax_regression(
    a: ArrayLike, b: ArrayLike, x: ArrayLike, *, hessian: bool = False
) -> (
    tuple[float, NDArray[np.floating]] | tuple[float, NDArray[np.floating], NDArray[np.floating]]
): ...
def top_k_gating(
    logits: ArrayLike,
    k: int,
    *,
    order: _Order = "softmax_topk",
    renormalize: bool = True,
    temperature: float = 1.0,
    score: Literal["softmax", "sigmoid"] = "softmax",
    bias: ArrayLike | None = None,
    activation: Literal["sigmoid", "tanh"] | None = None,
    n_group: int = 1,
    topk_group: int = 1,
    group_score: Literal["max", "sum_top2"] | None = None,
) -> tuple[NDArray[np.floating], NDArray[np.int64]]:
    """Top-k mixture-of-experts routing of ``logits`` (..., E): ``(weights, indices)``, both
    (..., k), each row sorted by weight descending with ties to the lower expert id
    (deterministic, unlike ``np.argpartition``). One pass per row, no sort.

    Args:
        order: ``"softmax_topk"`` takes the softmax over all experts, keeps the top k and
            divides by their sum if ``renormalize`` (Mixtral in HF transformers, DeepSeek-V2);
            ``"topk_softmax"`` takes the softmax over the k selected logits (Mixtral reference).
        temperature: scores of ``logits / temperature`` (dense-to-sparse gating).
        score: ``"sigmoid"`` scores each expert independently (DeepSeek-V3), divided by
            their sum if ``renormalize``.
        bias: (E,) added to the scores for selection only, never to the weights
            (aux-loss-free load balancing).
        activation: ``softmax(act(logits) / temperature)``, the activation dense-to-sparse gate.
        n_group, topk_group: group-limited routing: experts split into ``n_group`` consecutive
            groups, only the best ``topk_group`` groups are eligible (the others are -inf).
        group_score: how a group is ranked: ``"max"`` (DeepSeek-V2) or ``"sum_top2"``
            (DeepSeek-V3); ``None`` picks ``"sum_top2"`` for sigmoid scores, else ``"max"``.

    Without ``bias``, ``activation`` or ``"sum_top2"`` groups, experts are selected by logit
    (the same choice as by score, without the ties that rounding scores creates); otherwise by
    score (+ bias). A selected expert whose selection key is -inf (a -inf logit without an
    activation, or an expert of a dropped group filling k) gets weight 0. Weights are ordered
    as returned (float16 included); the last bits of a row's weights can depend on the SIMD
    path and on whether the row shares a 16-row block with a row holding -inf, NaN or +inf.

    Raises:
        TypeError: unsupported dtype. ValueError: NaN or +inf logits, a softmax row with no
        finite logit, ``k`` outside 1..E, a temperature (or its reciprocal) not finite and
        non-zero in the input's precision, bad group settings or names.

    Example:
        >>> w, i = softcore.top_k_gating(np.array([[1.0, 3.0, 2.0]]), 2)
        >>> i
        array([[1, 2]])
    """

def noisy_logits(
    clean: ArrayLike, noise_logits: ArrayLike, normal: ArrayLike
) -> NDArray[np.floating]:
    """Noisy top-k gating logits ``clean + normal * softplus(noise_logits)`` (Shazeer et al.
    2017), with a stable softplus. The standard-normal draws come from the caller (NumPy).

    Example:
        >>> softcore.noisy_logits(np.zeros(2), np.zeros(2), np.ones(2))  # softplus(0) = ln 2
        array([0.69314718, 0.69314718])
    """

def moe_dispatch(
    indices: ArrayLike, num_experts: int, *, capacity: int | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Slots of each (token, choice) in its expert's buffer: ``(positions (T, k), counts (E,))``.

    Priority is choice-major (every first choice before any second choice), tokens in order
    within a choice; a choice over ``capacity`` gets -1. ``counts`` is the number of
    assignments each expert received; it keeps ``min(count, capacity)``.

    Raises:
        TypeError: non-integer indices. ValueError: indices outside 0..E, negative capacity.

    Example:
        >>> idx = np.array([[1], [2], [2]])  # each token's expert
        >>> pos, counts = softcore.moe_dispatch(idx, 3, capacity=1)
        >>> pos.ravel(), counts
        (array([ 0,  0, -1]), array([0, 1, 2]))
    """

def moe_gather(
    x: ArrayLike,
    indices: ArrayLike,
    positions: ArrayLike,
    capacity: int,
    *,
    num_experts: int | None = None,
) -> NDArray[np.floating]:
    """Token vectors ``x`` (T, D) into expert buffers (E, C, D); empty slots are 0.
    ``num_experts`` defaults to ``max(indices) + 1``.

    Raises:
        ValueError: positions outside 0..C (or -1), a slot assigned twice, shape mismatch.

    Example:
        >>> idx = np.array([[1], [2]])
        >>> pos, _ = softcore.moe_dispatch(idx, 3, capacity=1)
        >>> softcore.moe_gather(np.array([[1.0], [2.0]]), idx, pos, 1, num_experts=3).ravel()
        array([0., 1., 2.])
    """

def moe_combine(
    expert_out: ArrayLike, indices: ArrayLike, positions: ArrayLike, weights: ArrayLike
) -> NDArray[np.floating]:
    """``out[t] = sum_j weights[t, j] * expert_out[indices[t, j], positions[t, j]]`` over the
    kept choices (dropped slots, position -1, add 0): (T, D).

    Example:
        >>> idx = np.array([[1], [2]])
        >>> pos, _ = softcore.moe_dispatch(idx, 3, capacity=1)
        >>> buf = softcore.moe_gather(np.array([[1.0], [2.0]]), idx, pos, 1, num_experts=3)
        >>> softcore.moe_combine(buf, idx, pos, np.full((2, 1), 0.5))
        array([[0.5],
               [1. ]])
    """

def load_balancing_loss(
    probs: ArrayLike, indices: ArrayLike, *, choices: Literal["first", "all"] = "first"
) -> float:
    """Switch Transformer's auxiliary loss ``E * sum_i f_i * P_i``: ``P_i`` the mean router
    probability of expert i, ``f_i`` the fraction of tokens whose first choice is i
    (``"first"``, Switch) or of all T k assignments going to i (``"all"``). Uniform routing
    gives 1 for both (HF Mixtral's top-k loss is k times ``"all"``).

    Example:
        >>> softcore.load_balancing_loss(np.full((2, 2), 0.5), np.array([[0], [1]]))  # balanced
        1.0
    """

def router_z_loss(logits: ArrayLike) -> float:
    """ST-MoE's router z-loss: the mean over tokens of ``logsumexp(logits)**2``.

    Example:
        >>> softcore.router_z_loss(np.zeros((4, 2)))  # logsumexp of each row is ln 2
        0.4804530139182014
    """
