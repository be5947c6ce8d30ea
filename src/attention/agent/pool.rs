//! Agent attention's pooling of agents from q, and its additive biases broadcast per head.

use crate::attention::heads::{head_view, Contig};
use crate::error::{Error, Result};
use crate::simd::Elem;
use ndarray::{ArrayD, ArrayView2, ArrayViewD, IxDyn};

/// Most agents `agent_pool` makes.
const MAX_AGENTS: usize = 1 << 20;

/// The [start, end) of adaptive pooling bin i of `out` bins over `len` (PyTorch's
/// adaptive_avg_pool: floor(i len / out) .. ceil((i + 1) len / out)).
fn bin(i: usize, out: usize, len: usize) -> (usize, usize) {
    let (i, out, len) = (i as u128, out as u128, len as u128);
    (
        (i * len / out) as usize,
        ((i + 1) * len).div_ceil(out) as usize,
    )
}

/// Adaptive average pooling of the tokens of x (..., n, d) to num_agents tokens: over the
/// sequence (1-D bins), or with grid = (h, w) over the h x w token grid (row-major) to a
/// p x p grid, p = sqrt(num_agents) (the official `nn.AdaptiveAvgPool2d((p, p))`).
pub fn agent_pool<E: Elem>(
    x: ArrayViewD<'_, E>,
    num_agents: usize,
    grid: Option<(usize, usize)>,
) -> Result<ArrayD<E>> {
    const F: &str = "agent_pool";
    let nd = x.ndim();
    if nd < 2 {
        return Err(Error::Invalid(format!(
            "{F}: x must be (..., n, d), got shape {:?}",
            x.shape()
        )));
    }
    let (n, d) = (x.shape()[nd - 2], x.shape()[nd - 1]);
    // Bins, not memory, bound this: beyond 2^20 agents is no pooling anyone asks for, and
    // a huge count must be an error, not a loop over it or an allocation failure.
    if num_agents == 0 || num_agents > MAX_AGENTS {
        return Err(Error::Invalid(format!(
            "{F}: num_agents must be in [1, {MAX_AGENTS}], got {num_agents}"
        )));
    }
    if n == 0 {
        return Err(Error::Invalid(format!(
            "{F}: x needs at least one token (n >= 1)"
        )));
    }
    // Each agent: a rectangle of rows (r0..r1) x columns (c0..c1) of the grid (one row of n
    // columns for 1-D pooling).
    let (rows, cols, p) = match grid {
        None => (1, n, None),
        Some((h, w)) => {
            if h.checked_mul(w) != Some(n) {
                return Err(Error::Invalid(format!(
                    "{F}: grid {h} x {w} must hold the n = {n} tokens"
                )));
            }
            let p = num_agents.isqrt();
            if p * p != num_agents {
                return Err(Error::Invalid(format!(
                    "{F}: a 2-D grid pools to a p x p grid: num_agents must be a perfect square, got {num_agents}"
                )));
            }
            (h, w, Some(p))
        }
    };
    let rects: Vec<(usize, usize, usize, usize)> = match p {
        None => (0..num_agents)
            .map(|i| {
                let (c0, c1) = bin(i, num_agents, n);
                (0, 1, c0, c1)
            })
            .collect(),
        Some(p) => (0..p * p)
            .map(|a| {
                let (r0, r1) = bin(a / p, p, rows);
                let (c0, c1) = bin(a % p, p, cols);
                (r0, r1, c0, c1)
            })
            .collect(),
    };
    let batch: usize = x.shape()[..nd - 2].iter().product();
    let xc = Contig::new(x.view());
    let xs = xc.slice();
    let len = batch
        .checked_mul(num_agents)
        .and_then(|x| x.checked_mul(d))
        .ok_or_else(|| Error::Invalid(format!("{F}: the output is too large")))?;
    let mut out = Vec::new();
    out.try_reserve_exact(len)
        .map_err(|_| Error::Invalid(format!("{F}: cannot allocate {len} outputs")))?;
    let mut acc = vec![0.0f64; d];
    for b in 0..batch {
        let xb = &xs[b * n * d..(b + 1) * n * d];
        for &(r0, r1, c0, c1) in &rects {
            // The bin's sum of w * x (w = 1: exact; w = 1 / count when the plain sum of f64
            // values near the largest overflowed: a rounding more per term, for such bins only).
            let sum_bin = |acc: &mut [f64], w: f64| {
                acc.fill(0.0);
                for r in r0..r1 {
                    for t in r * cols + c0..r * cols + c1 {
                        acc.iter_mut()
                            .zip(&xb[t * d..(t + 1) * d])
                            .for_each(|(a, &y)| *a += y.to_f64() * w);
                    }
                }
            };
            let inv = 1.0 / ((r1 - r0) * (c1 - c0)) as f64;
            sum_bin(&mut acc, 1.0);
            if acc.iter().all(|a| a.is_finite()) {
                out.extend(acc.iter().map(|&a| E::from_f64(a * inv)));
            } else {
                sum_bin(&mut acc, inv);
                out.extend(acc.iter().map(|&a| E::from_f64(a)));
            }
        }
    }
    let mut shape = x.shape().to_vec();
    shape[nd - 2] = num_agents;
    ArrayD::from_shape_vec(IxDyn(&shape), out).map_err(|e| Error::Invalid(format!("internal: {e}")))
}

/// An additive bias broadcast to `full`, as one (rows x cols) view per query head.
pub(super) struct Bias<'a, E> {
    arr: ArrayViewD<'a, E>,
}

impl<'a, E: Elem> Bias<'a, E> {
    pub fn new(func: &str, what: &str, b: &'a ArrayViewD<'a, E>, full: &[usize]) -> Result<Self> {
        let arr = b.broadcast(full.to_vec()).ok_or_else(|| {
            Error::Invalid(format!(
                "{func}: {what} of shape {:?} does not broadcast to {full:?}",
                b.shape()
            ))
        })?;
        // -inf masks out; NaN or +inf has no meaning as an additive score (e^(inf - inf)).
        if b.iter().any(|&x| x.is_nan() || x == E::INFINITY) {
            return Err(Error::Invalid(format!(
                "{func}: {what} contains NaN or +inf (-inf masks an entry out)"
            )));
        }
        Ok(Bias { arr })
    }

    /// The largest finite |entry| (0 for none): what the bias can add to a score.
    pub fn max_abs(&self) -> f64 {
        self.arr
            .iter()
            .filter(|x| x.is_finite())
            .fold(0.0f64, |m, &x| m.max(x.to_f64().abs()))
    }

    /// Head h's (rows x cols) view of the broadcast bias.
    fn head(&self, h: usize) -> Result<ArrayView2<'_, E>> {
        head_view(self.arr.view(), h)
    }

    /// x[r, c] += bias[h][r0 + r, c] (x: rows of `cols`).
    pub fn add(&self, h: usize, r0: usize, x: &mut [E], cols: usize) -> Result<()> {
        let view = self.head(h)?;
        for (r, row) in x.chunks_exact_mut(cols).enumerate() {
            let brow = view.row(r0 + r);
            row.iter_mut()
                .zip(brow.iter())
                .for_each(|(y, &b)| *y = *y + b);
        }
        Ok(())
    }

    /// x[j, i] += bias[h][i, j] (x: rows x cols, the bias cols x rows), in tiles so both
    /// sides are read and written a cache line at a time.
    pub fn add_transposed(&self, h: usize, x: &mut [E], rows: usize, cols: usize) -> Result<()> {
        const TILE: usize = 64;
        let view = self.head(h)?;
        for j0 in (0..rows).step_by(TILE) {
            let j1 = (j0 + TILE).min(rows);
            for i in 0..cols {
                let brow = view.row(i);
                for j in j0..j1 {
                    x[j * cols + i] = x[j * cols + i] + brow[j];
                }
            }
        }
        Ok(())
    }
}
