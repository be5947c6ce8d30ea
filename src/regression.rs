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
    let amax = match a.as_slice() {
        Some(s) => max_abs(s),
        None => a
            .iter()
            .fold(0.0f64, |m, t| m.max(t.to_f64().abs()) + t.to_f64() * 0.0),
    };
    if !amax.is_finite() || b.iter().chain(x.iter()).any(|t| !t.is_finite()) {
        return Err(Error::Invalid(
            "softmax_regression: a, b or x contains NaN or infinity".into(),
        ));
    }
    // A is read row by row (converted to f64 on the fly, a block at a time for the Hessian's
    // product): no n x d copy, which for a large or broadcast A would be the only big buffer.
    let x64 = x.mapv(|t| t.to_f64());
    let b64 = b.mapv(|t| t.to_f64());
    // Scores that would overflow f64 (finite A and x near its range) are taken as
    // (A/sa)(x/sx) with power-of-two sa, sx (exact divisions), the softmax as
    // exp((u'_i - max u') sa sx): the same weights, computed without inf - inf.
    let xmax = x64.iter().fold(0.0f64, |m, t| m.max(t.abs()));
    let bound = amax * xmax * d as f64;
    let (sa, sx) = if bound.is_finite() && bound < 1e300 {
        (1.0, 1.0)
    } else {
        (pow2_below(amax), pow2_below(xmax))
    };
    let xs = x64.mapv(|t| t / sx);
    // In logical order whatever x's strides (mapv keeps a reversed x's layout).
    let xs: Vec<f64> = xs.iter().copied().collect();
    let xs = &xs[..];
    let inv = 1.0 / sa;
    let u = Array1::from_iter(a.rows().into_iter().map(|r| {
        match r.as_slice() {
            Some(r) => dot_row(r, sa, xs),
            None => r
                .iter()
                .zip(xs)
                .map(|(&t, &xv)| (t.to_f64() * inv) * xv)
                .sum::<f64>(),
        }
    }));
    let mx = u.fold(f64::NEG_INFINITY, |m, &t| m.max(t));
    let mut f = u.mapv(|t| {
        let z = t - mx;
        if z == 0.0 {
            1.0
        } else {
            (z * sa * sx).exp()
        }
    });
    let s = f.sum();
    f.mapv_inplace(|t| t / s);
    let c = &f - &b64;
    let loss = 0.5 * c.dot(&c);
    let fc = f.dot(&c);
    let g_u = &f * &c - &(&f * fc);
    // A/sa throughout, multiplied back at the end (exact: sa is a power of two): a Hessian
    // beyond float64 is then +-inf (or 0), not the NaN of inf - inf.
    let grad = at_times(a, sa, &g_u).mapv(|t| E::from_f64(t * sa));
    let hess = if hessian {
        let r = &c + &f;
        let q = &r * &f;
        let w = &q - &(&f * fc);
        let gamma = r.dot(&f) + fc;
        let mut h = at_diag_a(a, sa, &w)?;
        let (af, aq) = (at_times(a, sa, &f), at_times(a, sa, &q));
        for i in 0..d {
            for j in 0..d {
                h[[i, j]] += -aq[i] * af[j] - af[i] * aq[j] + gamma * af[i] * af[j];
            }
        }
        Some(h.mapv(|t| E::from_f64(t * sa * sa)))
    } else {
        None
    };
    Ok(SoftmaxRegression { loss, grad, hess })
}

/// The largest power of two <= v (1 for v = 0): dividing by it is exact.
fn pow2_below(v: f64) -> f64 {
    if v > 0.0 {
        2f64.powi(v.log2().floor() as i32)
    } else {
        1.0
    }
}

/// max |x|, or NaN when x holds NaN or infinity (t * 0 is NaN exactly then), in eight lanes.
fn max_abs<E: GemmElem>(xs: &[E]) -> f64 {
    let (mut m, mut z) = ([0.0f64; 8], [0.0f64; 8]);
    let c = xs.chunks_exact(8);
    let tail = c.remainder();
    for b in c {
        for i in 0..8 {
            let t = b[i].to_f64();
            m[i] = m[i].max(t.abs());
            z[i] += t * 0.0;
        }
    }
    let mut r = m.iter().fold(0.0f64, |a, &b| a.max(b)) + z.iter().sum::<f64>();
    for &t in tail {
        r = r.max(t.to_f64().abs()) + t.to_f64() * 0.0;
    }
    r
}

/// (r / sa) . x in f64 with eight independent sums (a single chain is bound by the add's
/// latency; eight vectorise).
fn dot_row<E: GemmElem>(r: &[E], sa: f64, x: &[f64]) -> f64 {
    let inv = 1.0 / sa; // exact: sa is a power of two, and x * 2^-k rounds as x / 2^k
    let mut acc = [0.0f64; 8];
    let (rc, xc) = (r.chunks_exact(8), x.chunks_exact(8));
    let (rt, xt) = (rc.remainder(), xc.remainder());
    for (rb, xb) in rc.zip(xc) {
        for i in 0..8 {
            acc[i] += (rb[i].to_f64() * inv) * xb[i];
        }
    }
    let tail: f64 = rt
        .iter()
        .zip(xt)
        .map(|(&t, &xv)| (t.to_f64() * inv) * xv)
        .sum();
    acc.iter().sum::<f64>() + tail
}

/// (A / sa)^T w in f64, row by row.
fn at_times<E: GemmElem>(a: ArrayView2<'_, E>, sa: f64, w: &Array1<f64>) -> Array1<f64> {
    let inv = 1.0 / sa;
    let mut out = Array1::<f64>::zeros(a.ncols());
    let o = out.as_slice_mut().unwrap_or(&mut []);
    for (row, &wi) in a.rows().into_iter().zip(w.iter()) {
        match row.as_slice() {
            Some(r) => o
                .iter_mut()
                .zip(r)
                .for_each(|(o, &t)| *o += wi * (t.to_f64() * inv)),
            None => o
                .iter_mut()
                .zip(row.iter())
                .for_each(|(o, &t)| *o += wi * (t.to_f64() * inv)),
        }
    }
    out
}

/// (A / sa)^T diag(w) (A / sa) in f64 through one GEMM per block of rows (the block converted
/// and scaled).
fn at_diag_a<E: GemmElem>(a: ArrayView2<'_, E>, sa: f64, w: &Array1<f64>) -> Result<Array2<f64>> {
    const ROWS: usize = 256;
    let (d, inv) = (a.ncols(), 1.0 / sa);
    let mut h = Array2::<f64>::zeros((d, d));
    for (blk, wb) in a
        .axis_chunks_iter(Axis(0), ROWS)
        .zip(w.axis_chunks_iter(Axis(0), ROWS))
    {
        let a64 = blk.mapv(|t| t.to_f64() * inv);
        let mut aw = a64.clone();
        for (mut row, &wi) in aw.axis_iter_mut(Axis(0)).zip(wb.iter()) {
            row.mapv_inplace(|t| t * wi);
        }
        h += &matmul(a64.t(), aw.view())?;
    }
    Ok(h)
}
