//! Decay gates: log-decays g <= 0 per head, per step or per step and key dim, checked once.

use crate::attention::heads::{Contig, HeadShape};
use crate::error::{Error, Result};
use crate::simd::Elem;
use ndarray::ArrayViewD;

/// One head's gate.
#[derive(Clone, Copy)]
pub(crate) enum Gate<'a, E> {
    None,
    /// The same g at every step.
    Head(f64),
    /// g_t, n values.
    Step(&'a [E]),
    /// g_t for each key dim, n x d values.
    Key(&'a [E]),
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Head,
    Step,
    Key,
}

/// All heads' gates, contiguous.
pub(crate) struct Gates<'a, E> {
    data: Option<(Contig<'a, E>, Kind)>,
    per_head: usize,
}

impl<'a, E: Elem> Gates<'a, E> {
    pub fn new(
        f: &str,
        decay: Option<ArrayViewD<'a, E>>,
        qshape: &[usize],
        hs: &HeadShape,
    ) -> Result<Self> {
        let Some(g) = decay else {
            return Ok(Gates {
                data: None,
                per_head: 0,
            });
        };
        let nd = qshape.len();
        let batch = &qshape[..nd - 2];
        let (kind, tail) = match g.ndim() {
            x if x == nd - 2 => (Kind::Head, vec![]),
            x if x == nd - 1 => (Kind::Step, vec![hs.n]),
            _ => (Kind::Key, vec![hs.n, hs.d]),
        };
        let want: Vec<usize> = batch.iter().copied().chain(tail.iter().copied()).collect();
        if g.shape() != want.as_slice() {
            return Err(Error::Invalid(format!(
                "{f}: decay must have shape {batch:?} (per head), {:?} (per step) or {:?} (per step and key dim), got {:?}",
                [batch, &[hs.n]].concat(),
                [batch, &[hs.n, hs.d]].concat(),
                g.shape()
            )));
        }
        let c = Contig::new(g);
        if let Some(bad) = c.slice().iter().find(|x| !x.is_finite() || **x > E::ZERO) {
            return Err(Error::Invalid(format!(
                "{f}: decay must hold finite log-decays g <= 0, got {}",
                bad.to_f64()
            )));
        }
        Ok(Gates {
            data: Some((c, kind)),
            per_head: tail.iter().product(),
        })
    }

    /// Query head h's gate (flat head index).
    pub fn head(&self, h: usize) -> Gate<'_, E> {
        let Some((c, kind)) = &self.data else {
            return Gate::None;
        };
        let mine = &c.slice()[h * self.per_head..][..self.per_head];
        match kind {
            Kind::Head => Gate::Head(mine[0].to_f64()),
            Kind::Step => Gate::Step(mine),
            Kind::Key => Gate::Key(mine),
        }
    }
}
