"""Float64 references for Power-Softmax and softmax regression (re-exported by
``softcore.reference``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _f64(x: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(x, dtype=np.float64)


def power_softmax(
    x: ArrayLike,
    p: int = 4,
    axis: int = -1,
    *,
    eps: float = 0.0,
    where: ArrayLike | None = None,
) -> NDArray[np.floating[Any]]:
    """x^p / (eps + sum x^p) along axis, computed on x / max|x| (eps becomes eps / m^p).

    Masked entries give 0 and leave the sum; a row with nothing kept gives 0s; an all-zero row
    with eps = 0 gives NaN (0/0); NaN or inf give a NaN row.
    """
    x = _f64(x)
    keep = np.ones(x.shape, bool) if where is None else np.broadcast_to(where, x.shape)
    xk = np.where(keep, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        a = np.abs(xk)
        m = np.max(a, axis=axis, keepdims=True) if x.shape[axis] else np.ones(())
        m = np.where(np.isnan(a).any(axis=axis, keepdims=True), np.nan, m)
        r = (xk / m) ** p
        scaled_eps = eps * (1.0 / m) ** p if eps > 0 else 0.0  # (1/m)^p may overflow: 0 * inf
        s = scaled_eps + np.sum(np.where(keep, r, 0.0), axis=axis, keepdims=True)
        y = r / s
        y = np.where(m == 0, 0.0 if eps > 0 else np.nan, y)  # all kept entries are 0
    kept_any = np.any(keep, axis=axis, keepdims=True)
    return np.where(keep & kept_any, y, 0.0)


def softmax_regression(
    a: ArrayLike, b: ArrayLike, x: ArrayLike, *, hessian: bool = False
) -> (
    tuple[float, NDArray[np.floating[Any]]]
    | tuple[float, NDArray[np.floating[Any]], NDArray[np.floating[Any]]]
):
    """(loss, grad[, hess]) of L(x) = 0.5 ||softmax(a x) - b||^2, by the chain rule written out
    directly (Jacobian of softmax and its derivative), independent of the kernel's closed form."""
    a, b, x = _f64(a), _f64(b), _f64(x)
    u = a @ x
    f = np.exp(u - u.max())
    f /= f.sum()
    c = f - b
    jac = np.diag(f) - np.outer(f, f)  # d f / d u
    g_u = jac @ c
    loss = 0.5 * float(c @ c)
    grad = a.T @ g_u
    if not hessian:
        return loss, grad
    # d/du (J c) = J J + sum_i c_i d^2 f_i / du^2, d^2 f_i/du_j du_k = d/du_k (f_i (d_ij - f_j)).
    n = len(f)
    eye = np.eye(n)
    d2 = np.einsum("ik,ij->ijk", jac, eye - f[None, :]) - np.einsum("i,jk->ijk", f, jac)
    h_u = jac @ jac + np.einsum("i,ijk->jk", c, d2)
    return loss, grad, a.T @ h_u @ a
