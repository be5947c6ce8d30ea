//! Moore–Penrose pseudo-inverse by Newton–Schulz (Newton–Raphson) iteration, as SOFT uses it
//! (Lu et al., "SOFT: Softmax-free Transformer with Linear Complexity", 2021, Alg. 1; Ben-Israel &
//! Cohen 1966 for the iteration), with the order-3 update of Nyströmformer (Xiong et al., 2021).
//!
//! V_0 = A^T / (||A||_1 ||A||_inf) puts every singular value of A V_0 in (0, 1], so the
//! iteration converges to A^+ for any A, singular or rectangular. Each step works on the smaller
//! Gram side: T = A V (m x m) when m <= n, T = V A (n x n) otherwise, so a step costs
//! 2 min(m,n)^2 max(m,n) flops (order 2).
//!
//! Stopping: the residual ||I - A V|| does not go to 0 for rank-deficient A, so it is never the
//! test. With `iters = None` the step ||V_{k+1} - V_k||_F <= tol ||V_{k+1}||_F stops; once
//! converged, rounding makes the iterates drift and eventually blow up (the iteration is only
//! neutrally stable on the null space), so two growing steps in a row (counted once a step below
//! 1e-3 shows the quadratic phase has begun; before it, steps rise while V doubles) stop too and
//! the iterate with the smallest step is kept.

use super::cholesky::{cholesky_f64, cholesky_f64_symmetric, CholeskyF64};
use super::gemm::{gemm, matmul, GemmElem};
use super::spd_inverse::spd_inverse;
use crate::error::{Error, Result};
use crate::simd::{Elem, Isa};
use ndarray::{Array2, ArrayView2, Axis};

/// Cap on the number of steps when `iters` is None. Order 2 needs about
/// log2(cond(A)^2 * min(m,n)) + 6 steps; 100 covers condition numbers up to ~1e13 (f64).
pub const MAX_ITERS: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PinvOptions {
    /// Exactly this many steps; None iterates to convergence.
    pub iters: Option<usize>,
    /// Relative step size that counts as converged; None uses `default_tol`.
    pub tol: Option<f64>,
    /// 2 (Newton–Schulz) or 3 (Nyströmformer's cubic update).
    pub order: u32,
    /// Computes the pseudo-inverse of A + ridge I.
    pub ridge: f64,
}

impl Default for PinvOptions {
    fn default() -> Self {
        PinvOptions {
            iters: None,
            tol: None,
            order: 2,
            ridge: 0.0,
        }
    }
}

/// What happened for one matrix.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PinvInfo {
    pub iterations: usize,
    /// The last relative step ||V_{k+1} - V_k||_F / ||V_{k+1}||_F.
    pub step: f64,
    pub converged: bool,
}

/// A relative step below this means the iteration is in its quadratic phase.
const QUADRATIC_PHASE: f64 = 1e-3;

/// Default tolerance, about sqrt(eps): in the quadratic phase the step ||V_{k+1} - V_k|| is
/// the error of V_k, and V_{k+1} (the iterate returned) has about its square, i.e. rounding
/// level. A tighter tolerance only waits for steps that rounding never lets reach it.
pub fn default_tol<E: Elem>() -> f64 {
    if E::MANTISSA_DIGITS == 24 {
        1e-4
    } else {
        1e-8
    }
}

/// c I - T.
fn shift_neg<E: Elem>(t: &Array2<E>, c: E) -> Array2<E> {
    let mut u = t.mapv(|v| -v);
    for i in 0..u.nrows().min(u.ncols()) {
        u[[i, i]] = u[[i, i]] + c;
    }
    u
}

/// Work buffers of one matrix's iteration (allocated once, not per step).
struct Work<E> {
    /// T = A V (m x m) or V A (n x n).
    t: Array2<E>,
    /// Intermediate polynomial products in T (order 3).
    w: Array2<E>,
    w2: Array2<E>,
}

/// One update V -> next, returning the relative step ||next - V||_F / ||next||_F and ||next||_F:
/// order 2: next = 2V - V T (or 2V - T V);
/// order 3: W = 7T - T^2, W2 = 15T - T W, next = 3.25 V - 0.25 V W2.
/// The shifts of the T factors ride on GEMM's beta; the last combination is fused with the step
/// norms in one pass.
fn step<E: GemmElem>(
    a: &Array2<E>,
    v: &Array2<E>,
    next: &mut Array2<E>,
    wk: &mut Work<E>,
    order: u32,
    left: bool,
) -> Result<(f64, f64)> {
    let c = |x: f64| E::from_f64(x);
    if left {
        gemm(E::ZERO, wk.t.view_mut(), E::ONE, a.view(), v.view())?;
    } else {
        gemm(E::ZERO, wk.t.view_mut(), E::ONE, v.view(), a.view())?;
    }
    let (beta, alpha, poly) = if order == 2 {
        (2.0, -1.0, &wk.t)
    } else {
        wk.w.assign(&wk.t);
        gemm(c(7.0), wk.w.view_mut(), c(-1.0), wk.t.view(), wk.t.view())?;
        wk.w2.assign(&wk.t);
        gemm(c(15.0), wk.w2.view_mut(), c(-1.0), wk.t.view(), wk.w.view())?;
        (3.25, -0.25, &wk.w2)
    };
    // The polynomial in T commutes through: V p(AV) = p(VA) V.
    if left {
        gemm(E::ZERO, next.view_mut(), E::ONE, v.view(), poly.view())?;
    } else {
        gemm(E::ZERO, next.view_mut(), E::ONE, poly.view(), v.view())?;
    }
    let (beta, alpha) = (c(beta), c(alpha));
    let (ys, xs) = match (next.as_slice_mut(), v.as_slice()) {
        (Some(y), Some(x)) => (y, x),
        _ => {
            return Err(Error::Invalid(
                "internal: pinv buffers are contiguous".into(),
            ))
        }
    };
    // Eight independent partial sums so the loop vectorises (a single float accumulator is a
    // serial dependency the compiler may not reorder).
    let (mut d, mut s) = ([0.0f64; 8], [0.0f64; 8]);
    let mut yc = ys.chunks_exact_mut(8);
    let mut xc = xs.chunks_exact(8);
    for (y8, x8) in (&mut yc).zip(&mut xc) {
        for k in 0..8 {
            let nv = beta * x8[k] + alpha * y8[k];
            let (nf, xf) = (nv.to_f64(), x8[k].to_f64());
            d[k] += (nf - xf) * (nf - xf);
            s[k] += nf * nf;
            y8[k] = nv;
        }
    }
    for (y, &x) in yc.into_remainder().iter_mut().zip(xc.remainder()) {
        let nv = beta * x + alpha * *y;
        let (nf, xf) = (nv.to_f64(), x.to_f64());
        d[0] += (nf - xf) * (nf - xf);
        s[0] += nf * nf;
        *y = nv;
    }
    let (d, s): (f64, f64) = (d.iter().sum(), s.iter().sum());
    Ok((if s > 0.0 { (d / s).sqrt() } else { 0.0 }, s.sqrt()))
}

/// The ridge in the input's dtype: 1e308 is finite in f64 but infinite in f32.
pub(crate) fn ridge_in<E: GemmElem>(func: &str, ridge: f64) -> Result<E> {
    let r = E::from_f64(ridge);
    if !r.is_finite() {
        return Err(Error::Invalid(format!(
            "{func}: ridge = {ridge} is not finite in the inputs' dtype"
        )));
    }
    Ok(r)
}

fn check_options(opts: &PinvOptions) -> Result<()> {
    if opts.order != 2 && opts.order != 3 {
        return Err(Error::Invalid(format!(
            "pinv: order must be 2 or 3, got {}",
            opts.order
        )));
    }
    if !opts.ridge.is_finite() {
        return Err(Error::Invalid(format!(
            "pinv: ridge must be finite, got {}",
            opts.ridge
        )));
    }
    Ok(())
}

/// The Cholesky factor of a symmetric positive definite A + ridge I, for applying its
/// pseudo-inverse (= inverse) without iterating, when double precision alone determines it to
/// within the iteration's tolerance: the relative error of the solve is about n u cond(A) with
/// u = 2^-53 (Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., §10.1), below
/// the rounding floor of any iteration in f32 and at most `tol` in f64; the iteration would
/// accept the exact inverse within a step or two of no use. None (the caller runs `pinv`) for a
/// fixed step count (SOFT's own iterates), input that is not exactly symmetric, finite and
/// numerically positive definite, n u cond_1(A) above the tolerance, or cond_1(A) above
/// 0.1 / eps of E (below).
pub fn spd_solver_f64<E: GemmElem>(
    a: ArrayView2<'_, E>,
    opts: &PinvOptions,
) -> Result<Option<CholeskyF64>> {
    spd_solver::<E>(opts, |ridge| cholesky_f64(a, ridge))
}

/// `spd_solver_f64` for an A the caller has made exactly symmetric, in the layout of
/// `cholesky_f64_symmetric` (n rows of `padded(n)` f64, zero past column n; consumed), with E
/// the element type A was formed in. SOFT's K(L, L).
pub(crate) fn spd_solver_symmetric_f64<E: GemmElem>(
    isa: Isa,
    a: Vec<f64>,
    n: usize,
    opts: &PinvOptions,
) -> Result<Option<CholeskyF64>> {
    spd_solver::<E>(opts, |ridge| cholesky_f64_symmetric(isa, a, n, ridge))
}

/// Both entry points: options checked, fixed step counts declined, then `factor(ridge)` and
/// the acceptance rule.
fn spd_solver<E: GemmElem>(
    opts: &PinvOptions,
    factor: impl FnOnce(f64) -> Option<CholeskyF64>,
) -> Result<Option<CholeskyF64>> {
    check_options(opts)?;
    if opts.iters.is_some() {
        return Ok(None);
    }
    let Some(f) = factor(opts.ridge) else {
        return Ok(None);
    };
    let tol = opts.tol.unwrap_or_else(default_tol::<E>);
    // And A itself, rounded to E, must determine its inverse: beyond cond ~ 0.1 / eps_E its
    // smallest singular values are E's rounding noise, which an exact inverse would amplify
    // by cond; the iteration's bound on the iterate (see `iterate`) keeps them out instead.
    let eps_e = 0.5f64.powi(E::MANTISSA_DIGITS as i32 - 1);
    let accept =
        |cond: f64| f.dim() as f64 * f64::EPSILON * 0.5 * cond <= tol && cond * eps_e <= 0.1;
    // The O(n^2) upper bound settles it when it passes (then cond_1 does too); otherwise
    // cond_1 itself, from the inverse (n solves), decides: the decision cond_1 alone would
    // make, up to rounding right at the threshold.
    Ok((accept(f.cond1_upper()) || accept(f.cond1())).then_some(f))
}

/// The pseudo-inverse of one matrix (n x m result for an m x n input).
pub fn pinv<E: GemmElem>(
    a: ArrayView2<'_, E>,
    opts: &PinvOptions,
) -> Result<(Array2<E>, PinvInfo)> {
    check_options(opts)?;
    let (m, n) = a.dim();
    if a.iter().any(|v| !v.is_finite()) {
        return Err(Error::Invalid("pinv: a contains NaN or infinity".into()));
    }
    let ridge = ridge_in::<E>("pinv", opts.ridge)?;
    let mut a = a.to_owned();
    for i in 0..m.min(n) {
        a[[i, i]] = a[[i, i]] + ridge;
    }
    // a is finite: only the diagonal, where the ridge went, can have overflowed.
    if (0..m.min(n)).any(|i| !a[[i, i]].is_finite()) {
        return Err(Error::Invalid(format!(
            "pinv: a + ridge I overflows (ridge = {})",
            opts.ridge
        )));
    }
    let norm1 = a.map_axis(Axis(0), |c| c.iter().map(|v| v.to_f64().abs()).sum::<f64>());
    let norminf = a.map_axis(Axis(1), |r| r.iter().map(|v| v.to_f64().abs()).sum::<f64>());
    let scale =
        norm1.iter().cloned().fold(0.0, f64::max) * norminf.iter().cloned().fold(0.0, f64::max);
    let zero_info = PinvInfo {
        iterations: 0,
        step: 0.0,
        converged: true,
    };
    if m == 0 || n == 0 || scale == 0.0 {
        return Ok((Array2::from_elem((n, m), E::ZERO), zero_info));
    }
    let general_start = || {
        // C order (as every buffer here): the step fuses over contiguous slices.
        Array2::from_shape_fn((n, m), |(i, j)| E::from_f64(a[[j, i]].to_f64() / scale))
    };
    if opts.iters.is_some() {
        // A fixed count follows SOFT's iterates exactly, from SOFT's start.
        return iterate(&a, general_start(), opts, opts.iters);
    }
    let Some(v0) = spd_inverse(a.view()) else {
        return iterate(&a, general_start(), opts, None);
    };
    // SPD: start from the direct inverse; the step test then accepts it after one or two
    // steps. If rounding in E leaves it outside the region of quadratic convergence (condition
    // numbers near 1/eps), restart from V0 = I / ||A||_inf, which puts A V0's eigenvalues
    // lambda / ||A||_inf in (0, 1] (the norm bounds the spectral radius): log2(cond) doublings
    // instead of the log2(cond^2) that A V0 = A^2 / (||A||_1 ||A||_inf) needs.
    let (v, info) = iterate(&a, v0, opts, Some(DIRECT_MAX))?;
    if info.converged || info.step < DIRECT_ACCEPT {
        // Converged, or settled at the rounding floor (about cond * eps, above `tol` for
        // condition numbers beyond ~1e3 in f32), where any start ends up.
        return Ok((v, info));
    }
    let inf = norminf.iter().cloned().fold(0.0, f64::max);
    let v0 = Array2::from_shape_fn((n, m), |(i, j)| {
        E::from_f64(if i == j { 1.0 / inf } else { 0.0 })
    });
    let (v, mut info2) = iterate(&a, v0, opts, None)?;
    info2.iterations += info.iterations;
    Ok((v, info2))
}

/// Steps allowed from the direct start before falling back: from a residual ||I - A V0|| of
/// 0.5 quadratic convergence reaches f64 rounding in six.
const DIRECT_MAX: usize = 6;

/// A step below this from the direct start means ||I - A V|| < 1: the iteration converges
/// from there (to the rounding floor); above it, the start was too inaccurate.
const DIRECT_ACCEPT: f64 = 0.1;

/// Runs the iteration from `v`: exactly `fixed` steps when given (with `opts.iters` set), else
/// to convergence by the step test with at most `fixed.unwrap_or(MAX_ITERS)` steps.
fn iterate<E: GemmElem>(
    a: &Array2<E>,
    mut v: Array2<E>,
    opts: &PinvOptions,
    fixed: Option<usize>,
) -> Result<(Array2<E>, PinvInfo)> {
    let (m, n) = a.dim();
    let left = m <= n;
    let side = m.min(n);
    // Order 2 needs only T; order 3 also the two products in T.
    let extra = if opts.order == 3 { side } else { 0 };
    let mut wk = Work {
        t: Array2::from_elem((side, side), E::ZERO),
        w: Array2::from_elem((extra, extra), E::ZERO),
        w2: Array2::from_elem((extra, extra), E::ZERO),
    };
    let mut next = Array2::from_elem((n, m), E::ZERO);
    let tol = opts.tol.unwrap_or_else(default_tol::<E>);
    let exact = opts.iters.is_some();
    // Started from the direct inverse (see `pinv`).
    let direct = !exact && fixed == Some(DIRECT_MAX);
    let cap = fixed.unwrap_or(MAX_ITERS);
    let mut info = PinvInfo {
        iterations: 0,
        step: f64::INFINITY,
        converged: false,
    };
    // The iterate with the smallest step so far, kept once the quadratic phase is reached.
    let mut best: Option<(Array2<E>, f64, usize)> = None;
    let mut grows = 0;
    // No meaningful inverse is larger than this: singular values below eps ||A|| are rounding
    // noise. Iterates beyond it are inverting noise (condition numbers near 1/eps never reach
    // the quadratic phase, and their steps never shrink) and soon overflow.
    let a_norm = a
        .iter()
        .map(|x| x.to_f64() * x.to_f64())
        .sum::<f64>()
        .sqrt();
    let v_max = 1.0 / (0.5f64.powi(E::MANTISSA_DIGITS as i32 - 1) * a_norm);
    for k in 1..=cap {
        let (st, v_norm) = step(a, &v, &mut next, &mut wk, opts.order, left)?;
        if direct && k >= 2 && st.is_finite() && st > 0.5 * info.step {
            // From the direct start steps shrink quadratically until rounding stops them:
            // no longer halving means the floor; keep the better of the last two iterates.
            if st < info.step {
                std::mem::swap(&mut v, &mut next);
                info = PinvInfo {
                    iterations: k,
                    step: st,
                    converged: st <= tol,
                };
            }
            break;
        }
        if !st.is_finite() || (!exact && v_norm > v_max) {
            // Keep v: the new iterate blew up (only possible long after convergence in
            // fixed-count mode) or is inverting rounding noise (above).
            break;
        }
        let best_step = best.as_ref().map_or(f64::INFINITY, |b| b.1);
        // Steps rise during the first, linear phase (V doubles while small singular values
        // catch up), so growth only counts once the quadratic phase has been reached.
        grows = if st > info.step && best_step < QUADRATIC_PHASE {
            grows + 1
        } else {
            0
        };
        std::mem::swap(&mut v, &mut next);
        info = PinvInfo {
            iterations: k,
            step: st,
            converged: st <= tol,
        };
        if exact {
            continue;
        }
        if info.converged {
            break;
        }
        if st < best_step && st < QUADRATIC_PHASE {
            match &mut best {
                Some(b) => {
                    b.0.assign(&v);
                    b.1 = st;
                    b.2 = k;
                }
                None => best = Some((v.clone(), st, k)),
            }
        }
        if grows >= 2 {
            // Rounding has taken over: return the iterate with the smallest step.
            if let Some((bv, bs, bk)) = best.take() {
                info = PinvInfo {
                    iterations: bk,
                    step: bs,
                    converged: bs <= tol,
                };
                v = bv;
            }
            break;
        }
    }
    Ok((v, info))
}

/// Gradient of a loss through P = pinv(A), given G = dL/dP (n x m) and A (m x n):
/// -P^T G P^T + (I - A P) G^T P P^T + P^T P G^T (I - P A). The last two terms vanish when A is
/// invertible, leaving SOFT's -P^T G P^T; they are what makes it exact for rank-deficient and
/// rectangular A (Golub & Pereyra, 1973, Thm. 4.3).
pub fn pinv_backward<E: GemmElem>(
    a: ArrayView2<'_, E>,
    p: ArrayView2<'_, E>,
    g: ArrayView2<'_, E>,
) -> Result<Array2<E>> {
    let (m, n) = a.dim();
    for (what, x) in [("a_pinv", &p), ("grad", &g)] {
        if x.dim() != (n, m) {
            return Err(Error::Shape {
                what,
                expected: vec![n, m],
                got: x.shape().to_vec(),
            });
        }
    }
    let pt = p.t();
    let gt = g.t();
    // -P^T G P^T
    let mut out = matmul(matmul(pt, g)?.view(), pt)?.mapv(|x| -x);
    // (I - A P) G^T P P^T
    let ap = matmul(a, p)?;
    let i_ap = shift_neg(&ap, E::ONE);
    let ppt = matmul(p, pt)?;
    let t = matmul(i_ap.view(), gt)?;
    gemm(E::ONE, out.view_mut(), E::ONE, t.view(), ppt.view())?;
    // P^T P G^T (I - P A)
    let ptp = matmul(pt, p)?;
    let pa = matmul(p, a)?;
    let i_pa = shift_neg(&pa, E::ONE);
    let t = matmul(ptp.view(), gt)?;
    gemm(E::ONE, out.view_mut(), E::ONE, t.view(), i_pa.view())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaussian_landmarks(l: usize, scale: f64) -> Array2<f64> {
        // K(L, L) for L on a line: SPD, with a condition number that grows with `scale`'s
        // inverse (closer landmarks).
        Array2::from_shape_fn((l, l), |(i, j)| {
            let d = (i as f64 - j as f64) * scale;
            (-d * d / 2.0).exp()
        })
    }

    #[test]
    fn direct_spd_solve_when_accurate_enough() {
        let a = gaussian_landmarks(10, 1.0);
        let opts = PinvOptions::default();
        let f = spd_solver_f64(a.view(), &opts)
            .unwrap()
            .expect("well conditioned");
        let (x, ld) = f.inverse();
        let p = Array2::from_shape_fn((10, 10), |(i, j)| x[i * ld + j]);
        let id = a.dot(&p);
        for ((i, j), x) in id.indexed_iter() {
            assert!((x - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
        }
        // The same matrix through `pinv` agrees.
        let (q, _) = pinv(a.view(), &opts).unwrap();
        assert!((&p - &q).iter().all(|x| x.abs() < 1e-9));
    }

    #[test]
    fn direct_spd_solve_declines() {
        let a = gaussian_landmarks(10, 1.0);
        // A fixed step count asks for the iteration's own iterates.
        let fixed = PinvOptions {
            iters: Some(20),
            ..PinvOptions::default()
        };
        assert!(spd_solver_f64(a.view(), &fixed).unwrap().is_none());
        // Too ill-conditioned for f64 alone to reach the f64 tolerance (cond ~ 1e9).
        let close = gaussian_landmarks(10, 0.2);
        assert!(spd_solver_f64(close.view(), &PinvOptions::default())
            .unwrap()
            .is_none());
        // Singular (duplicated landmark) and indefinite input.
        // Landmarks at 0, 0, 1: rows 0 and 1 of K(L, L) are equal.
        let at = [0.0f64, 0.0, 1.0];
        let dup = Array2::from_shape_fn((3, 3), |(i, j)| (-(at[i] - at[j]).powi(2) / 2.0).exp());
        assert!(spd_solver_f64(dup.view(), &PinvOptions::default())
            .unwrap()
            .is_none());
        // In f32, a condition number that f64 handles but f32 rounding already blurs (~1e7).
        let blurred = gaussian_landmarks(6, 0.3).mapv(|x| x as f32);
        let inv64 = spd_solver_f64(blurred.mapv(f64::from).view(), &PinvOptions::default());
        assert!(inv64.unwrap().is_some_and(|i| i.cond1() > 2e6));
        assert!(spd_solver_f64(blurred.view(), &PinvOptions::default())
            .unwrap()
            .is_none());
        // Invalid options are errors, as in `pinv`.
        let bad = PinvOptions {
            order: 4,
            ..PinvOptions::default()
        };
        assert!(spd_solver_f64(a.view(), &bad).is_err());
        let bad = PinvOptions {
            ridge: f64::NAN,
            ..PinvOptions::default()
        };
        assert!(spd_solver_f64(a.view(), &bad).is_err());
    }
}
