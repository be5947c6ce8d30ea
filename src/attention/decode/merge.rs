//! The merge of split partials [m, l, o_0 .. o_dv) into one output row, in f64.
//! Synchronised: FlashAttention-2's combine (`combine_attn_seqk_parallel` in
//! Dao-AILab/flash-attention): M = max m_i, L = sum l_i e^(m_i - M), O = sum o_i e^(m_i - M),
//! out = O / L, lse = M + ln L; a split with l = 0 (nothing visible) contributes nothing.
//! Unified (FlashDecoding++): L = sum l_i, O = sum o_i, lse = phi + ln L, valid only when every
//! score stayed within phi +- `split::safe_range` and the sums are finite.

use super::split::safe_range;
use crate::error::{Error, Result};
use crate::simd::Elem;

/// Partials laid out [group][split][head of the group][dv + 2].
pub(super) struct Partials<E> {
    pub buf: Vec<E>,
    g: usize,
    splits: usize,
    stride: usize,
}

impl<E: Elem> Partials<E> {
    pub fn new(groups: usize, g: usize, splits: usize, stride: usize) -> Result<Self> {
        let len = groups
            .checked_mul(g * splits * stride)
            .ok_or_else(|| Error::Invalid("decode_attention: too many splits".into()))?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(len).map_err(|_| {
            Error::Invalid(format!(
                "decode_attention: cannot allocate {splits} splits' partials"
            ))
        })?;
        buf.resize(len, E::ZERO);
        Ok(Partials {
            buf,
            g,
            splits,
            stride,
        })
    }

    /// Query head h's partial of every split.
    pub fn head(&self, h: usize) -> Vec<&[E]> {
        let (gi, hh) = (h / self.g, h % self.g);
        (0..self.splits)
            .map(|si| {
                &self.buf[((gi * self.splits + si) * self.g + hh) * self.stride..][..self.stride]
            })
            .collect()
    }
}

/// Writes the merged row and its lse; false when the unified form must be recomputed.
pub(super) fn merge_row<E: Elem>(
    parts: &[&[E]],
    len: usize,
    unified: Option<f64>,
    out: &mut [E],
    lse: &mut E,
) -> bool {
    let empty = |out: &mut [E], lse: &mut E| {
        out.fill(E::ZERO);
        *lse = E::NEG_INFINITY;
        true
    };
    if len == 0 {
        return empty(out, lse);
    }
    let mut acc = vec![0.0f64; out.len()];
    let (base, total) = match unified {
        Some(phi) => {
            let m = parts
                .iter()
                .map(|p| p[0].to_f64())
                .fold(f64::NEG_INFINITY, f64::max);
            let r = safe_range::<E>();
            if !(m - phi <= r && m - phi >= -r) {
                return false;
            }
            let mut l = 0.0;
            for p in parts {
                l += p[1].to_f64();
                acc.iter_mut()
                    .zip(&p[2..])
                    .for_each(|(a, &o)| *a += o.to_f64());
            }
            if !(l > 0.0 && l.is_finite() && acc.iter().all(|a| a.is_finite())) {
                return false;
            }
            (phi, l)
        }
        None => {
            // A NaN score (NaN or inf in a visible key, or an overflowing +inf score: e^(inf -
            // inf)) poisons its split's sum: the row is NaN, not a row without that split.
            if parts.iter().any(|p| p[0].is_nan() || p[1].is_nan()) {
                out.fill(E::NAN);
                *lse = E::NAN;
                return true;
            }
            let live = || parts.iter().filter(|p| p[1] > E::ZERO);
            let m = live()
                .map(|p| p[0].to_f64())
                .fold(f64::NEG_INFINITY, f64::max);
            if m == f64::NEG_INFINITY {
                return empty(out, lse);
            }
            let mut l = 0.0;
            for p in live() {
                let a = (p[0].to_f64() - m).exp();
                l += p[1].to_f64() * a;
                acc.iter_mut()
                    .zip(&p[2..])
                    .for_each(|(x, &o)| *x += o.to_f64() * a);
            }
            (m, l)
        }
    };
    let inv = 1.0 / total;
    out.iter_mut()
        .zip(&acc)
        .for_each(|(o, &a)| *o = E::from_f64(a * inv));
    *lse = E::from_f64(base + total.ln());
    true
}
