//! Rows in lanes: gating for the plain configuration (no bias, activation or groups) with one
//! row per vector lane. Expert j of S::LANES rows arrives by one gather, and each lane keeps its
//! top k (value, id) pairs sorted in registers by branch-free compare-and-swap, so a row costs
//! about 4 k E / LANES blends and no mispredicted branch (row-at-a-time selection spends most
//! of its time on per-row reductions and branches when E is small). Weights then run on the
//! same lanes with the vector exp. Ids ride in float lanes (exact below 2^24).
//!
//! The vertical layout follows the SIMD top-k sorting networks used for GPU/CPU MoE routers
//! (one selection per lane); the insertion order (descending id, >=) is what makes ties go to
//! the lower expert id without an id comparison.

use super::options::{GateOptions, Order, Score};
use super::topk::sort_by_weight;
use crate::simd::exp::exp;
use crate::simd::{Elem, Simd};

/// Largest k kept in registers.
pub const MAX_K: usize = 8;

/// Whether `opts` (with `bias` absent) can take this path: selection by logits, and weights
/// from the selected logits only (softmax_topk without renormalisation needs the whole row's
/// logsumexp, which the row path has).
pub fn eligible(opts: &GateOptions, has_bias: bool, experts: usize, lanes: usize) -> bool {
    !has_bias
        && opts.activation.is_none()
        && opts.n_group == 1
        && opts.k <= MAX_K
        && experts < (1 << 24)
        && experts.saturating_mul(lanes) < (1 << 30)
        && !(opts.score == Score::Softmax && opts.order == Order::SoftmaxTopk && !opts.renormalize)
}

/// Gates the S::LANES rows starting at `first` (all inside `xs`, rows of `experts`) into `w` and
/// `ids` (k per row). Returns false, writing nothing, when a row holds NaN or +inf or fewer than
/// k finite logits: the row path then handles the block (and reports errors by row index).
#[inline(always)]
pub fn gate_block<S: Simd, const K: usize>(
    xs: &[S::E],
    experts: usize,
    first: usize,
    opts: &GateOptions,
    w: &mut [S::E],
    ids: &mut [i64],
) -> bool {
    let (lanes, e) = (S::LANES, experts);
    debug_assert!((first + lanes) * e <= xs.len() && w.len() == lanes * K);
    let full = if lanes >= 64 {
        u64::MAX
    } else {
        (1u64 << lanes) - 1
    };
    let neg = S::splat(S::E::NEG_INFINITY);
    let inf = S::splat(S::E::INFINITY);
    let mut v = [neg; K];
    let mut id = [S::splat(S::E::ZERO); K];
    let mut bad = 0u64;
    let base = xs[first * e..].as_ptr();
    // Experts in descending id order, entering at the first level whose value they reach
    // (>=): each newcomer has the lowest id so far, so it wins ties, and an element pushed down
    // ranked above the next level already, so it moves past it: the levels stay sorted by
    // (value descending, id ascending).
    for j in (0..e).rev() {
        // SAFETY: lane l reads xs[(first + l) * e + j], inside xs by the debug_assert's bound.
        let x = unsafe { S::load_strided(base.add(j), e) };
        bad |= !S::eq_mask(x, x) | S::eq_mask(x, inf);
        let (mut cx, mut ci) = (x, S::splat(S::E::from_f64(j as f64)));
        for l in 0..K {
            let (vl, il) = (v[l], id[l]);
            v[l] = S::select_ge(cx, vl, cx, vl);
            id[l] = S::select_ge(cx, vl, ci, il);
            ci = S::select_ge(cx, vl, il, ci);
            cx = S::select_ge(cx, vl, vl, cx);
        }
    }
    // A lane with fewer than K finite logits still holds a -inf placeholder: the row path
    // selects those (-inf experts in id order) and reports all -inf softmax rows.
    bad |= S::eq_mask(v[K - 1], neg);
    if bad & full != 0 {
        return false;
    }
    let inv_tau = S::splat(S::E::from_f64(1.0 / opts.temperature));
    let one = S::splat(S::E::ONE);
    let mut wt = [S::splat(S::E::ZERO); K];
    let mut sum = S::splat(S::E::ZERO);
    for l in 0..K {
        wt[l] = match opts.score {
            // e^((x_l - x_0) / tau): softmax over the selected, equal to the renormalised
            // softmax_topk weights (the row's normaliser cancels).
            Score::Softmax => exp::<S>(S::mul(S::sub(v[l], v[0]), inv_tau)),
            Score::Sigmoid => S::div(
                one,
                S::add(
                    one,
                    exp::<S>(S::mul(S::sub(S::splat(S::E::ZERO), v[l]), inv_tau)),
                ),
            ),
        };
        sum = S::add(sum, wt[l]);
    }
    if opts.score == Score::Softmax || opts.renormalize {
        let zero = S::splat(S::E::ZERO);
        for x in wt.iter_mut() {
            *x = S::select_ge(zero, sum, *x, S::div(*x, sum));
        }
    }
    let mut lw = [S::E::ZERO; 64];
    let mut li = [S::E::ZERO; 64];
    for l in 0..K {
        S::to_lanes(wt[l], &mut lw);
        S::to_lanes(id[l], &mut li);
        for r in 0..lanes {
            w[r * K + l] = lw[r];
            ids[r * K + l] = li[r].to_f64() as i64;
        }
    }
    // The vector exp need not be monotone to the last bit, and rounding can make different
    // logits' weights equal: restore (weight descending, id ascending) per row.
    for r in 0..lanes {
        sort_by_weight(&mut w[r * K..(r + 1) * K], &mut ids[r * K..(r + 1) * K]);
    }
    true
}
