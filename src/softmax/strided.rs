//! Reductions along a non-last axis. A C-contiguous array is viewed as (outer, n, inner) and the
//! reduction runs down the n rows of each (n, inner) block. Rather than transposing, each block
//! is processed in strips of columns, one vector per LANES columns: every row step is a unit-stride
//! vector load, and each lane keeps its own running reduction (no horizontal work at all).
//! Strips are 4 vectors wide for instruction-level parallelism, then 1 vector for the remainder
//! (masked for the last partial vector).

use super::extexp::{e_init, merge_v, ExtSum};
use super::rows::{log_softmax_row, logsumexp_row, softmax_row, RowOp};
use super::Algorithm;
use crate::simd::exp::{exp, exp_parts};
use crate::simd::{Elem, Kernel, Lanes, Simd};

/// A raw output pointer that may cross threads: tasks write disjoint column ranges of the same
/// block, which no safe slice split can express.
#[derive(Clone, Copy)]
pub struct OutPtr<E>(pub *mut E);
// SAFETY: only used for writes to disjoint elements, each task owning its columns.
unsafe impl<E: Send> Send for OutPtr<E> {}
unsafe impl<E: Sync> Sync for OutPtr<E> {}

/// One (n, inner) block of a C-contiguous (outer, n, inner) array, columns `cols`.
pub struct Cols<'a, E> {
    /// The block, n * inner elements.
    pub x: &'a [E],
    /// Softmax/log-softmax output of the same shape as `x`, or null for logsumexp.
    pub y: OutPtr<E>,
    /// logsumexp output (inner elements), or null.
    pub lse: OutPtr<E>,
    pub n: usize,
    pub inner: usize,
    pub cols: std::ops::Range<usize>,
    pub op: RowOp,
}

impl<E: Lanes> Kernel<E> for Cols<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        let (n, inner) = (self.n, self.inner);
        assert!(self.x.len() == n * inner && self.cols.end <= inner);
        if n == 0 {
            return;
        }
        let w = S::LANES;
        let mut j = self.cols.start;
        let end = self.cols.end;
        let c = |j, width| StripCtx {
            x: self.x,
            y: self.y.0,
            lse: self.lse.0,
            n,
            stride: inner,
            j,
            width,
        };
        while j + 4 * w <= end {
            // SAFETY: the caller's contract on `y`/`lse` (see `Cols`): this task owns these columns.
            unsafe { strip::<S, 4>(c(j, 4 * w), self.op) };
            j += 4 * w;
        }
        while j < end {
            unsafe { strip::<S, 1>(c(j, w.min(end - j)), self.op) };
            j += w;
        }
    }
}

/// One strip: columns j .. j + width of an (n, stride) block.
#[derive(Clone, Copy)]
struct StripCtx<'a, E> {
    x: &'a [E],
    y: *mut E,
    lse: *mut E,
    n: usize,
    stride: usize,
    j: usize,
    width: usize,
}

/// Loads the `valid` (1..=LANES) columns at p, padding with `fill`.
#[inline(always)]
unsafe fn load_cols<S: Simd>(p: *const S::E, valid: usize, fill: S::E) -> S::V {
    // SAFETY: the caller guarantees p[..valid] is readable.
    unsafe {
        if valid >= S::LANES {
            S::load(p)
        } else {
            S::load_partial(p, valid, fill)
        }
    }
}

#[inline(always)]
unsafe fn store_cols<S: Simd>(p: *mut S::E, valid: usize, v: S::V) {
    // SAFETY: the caller guarantees p[..valid] is writable.
    unsafe {
        if valid >= S::LANES {
            S::store(p, v)
        } else {
            S::store_partial(p, valid, v)
        }
    }
}

/// Per-lane scalars as a vector (through memory: this runs once per strip, not per element).
#[inline(always)]
fn from_lanes<S: Simd>(l: &[S::E; 16]) -> S::V {
    // SAFETY: the array has 16 >= LANES elements.
    unsafe { S::load(l.as_ptr()) }
}

/// Whether p_x / p_m 2^{n_x - n_m} equals e^{x - m} for a max m: finite, and inside the range
/// where `exp_parts` is exact and clamped entries contribute 0.
#[inline(always)]
fn shift_exact<E: Elem>(m: E) -> bool {
    m >= E::EXT_X_MIN - E::EXP_UNDERFLOW && m * E::LOG2E <= E::EXT_N_LIMIT
}

/// 1 / s lane by lane.
#[inline(always)]
fn reciprocals<S: Simd, const V: usize>(s: &[S::V; V]) -> [S::V; V] {
    std::array::from_fn(|v| {
        let mut l = [S::E::ZERO; 16];
        S::to_lanes(s[v], &mut l);
        for x in l.iter_mut().take(S::LANES) {
            *x = S::E::ONE / *x;
        }
        from_lanes::<S>(&l)
    })
}

/// # Safety
/// `ctx.y` (if not null) must be valid for writes of the strip's columns of all n rows and
/// `ctx.lse` (if not null) for columns j .. j + width; nothing else may access them meanwhile.
#[inline(always)]
unsafe fn strip<S: Simd, const V: usize>(ctx: StripCtx<'_, S::E>, op: RowOp)
where
    S::E: Lanes,
{
    let StripCtx {
        x,
        y,
        lse,
        n,
        stride,
        j,
        width,
    } = ctx;
    let w = S::LANES;
    assert!(j + width <= stride && x.len() == n * stride && width <= V * w);
    let valid = |v: usize| width.saturating_sub(v * w).min(w);
    let px = x.as_ptr();
    // SAFETY (loads): row i, vector v reads columns j + v*w .. + valid(v) of row i, inside x by
    // the assert above. Stores go to the same offsets of y, valid by this function's contract.
    let load = |i: usize, v: usize, fill: S::E| unsafe {
        load_cols::<S>(px.add(i * stride + j + v * w), valid(v), fill)
    };
    let store = |i: usize, v: usize, r: S::V| unsafe {
        store_cols::<S>(y.add(i * stride + j + v * w), valid(v), r)
    };
    let write = |f: &dyn Fn(usize, S::V) -> S::V| {
        for i in 0..n {
            for v in 0..V {
                store(i, v, f(v, load(i, v, S::E::ZERO)));
            }
        }
    };
    let two_pass = lse.is_null()
        && !matches!(
            op,
            RowOp::Softmax(
                Algorithm::Online | Algorithm::ThreePassReload | Algorithm::ThreePassRecompute
            )
        );
    let mut redo = [false; 64];
    let mut any_redo = false;
    if two_pass || !lse.is_null() {
        let zero = S::splat(S::E::ZERO);
        let (mut m, mut e) = ([zero; V], [S::splat(e_init::<S::E>()); V]);
        for i in 0..n {
            for v in 0..V {
                let (p, k) = exp_parts::<S>(load(i, v, S::E::NEG_INFINITY));
                (m[v], e[v]) = merge_v::<S>(m[v], e[v], p, k);
            }
        }
        let mut ms = [[S::E::ZERO; 16]; V];
        let mut es = [[S::E::ZERO; 16]; V];
        let mut inv = [[S::E::ZERO; 16]; V];
        let mut lnm = [[S::E::ZERO; 16]; V];
        for v in 0..V {
            S::to_lanes(m[v], &mut ms[v]);
            S::to_lanes(e[v], &mut es[v]);
            for l in 0..valid(v) {
                let s = ExtSum {
                    m: ms[v][l],
                    e: es[v][l],
                };
                if !s.is_safe() {
                    redo[v * w + l] = true;
                    any_redo = true;
                }
                lnm[v][l] = S::E::from_f64(s.m.to_f64().ln());
                inv[v][l] = S::E::ONE / s.m;
                if !lse.is_null() {
                    // SAFETY: column j + v*w + l < j + width, owned by this task.
                    unsafe { *lse.add(j + v * w + l) = S::E::from_f64(s.ln()) };
                }
            }
        }
        if lse.is_null() {
            let inv_v: [S::V; V] = std::array::from_fn(|v| from_lanes::<S>(&inv[v]));
            let es_v: [S::V; V] = std::array::from_fn(|v| from_lanes::<S>(&es[v]));
            let lnm_v: [S::V; V] = std::array::from_fn(|v| from_lanes::<S>(&lnm[v]));
            if op == RowOp::LogSoftmax {
                write(&|v, xv| S::sub(S::reduce_ln2(xv, es_v[v]), lnm_v[v]));
            } else {
                write(&|v, xv| {
                    let (p, k) = exp_parts::<S>(xv);
                    S::ldexp(S::mul(p, inv_v[v]), S::sub(k, es_v[v]))
                });
            }
        }
    } else {
        // Max-subtraction algorithms: a max (or online) pass, then the sum, then the write.
        // e^{x - mx} is evaluated as p_x / p_m 2^{n_x - n_m} (see maxsub::with_shifted_exp);
        // lanes whose max is outside the range where that is exact go to the row path.
        let zero = S::splat(S::E::ZERO);
        let mut mx = [S::splat(S::E::NEG_INFINITY); V];
        let mut sum = [zero; V];
        let reload = op == RowOp::Softmax(Algorithm::ThreePassReload);
        let online = op == RowOp::Softmax(Algorithm::Online);
        if online {
            mx = [S::splat(S::E::LOWEST); V];
            for i in 0..n {
                for v in 0..V {
                    let xv = load(i, v, S::E::NEG_INFINITY);
                    let mn = S::max(mx[v], xv);
                    sum[v] = S::fma(
                        sum[v],
                        exp::<S>(S::sub(mx[v], mn)),
                        exp::<S>(S::sub(xv, mn)),
                    );
                    mx[v] = mn;
                }
            }
        } else {
            for i in 0..n {
                for v in 0..V {
                    mx[v] = S::max(mx[v], load(i, v, S::E::NEG_INFINITY));
                }
            }
        }
        let mut k = [[S::E::ZERO; 16]; V];
        let mut nm = [zero; V];
        for v in 0..V {
            let (pm, n_m) = exp_parts::<S>(mx[v]);
            nm[v] = n_m;
            let mut lm = [S::E::ZERO; 16];
            S::to_lanes(mx[v], &mut lm);
            S::to_lanes(pm, &mut k[v]);
            for l in 0..w {
                if l < valid(v) && !shift_exact(lm[l]) {
                    redo[v * w + l] = true;
                    any_redo = true;
                }
                k[v][l] = S::E::ONE / k[v][l];
            }
        }
        let kv: [S::V; V] = std::array::from_fn(|v| from_lanes::<S>(&k[v]));
        let term = |v: usize, xv: S::V| {
            let (p, e) = exp_parts::<S>(xv);
            S::ldexp(S::mul(p, kv[v]), S::sub(e, nm[v]))
        };
        if !online {
            for i in 0..n {
                for v in 0..V {
                    let t = term(v, load(i, v, S::E::NEG_INFINITY));
                    sum[v] = S::add(sum[v], t);
                    if reload {
                        store(i, v, t);
                    }
                }
            }
        }
        let inv = reciprocals::<S, V>(&sum);
        if reload {
            for i in 0..n {
                for v in 0..V {
                    // SAFETY: reads back what this strip stored above.
                    let p = unsafe { y.add(i * stride + j + v * w) };
                    let t = unsafe { load_cols::<S>(p, valid(v), S::E::ZERO) };
                    store(i, v, S::mul(t, inv[v]));
                }
            }
        } else {
            write(&|v, xv| S::mul(term(v, xv), inv[v]));
        }
    }
    if any_redo {
        // SAFETY: forwarded contract.
        unsafe { redo_columns::<S>(ctx, &redo[..width], op) };
    }
}

/// Recomputes the flagged columns through the exact row path (gather, compute, scatter).
///
/// # Safety
/// As for `strip`.
#[inline(always)]
unsafe fn redo_columns<S: Simd>(ctx: StripCtx<'_, S::E>, redo: &[bool], op: RowOp)
where
    S::E: Lanes,
{
    let StripCtx {
        x,
        y,
        lse,
        n,
        stride,
        j,
        ..
    } = ctx;
    let mut col = vec![S::E::ZERO; n];
    let mut out = vec![S::E::ZERO; n];
    for (c, _) in redo.iter().enumerate().filter(|(_, &r)| r) {
        for (i, v) in col.iter_mut().enumerate() {
            *v = x[i * stride + j + c];
        }
        if !lse.is_null() {
            // SAFETY: column j + c is owned by this task.
            unsafe { *lse.add(j + c) = S::E::from_f64(logsumexp_row::<S>(&col)) };
            continue;
        }
        match op {
            RowOp::LogSoftmax => log_softmax_row::<S>(&col, &mut out),
            RowOp::Softmax(_) => softmax_row::<S>(&col, &mut out, Algorithm::ThreePassRecompute),
        }
        for (i, v) in out.iter().enumerate() {
            // SAFETY: element (i, j + c) is owned by this task.
            unsafe { *y.add(i * stride + j + c) = *v };
        }
    }
}
