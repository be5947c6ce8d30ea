//! Reductions along a non-last axis. A C-contiguous array is viewed as (outer, n, inner) and the
//! reduction runs down the n rows of each (n, inner) block. Rather than transposing, each block
//! is processed in strips of columns, one vector per LANES columns: every row step is a unit-stride
//! vector load, and each lane keeps its own running reduction (no horizontal work at all).
//! Strips are 4 vectors wide for instruction-level parallelism, then 1 vector for the remainder
//! (masked for the last partial vector).

// `v` in the strip loops is a vector position in the strip (passed to the loads and stores), not
// only an index into the per-vector arrays.
#![allow(clippy::needless_range_loop)]

use super::extexp::{e_init, ExtSum};
use super::maxsub::{online_step, rescale_arg_min};
use super::rows::{log_softmax_row, logsumexp_row, softmax_row, Op};
use super::vmap::{ExtLog, ExtScale, VFn};
use super::Algorithm;
use crate::simd::exp::{exp_parts_on, ExpPoly};
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
    pub op: Op,
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

impl<E: Elem> StripCtx<'_, E> {
    /// Valid columns of vector v of the strip (0 when v is past the strip).
    #[inline(always)]
    fn valid(&self, v: usize, w: usize) -> usize {
        self.width.saturating_sub(v * w).min(w)
    }

    #[inline(always)]
    fn at(&self, i: usize, v: usize, w: usize) -> usize {
        i * self.stride + self.j + v * w
    }

    /// Row i, vector v of the strip, padded with `fill`.
    #[inline(always)]
    fn load<S: Simd<E = E>>(&self, i: usize, v: usize, fill: E) -> S::V {
        let w = S::LANES;
        // SAFETY: `strip` asserted j + width <= stride and x.len() == n * stride, and i < n.
        unsafe {
            load_cols::<S>(
                self.x.as_ptr().add(self.at(i, v, w)),
                self.valid(v, w),
                fill,
            )
        }
    }

    /// # Safety
    /// As for `strip`: y is valid for this strip's columns.
    #[inline(always)]
    unsafe fn load_y<S: Simd<E = E>>(&self, i: usize, v: usize) -> S::V {
        let w = S::LANES;
        unsafe { load_cols::<S>(self.y.add(self.at(i, v, w)), self.valid(v, w), E::ZERO) }
    }

    /// # Safety
    /// As for `strip`: y is valid for this strip's columns.
    #[inline(always)]
    unsafe fn store<S: Simd<E = E>>(&self, i: usize, v: usize, r: S::V) {
        let w = S::LANES;
        unsafe { store_cols::<S>(self.y.add(self.at(i, v, w)), self.valid(v, w), r) }
    }

    /// y = f(x) over the strip.
    ///
    /// # Safety
    /// As for `strip`.
    #[inline(always)]
    unsafe fn write<S: Simd<E = E>, F: VFn<S>, const V: usize>(&self, f: F) {
        for i in 0..self.n {
            for v in 0..V {
                let r = f.call(v, self.load::<S>(i, v, E::ZERO));
                unsafe { self.store::<S>(i, v, r) };
            }
        }
    }
}

/// Lanes of V vectors as a 2-D array.
type LaneBuf<E, const V: usize> = [[E; 16]; V];

#[inline(always)]
fn lanes<S: Simd, const V: usize>(v: &[S::V; V]) -> LaneBuf<S::E, V> {
    let mut l = [[S::E::ZERO; 16]; V];
    for (k, x) in v.iter().enumerate() {
        S::to_lanes(*x, &mut l[k]);
    }
    l
}

#[inline(always)]
fn vectors<S: Simd, const V: usize>(l: &LaneBuf<S::E, V>) -> [S::V; V] {
    std::array::from_fn(|v| from_lanes::<S>(&l[v]))
}

/// Whether p_x / p_m 2^{n_x - n_m} equals e^{x - m} for a max m: finite, and inside the range
/// where `exp_parts` is exact and clamped entries contribute 0.
#[inline(always)]
fn shift_exact<E: Elem>(m: E) -> bool {
    m >= E::EXT_X_MIN - E::EXP_UNDERFLOW && m * E::LOG2E <= E::EXT_N_LIMIT
}

/// # Safety
/// `ctx.y` (if not null) must be valid for writes of the strip's columns of all n rows and
/// `ctx.lse` (if not null) for columns j .. j + width; nothing else may access them meanwhile.
#[inline(always)]
unsafe fn strip<S: Simd, const V: usize>(ctx: StripCtx<'_, S::E>, op: Op)
where
    S::E: Lanes,
{
    let w = S::LANES;
    assert!(ctx.j + ctx.width <= ctx.stride && ctx.x.len() == ctx.n * ctx.stride);
    assert!(ctx.width <= V * w && V * w <= 64);
    let mut redo = [false; 64];
    let max_based = matches!(
        op,
        Op::Softmax(Algorithm::Online | Algorithm::ThreePassReload | Algorithm::ThreePassRecompute)
    ) && ctx.lse.is_null();
    if max_based {
        unsafe { strip_max_based::<S, V>(ctx, op, &mut redo) };
    } else {
        unsafe { strip_two_pass::<S, V>(ctx, op, &mut redo) };
    }
    if redo.iter().any(|&r| r) {
        // SAFETY: forwarded contract.
        unsafe { redo_columns::<S>(ctx, &redo[..ctx.width], op) };
    }
}

/// Two-pass softmax, log-softmax and logsumexp down a strip.
#[inline(always)]
unsafe fn strip_two_pass<S: Simd, const V: usize>(
    ctx: StripCtx<'_, S::E>,
    op: Op,
    redo: &mut [bool; 64],
) where
    S::E: Lanes,
{
    let w = S::LANES;
    let poly = ExpPoly::<S>::softmax(S::splat(S::E::ONE));
    let zero = S::splat(S::E::ZERO);
    let (mut m, mut e, mut c) = ([zero; V], [S::splat(e_init::<S::E>()); V], [zero; V]);
    for i in 0..ctx.n {
        for v in 0..V {
            let (p, k) = exp_parts_on::<S>(ctx.load::<S>(i, v, S::E::NEG_INFINITY), &poly);
            // Each lane is one column: a chain of n additions, compensated as the row path's
            // `ext_sum` is (Kahan, the compensation rescaled with the sum); uncompensated, f32
            // columns of 65536 broke issue 15's 2e-6 bound (benches/README.md).
            let en = S::max(e[v], k);
            let d = S::sub(e[v], en);
            let (ms, cs) = (S::ldexp_ftz(m[v], d), S::ldexp_ftz(c[v], d));
            let y = S::sub(S::ldexp_ftz(p, S::sub(k, en)), cs);
            m[v] = S::add(ms, y);
            c[v] = S::sub(S::sub(m[v], ms), y);
            e[v] = en;
        }
    }
    for v in 0..V {
        m[v] = S::sub(m[v], c[v]);
    }
    let (ms, es) = (lanes::<S, V>(&m), lanes::<S, V>(&e));
    let mut inv = [[S::E::ZERO; 16]; V];
    let mut lnm = [[S::E::ZERO; 16]; V];
    for v in 0..V {
        for l in 0..ctx.valid(v, w) {
            let s = ExtSum {
                m: ms[v][l],
                e: es[v][l],
            };
            redo[v * w + l] = !s.is_safe();
            lnm[v][l] = S::E::from_f64(s.m.to_f64().ln());
            inv[v][l] = S::E::ONE / s.m;
            if !ctx.lse.is_null() {
                // SAFETY: column j + v*w + l < j + width, owned by this task.
                unsafe { *ctx.lse.add(ctx.j + v * w + l) = S::E::from_f64(s.ln()) };
            }
        }
    }
    if !ctx.lse.is_null() {
        return;
    }
    let e = vectors::<S, V>(&es);
    // SAFETY: forwarded contract.
    unsafe {
        if op == Op::LogSoftmax {
            ctx.write::<S, _, V>(ExtLog::<S, V> {
                e,
                ln_m: vectors::<S, V>(&lnm),
            });
        } else {
            ctx.write::<S, _, V>(ExtScale::<S, V> {
                poly,
                inv_m: vectors::<S, V>(&inv),
                e,
            });
        }
    }
}

/// The max-subtraction algorithms down a strip: a max (or online) pass, the sum, the write.
/// e^{x - mx} is evaluated as p_x / p_m 2^{n_x - n_m} (see `vmap::needs_shift`); lanes whose
/// max is outside the range where that is exact go to the row path.
#[inline(always)]
unsafe fn strip_max_based<S: Simd, const V: usize>(
    ctx: StripCtx<'_, S::E>,
    op: Op,
    redo: &mut [bool; 64],
) where
    S::E: Lanes,
{
    let w = S::LANES;
    let poly = ExpPoly::<S>::softmax(S::splat(S::E::ONE));
    let zero = S::splat(S::E::ZERO);
    // Kahan-compensated sums, one chain per column (see `strip_two_pass`).
    let (mut sum, mut comp) = ([zero; V], [zero; V]);
    let online = op == Op::Softmax(Algorithm::Online);
    let arg_lo = rescale_arg_min::<S>();
    let reload = op == Op::Softmax(Algorithm::ThreePassReload);
    let mut mx = [S::splat(if online {
        S::E::LOWEST
    } else {
        S::E::NEG_INFINITY
    }); V];
    for i in 0..ctx.n {
        for v in 0..V {
            let xv = ctx.load::<S>(i, v, S::E::NEG_INFINITY);
            if online {
                let mut acc = (mx[v], sum[v], comp[v]);
                online_step::<S>(&mut acc, xv, &poly, arg_lo);
                (mx[v], sum[v], comp[v]) = acc;
            } else {
                mx[v] = S::max(mx[v], xv);
            }
        }
    }
    let mut nm = [zero; V];
    let mut pm = [zero; V];
    for v in 0..V {
        (pm[v], nm[v]) = exp_parts_on::<S>(mx[v], &poly);
    }
    let lm = lanes::<S, V>(&mx);
    for v in 0..V {
        for l in 0..ctx.valid(v, w) {
            redo[v * w + l] = !shift_exact(lm[v][l]);
        }
    }
    let mut k = lanes::<S, V>(&pm);
    k.iter_mut().flatten().for_each(|x| *x = S::E::ONE / *x);
    let term = ExtScale::<S, V> {
        poly,
        inv_m: vectors::<S, V>(&k),
        e: nm,
    };
    if !online {
        for i in 0..ctx.n {
            for v in 0..V {
                let t = term.call(v, ctx.load::<S>(i, v, S::E::NEG_INFINITY));
                let (s, y) = (sum[v], S::sub(t, comp[v]));
                sum[v] = S::add(s, y);
                comp[v] = S::sub(S::sub(sum[v], s), y);
                if reload {
                    // SAFETY: forwarded contract.
                    unsafe { ctx.store::<S>(i, v, t) };
                }
            }
        }
    }
    for v in 0..V {
        sum[v] = S::sub(sum[v], comp[v]);
    }
    let mut inv = lanes::<S, V>(&sum);
    // A NaN sum (a NaN or +inf entry; the running max may have moved past it, as x86's max
    // drops a NaN first operand): the row path makes the column NaN.
    for v in 0..V {
        for l in 0..ctx.valid(v, w) {
            redo[v * w + l] |= inv[v][l].is_nan();
        }
    }
    inv.iter_mut().flatten().for_each(|x| *x = S::E::ONE / *x);
    let inv = vectors::<S, V>(&inv);
    // SAFETY: forwarded contract; the reload pass reads back what it stored above.
    unsafe {
        if reload {
            for i in 0..ctx.n {
                for v in 0..V {
                    let t = ctx.load_y::<S>(i, v);
                    ctx.store::<S>(i, v, S::mul(t, inv[v]));
                }
            }
        } else {
            for v in 0..V {
                k[v].iter_mut()
                    .zip(lanes::<S, 1>(&[inv[v]])[0])
                    .for_each(|(a, b)| *a = *a * b);
            }
            ctx.write::<S, _, V>(ExtScale::<S, V> {
                poly,
                inv_m: vectors::<S, V>(&k),
                e: nm,
            });
        }
    }
}

/// Recomputes the flagged columns through the exact row path (gather, compute, scatter).
///
/// # Safety
/// As for `strip`.
#[inline(always)]
unsafe fn redo_columns<S: Simd>(ctx: StripCtx<'_, S::E>, redo: &[bool], op: Op)
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
            Op::LogSoftmax => log_softmax_row::<S>(&col, &mut out, false),
            Op::Softmax(_) => {
                softmax_row::<S>(&col, &mut out, Algorithm::ThreePassRecompute, false)
            }
        }
        for (i, v) in out.iter().enumerate() {
            // SAFETY: element (i, j + c) is owned by this task.
            unsafe { *y.add(i * stride + j + c) = *v };
        }
    }
}

/// Loads the `valid` (1..=LANES) columns at p, padding with `fill`.
///
/// # Safety
/// p[..valid] must be readable.
#[inline(always)]
unsafe fn load_cols<S: Simd>(p: *const S::E, valid: usize, fill: S::E) -> S::V {
    unsafe {
        if valid >= S::LANES {
            S::load(p)
        } else {
            S::load_partial(p, valid, fill)
        }
    }
}

/// # Safety
/// p[..valid] must be writable.
#[inline(always)]
unsafe fn store_cols<S: Simd>(p: *mut S::E, valid: usize, v: S::V) {
    unsafe {
        if valid >= S::LANES {
            S::store(p, v)
        } else {
            S::store_partial(p, valid, v)
        }
    }
}

/// Per-lane scalars as a vector (through memory: once per strip, not per element).
#[inline(always)]
fn from_lanes<S: Simd>(l: &[S::E; 16]) -> S::V {
    // SAFETY: the array has 16 >= LANES elements.
    unsafe { S::load(l.as_ptr()) }
}
