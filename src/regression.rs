//! Softmax regression, the model problem of the in-context-learning analyses (Deng, Li & Song,
//! "Attention scheme inspired softmax regression", 2023): for A (n x d), b (n) and x (d),
//!
//! ```text
//! f = softmax(A x),  c = f - b,  L(x) = 0.5 ||c||^2
//! grad = A^T (f o c - <f, c> f)
//! hess = A^T H A,  H = diag(w) - q f^T - f q^T + gamma f f^T
//! ```
//!
//! with r = c + f, q = r o f, w = q - <f, c> f and gamma = <r, f> + <f, c>. H is the Jacobian
//! of J c (J = diag(f) - f f^T) with respect to u = A x, written in symmetric form (derived
//! here from d(J c) = (diag(r) - f r^T - <f, c> I) J du). Everything is computed in double
//! precision and rounded once.

use crate::error::{Error, Result};
use crate::linalg::{matmul, GemmElem};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

pub struct SoftmaxRegression<E> {
    pub loss: f64,
    pub grad: Array1<E>,
    pub hess: Option<Array2<E>>,
}

pub fn softmax_regression<E: GemmElem>(
    a: ArrayView2<'_, E>,
    b: ArrayView1<'_, E>,
    x: ArrayView1<'_, E>,
    hessian: bool,
) -> Result<SoftmaxRegression<E>> {
    let (n, d) = a.dim();
    for (what, v, len) in [("b", &b, n), ("x", &x, d)] {
        if v.len() != len {
            return Err(Error::Shape {
                what,
                expected: vec![len],
                got: v.shape().to_vec(),
            });
        }
    }
    if n == 0 {
        return Err(Error::Invalid(
            "softmax_regression: a has no rows (n = 0): softmax of nothing".into(),
        ));
    }
    if a.iter()
        .chain(b.iter())
        .chain(x.iter())
        .any(|t| !t.is_finite())
    {
        return Err(Error::Invalid(
            "softmax_regression: a, b or x contains NaN or infinity".into(),
        ));
    }
    let a64 = a.mapv(|t| t.to_f64());
    let (b64, x64) = (b.mapv(|t| t.to_f64()), x.mapv(|t| t.to_f64()));
    let u = a64.dot(&x64);
    let mx = u.fold(f64::NEG_INFINITY, |m, &t| m.max(t));
    let mut f = u.mapv(|t| (t - mx).exp());
    let s = f.sum();
    f.mapv_inplace(|t| t / s);
    let c = &f - &b64;
    let loss = 0.5 * c.dot(&c);
    let fc = f.dot(&c);
    let g_u = &f * &c - &(&f * fc);
    let grad = a64.t().dot(&g_u).mapv(E::from_f64);
    let hess = if hessian {
        let r = &c + &f;
        let q = &r * &f;
        let w = &q - &(&f * fc);
        let gamma = r.dot(&f) + fc;
        // A^T diag(w) A through one GEMM on the row-scaled A.
        let mut aw = a64.clone();
        for (mut row, &wi) in aw.axis_iter_mut(Axis(0)).zip(w.iter()) {
            row.mapv_inplace(|t| t * wi);
        }
        let mut h = matmul(a64.t(), aw.view())?;
        let (af, aq) = (a64.t().dot(&f), a64.t().dot(&q));
        for i in 0..d {
            for j in 0..d {
                h[[i, j]] += -aq[i] * af[j] - af[i] * aq[j] + gamma * af[i] * af[j];
            }
        }
        Some(h.mapv(E::from_f64))
    } else {
        None
    };
    Ok(SoftmaxRegression { loss, grad, hess })
}
