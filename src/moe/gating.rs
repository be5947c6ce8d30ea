//! Top-k softmax/sigmoid gating for mixture-of-experts routers. Plain configurations run 16
//! rows at a time in vector lanes (`vertical`); the rest here, one row (token) at a time:
//! scores, optional group limiting, selection without sorting (vector max rounds), weights in
//! double precision, then the k results ordered by weight (ties to the lower expert id).
//!
//! Selection keys. Without `bias`, activation or "sum_top2" groups the experts are chosen by
//! their logits: softmax and sigmoid are increasing, so this is the same choice as by score,
//! minus the ties that rounding the scores would create. With an activation, by
//! act(logits) / tau (saturation makes real ties). With `bias` (DeepSeek-V3's aux-loss-free
//! balancing) or groups ranked by their two best scores, by score (+ bias), where score is the
//! softmax probability (softmax_topk), the scaled logit (topk_softmax) or the sigmoid; the bias
//! never enters the weights.

use super::options::{Activation, GateOptions, GroupScore, Order, Score};
use super::topk::{scan_row, sort_by_weight, top_k, top_k_lanes};
use super::vertical;
use crate::error::{Error, Result};
use crate::simd::expmap::{exp_affine_on, sigmoid_on, tanh_on};
use crate::simd::{Elem, Kernel, Lanes, Simd};
use crate::softmax::logsumexp_on;

/// Up to this k, selection by vector max rounds (`top_k_lanes`) beats the insertion scan.
const ROUNDS_MAX_K: usize = 16;

/// Per-task buffers, allocated once per chunk of rows.
pub struct Scratch<E> {
    x: Vec<E>,
    keys: Vec<E>,
    gkeys: Vec<E>,
    ids: Vec<usize>,
    vals: Vec<E>,
    gids: Vec<usize>,
    gkeep: Vec<bool>,
    w: Vec<f64>,
}

impl<E: Elem> Scratch<E> {
    pub fn new(experts: usize, opts: &GateOptions) -> Self {
        Scratch {
            x: vec![E::ZERO; experts],
            keys: vec![E::ZERO; experts],
            gkeys: vec![E::ZERO; opts.n_group],
            ids: vec![0; opts.k.max(opts.topk_group).max(2)],
            vals: vec![E::ZERO; opts.k.max(opts.topk_group).max(2)],
            gids: vec![0; opts.topk_group],
            gkeep: vec![false; opts.n_group],
            w: vec![0.0; opts.k],
        }
    }
}

/// act(l) / tau in double precision (the weights' input).
#[inline(always)]
fn scaled(l: f64, act: Option<Activation>, tau: f64) -> f64 {
    let a = match act {
        None => l,
        Some(Activation::Sigmoid) => 1.0 / (1.0 + (-l).exp()),
        Some(Activation::Tanh) => l.tanh(),
    };
    a / tau
}

/// The two largest values (no NaN): eight independent branch-free (max, second) pairs that
/// vectorise, merged at the end. A branchy insertion mispredicted on random scores and a single
/// pair is a serial max chain.
#[inline(always)]
fn top_two<E: Elem>(x: &[E]) -> (E, E) {
    let mx = |a: E, b: E| if a > b { a } else { b };
    let mn = |a: E, b: E| if a < b { a } else { b };
    let (mut m1, mut m2) = ([E::NEG_INFINITY; 8], [E::NEG_INFINITY; 8]);
    let chunks = x.chunks_exact(8);
    for (l, &v) in chunks.remainder().iter().enumerate() {
        m2[l] = mx(m2[l], mn(v, m1[l]));
        m1[l] = mx(m1[l], v);
    }
    for c in chunks {
        for l in 0..8 {
            m2[l] = mx(m2[l], mn(c[l], m1[l]));
            m1[l] = mx(m1[l], c[l]);
        }
    }
    let (mut a1, mut a2) = (m1[0], m2[0]);
    for l in 1..8 {
        a2 = mx(mx(a2, m2[l]), mn(a1, m1[l]));
        a1 = mx(a1, m1[l]);
    }
    (a1, a2)
}

/// Keeps the `topk_group` best groups of `keys` (consecutive blocks) and sets the rest to -inf.
#[inline(always)]
fn limit_groups<E: Elem>(keys: &mut [E], opts: &GateOptions, sc: &mut Scratch<E>) {
    let size = keys.len() / opts.n_group;
    for (g, block) in keys.chunks_exact(size).enumerate() {
        let (m1, m2) = top_two(block);
        sc.gkeys[g] = match opts.group_score {
            GroupScore::Max => m1,
            GroupScore::SumTop2 => m1 + m2,
        };
    }
    top_k(&sc.gkeys, opts.topk_group, &mut sc.gids, &mut sc.vals);
    sc.gkeep.fill(false);
    for &g in &sc.gids[..opts.topk_group] {
        sc.gkeep[g] = true;
    }
    for (block, &keep) in keys.chunks_exact_mut(size).zip(sc.gkeep.iter()) {
        if !keep {
            block.fill(E::NEG_INFINITY);
        }
    }
}

/// A task's rows (`w` / `ids` hold k entries per row, `first` is its first row's index), run
/// inside one SIMD dispatch so the per-row helpers, inlined here, are compiled for the ISA's
/// vector width (outside they would vectorise for baseline SSE2 only).
pub struct GateRows<'a, E> {
    pub xs: &'a [E],
    pub experts: usize,
    pub bias: Option<&'a [E]>,
    pub opts: &'a GateOptions,
    pub w: &'a mut [E],
    pub ids: &'a mut [i64],
    pub first: usize,
}

impl<E: Lanes> Kernel<E> for GateRows<'_, E> {
    type Output = Result<()>;
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) -> Result<()> {
        let (e, k) = (self.experts, self.opts.k);
        let mut sc = Scratch::new(e, self.opts);
        let lanes = S::LANES;
        let vertical = vertical::eligible(self.opts, self.bias.is_some(), e, lanes);
        let block = if vertical { lanes } else { usize::MAX };
        let rows_here = self.w.len() / k;
        let mut r = 0;
        while r < rows_here {
            let n = block.min(rows_here - r);
            let (wb, ib) = (
                &mut self.w[r * k..(r + n) * k],
                &mut self.ids[r * k..(r + n) * k],
            );
            let first = self.first + r;
            if n == lanes && vertical && gate_block::<S>(self.xs, e, first, self.opts, wb, ib) {
                r += n;
                continue;
            }
            // The row path: the tail of the task, or a block the lanes declined.
            let rows = wb.chunks_exact_mut(k).zip(ib.chunks_exact_mut(k));
            for (j, (wr, ir)) in rows.enumerate() {
                let t = first + j;
                let row = &self.xs[t * e..(t + 1) * e];
                gate_row::<E, S>(row, self.bias, self.opts, &mut sc, wr, ir, t)?;
            }
            r += n;
        }
        Ok(())
    }
}

/// `vertical::gate_block` with K fixed at compile time (the top-k lives in registers).
#[inline(always)]
fn gate_block<S: Simd>(
    xs: &[S::E],
    e: usize,
    first: usize,
    opts: &GateOptions,
    w: &mut [S::E],
    ids: &mut [i64],
) -> bool {
    match opts.k {
        1 => vertical::gate_block::<S, 1>(xs, e, first, opts, w, ids),
        2 => vertical::gate_block::<S, 2>(xs, e, first, opts, w, ids),
        3 => vertical::gate_block::<S, 3>(xs, e, first, opts, w, ids),
        4 => vertical::gate_block::<S, 4>(xs, e, first, opts, w, ids),
        5 => vertical::gate_block::<S, 5>(xs, e, first, opts, w, ids),
        6 => vertical::gate_block::<S, 6>(xs, e, first, opts, w, ids),
        7 => vertical::gate_block::<S, 7>(xs, e, first, opts, w, ids),
        _ => vertical::gate_block::<S, 8>(xs, e, first, opts, w, ids),
    }
}

/// Gates one row of logits into `w_out` / `i_out` (k each). `t` names the row in errors.
#[inline(always)]
fn gate_row<E: Lanes, S: Simd<E = E>>(
    row: &[E],
    bias: Option<&[E]>,
    opts: &GateOptions,
    sc: &mut Scratch<E>,
    w_out: &mut [E],
    i_out: &mut [i64],
    t: usize,
) -> Result<()> {
    let (ok, row_max) = scan_row::<S>(row);
    if !ok {
        return Err(Error::Invalid(format!(
            "top_k_gating: logits row {t} contains NaN or +inf"
        )));
    }
    let softmax = opts.score == Score::Softmax;
    if softmax && opts.activation.is_none() && row_max == E::NEG_INFINITY {
        return Err(Error::Invalid(format!(
            "top_k_gating: logits row {t} has no finite entry (its softmax is undefined)"
        )));
    }
    let (tau, k) = (opts.temperature, opts.k);
    let grouped = opts.n_group > 1;
    // Selection by score (+ bias): with a bias, and for groups ranked by the sum of their top
    // two (a sum of scores is not a sum of logits; max is, the scores being increasing).
    let by_score = bias.is_some() || (grouped && opts.group_score == GroupScore::SumTop2);
    let plain = !by_score && opts.activation.is_none();
    let need_lse = softmax && opts.order == Order::SoftmaxTopk && (!opts.renormalize || by_score);
    // x = act(l) / tau, materialised only when the keys or the full-row logsumexp need it.
    let x_ready = !plain || (need_lse && tau != 1.0);
    // Softmax scores of raw logits under a temperature are taken of (l - max) / tau: l / tau
    // itself overflows for large logits and a small tau (1e308 / 1e-300), and a softmax (and
    // every ordering of x + bias or of group scores) is unchanged by a shift of the row.
    let base = if softmax && opts.activation.is_none() && tau != 1.0 {
        row_max
    } else {
        E::ZERO
    };
    if x_ready {
        let te = E::from_f64(tau);
        match opts.activation {
            None => sc.x.copy_from_slice(row),
            Some(Activation::Sigmoid) => sigmoid_on::<S>(row, &mut sc.x, E::ONE),
            Some(Activation::Tanh) => tanh_on::<S>(row, &mut sc.x),
        }
        if tau != 1.0 {
            sc.x.iter_mut().for_each(|v| *v = (*v - base) / te);
        }
    }
    let lse = if need_lse {
        logsumexp_on::<S>(if x_ready { &sc.x[..] } else { row })
    } else {
        0.0
    };
    if by_score {
        match (opts.score, opts.order) {
            (Score::Sigmoid, _) => sigmoid_on::<S>(&sc.x, &mut sc.keys, E::ONE),
            (Score::Softmax, Order::SoftmaxTopk) => {
                exp_affine_on::<S>(&sc.x, &mut sc.keys, E::ONE, E::from_f64(-lse))
            }
            (Score::Softmax, Order::TopkSoftmax) => sc.keys.copy_from_slice(&sc.x),
        }
        if let Some(b) = bias {
            sc.keys
                .iter_mut()
                .zip(b)
                .for_each(|(kv, &bv)| *kv = *kv + bv);
        }
    } else if grouped {
        sc.keys.copy_from_slice(if plain { row } else { &sc.x });
    }
    if grouped {
        // limit_groups needs the keys mutably next to the other buffers.
        let mut kb = std::mem::take(&mut sc.keys);
        limit_groups(&mut kb, opts, sc);
        sc.keys = kb;
    }
    let keys: &[E] = if by_score || grouped {
        &sc.keys
    } else if plain {
        row
    } else {
        &sc.x
    };
    if k > ROUNDS_MAX_K || !top_k_lanes::<S>(keys, k, &mut sc.ids, &mut sc.vals) {
        top_k(keys, k, &mut sc.ids, &mut sc.vals);
    }
    let ids = &mut sc.ids[..k];
    let w = &mut sc.w[..k];
    // A selected key of -inf (a -inf logit, or an expert of a dropped group filling k) gets
    // weight 0 and stays out of the normalisation.
    let live = |s: usize| sc.vals[s] != E::NEG_INFINITY;
    for (wi, &i) in w.iter_mut().zip(ids.iter()) {
        *wi = scaled(row[i].to_f64() - base.to_f64(), opts.activation, tau);
    }
    // Softmax weights are e^(x_i - shift): shift = the row's logsumexp (softmax_topk, not
    // renormalised) or the selected max (softmax over the selected, or the renormalised
    // softmax_topk weights p_i / sum p_j = e^(x_i - m) / sum e^(x_j - m): the row's normaliser
    // cancels). k libm calls: a vector exp on the k gathered values measured slower.
    let m = (0..k)
        .filter(|&s| live(s))
        .fold(f64::NEG_INFINITY, |a, s| a.max(w[s]));
    let shift = if need_lse && !opts.renormalize {
        lse
    } else {
        m
    };
    for (s, v) in w.iter_mut().enumerate() {
        *v = if !live(s) || (softmax && shift == f64::NEG_INFINITY) {
            0.0
        } else if softmax {
            f64::exp(*v - shift)
        } else {
            1.0 / (1.0 + f64::exp(-*v))
        };
    }
    // Softmax weights are normalised except softmax_topk's plain probabilities.
    let normalise = if softmax {
        opts.renormalize || !need_lse
    } else {
        opts.renormalize
    };
    let s: f64 = w.iter().sum();
    if normalise && s > 0.0 {
        w.iter_mut().for_each(|v| *v /= s);
    }
    // Round to E first, then order: ties are judged on the weights returned.
    w.iter_mut().for_each(|v| *v = E::from_f64(*v).to_f64());
    sort_by_weight(w, ids);
    for ((wo, io), (&wv, &iv)) in w_out
        .iter_mut()
        .zip(i_out.iter_mut())
        .zip(w.iter().zip(ids.iter()))
    {
        *wo = E::from_f64(wv);
        *io = iv as i64;
    }
    Ok(())
}
