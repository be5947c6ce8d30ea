//! From arrays to kernels: layout, masks, threading.
//!
//! Any input layout is first made C-contiguous (a no-op for C-contiguous input); the reduction
//! axis then splits the array into (outer, n, inner). inner == 1 runs the contiguous-row kernels,
//! otherwise the column-strip kernels run down the axis in place: no transposition.
//!
//! Threads: rows are grouped into tasks of about TASK_ELEMS elements, columns into strips of
//! the same size; rows of LONG_ROW or more elements are split into LONG_CHUNK chunks whose
//! extended-exponent partial sums merge in chunk order. Task boundaries depend only on the shape,
//! so the result is bitwise identical for any thread count.

use super::extexp::ExtSum;
use super::rows::{ChunkSum, ChunkWrite, Rows, RowsLse};
use super::strided::{Cols, OutPtr};
use super::Algorithm;
use crate::cpu_info;
use crate::error::{normalize_axis, try_collect, Error, Result};
use crate::simd::{self, dispatch, Elem, Isa, Lanes};
use crate::threads;
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};
use rayon::prelude::*;
use std::borrow::Cow;

/// Elements per parallel task (of every row-wise softmax-family kernel).
pub(crate) const TASK_ELEMS: usize = 1 << 15;
/// Rows at least this long are split into chunks (two-pass and log-softmax only).
const LONG_ROW: usize = 1 << 18;
const LONG_CHUNK: usize = 1 << 16;
/// `Auto` takes two-pass for rows of at least this many elements when the output streams
/// (beyond the L3: two-pass reads x twice from memory, three-pass-reload x once and y twice).
const AUTO_STREAM_MIN_ROW: usize = 1024;

pub use super::rows::Op;

/// softmax(x) along `axis` into `out` (same shape). `mask`, broadcastable to x, keeps the entries
/// where it is true; masked entries give 0, a row with nothing kept gives 0s.
pub fn softmax<E: Lanes>(
    x: ArrayViewD<'_, E>,
    axis: isize,
    algorithm: Algorithm,
    mask: Option<ArrayViewD<'_, bool>>,
    out: ArrayViewMutD<'_, E>,
) -> Result<()> {
    softmax_with(simd::active(), x, axis, Op::Softmax(algorithm), mask, out)
}

/// log-softmax; masked entries (and rows with nothing kept) give -inf, the log of their 0.
pub fn log_softmax<E: Lanes>(
    x: ArrayViewD<'_, E>,
    axis: isize,
    mask: Option<ArrayViewD<'_, bool>>,
    out: ArrayViewMutD<'_, E>,
) -> Result<()> {
    softmax_with(simd::active(), x, axis, Op::LogSoftmax, mask, out)
}

/// The softmax family on a given ISA (tests compare ISAs through this).
pub fn softmax_with<E: Lanes>(
    isa: Isa,
    x: ArrayViewD<'_, E>,
    axis: isize,
    op: Op,
    mask: Option<ArrayViewD<'_, bool>>,
    mut out: ArrayViewMutD<'_, E>,
) -> Result<()> {
    let ax = normalize_axis(axis, x.ndim())?;
    if out.shape() != x.shape() {
        return Err(Error::Shape {
            what: "out",
            expected: x.shape().to_vec(),
            got: out.shape().to_vec(),
        });
    }
    let (xs, mask) = masked_input(&x, mask)?;
    let (_, n, inner) = split(x.shape(), ax);
    let fill = match op {
        Op::Softmax(_) => E::ZERO,
        Op::LogSoftmax => E::NEG_INFINITY,
    };
    let body = |ys: &mut [E]| {
        compute(isa, &xs, ys, n, inner, op);
        if let Some(m) = &mask {
            for (y, &k) in ys.iter_mut().zip(m.iter()) {
                if !k {
                    *y = fill;
                }
            }
        }
    };
    match out.as_slice_mut() {
        Some(ys) => body(ys),
        None => {
            let mut tmp = vec![E::ZERO; x.len()];
            body(&mut tmp);
            let tmp = ArrayViewD::from_shape(IxDyn(x.shape()), &tmp)
                .map_err(|e| Error::Invalid(format!("internal shape error: {e}")))?;
            out.assign(&tmp);
        }
    }
    Ok(())
}

/// logsumexp along `axis` (removed from the result's shape). Masked entries are left out; a row
/// with nothing kept (or no entries) gives -inf.
pub fn logsumexp<E: Lanes>(
    x: ArrayViewD<'_, E>,
    axis: isize,
    mask: Option<ArrayViewD<'_, bool>>,
) -> Result<ArrayD<E>> {
    logsumexp_with(simd::active(), x, axis, mask)
}

pub fn logsumexp_with<E: Lanes>(
    isa: Isa,
    x: ArrayViewD<'_, E>,
    axis: isize,
    mask: Option<ArrayViewD<'_, bool>>,
) -> Result<ArrayD<E>> {
    let ax = normalize_axis(axis, x.ndim())?;
    let (xs, _) = masked_input(&x, mask)?;
    let (outer, n, inner) = split(x.shape(), ax);
    let mut shape = x.shape().to_vec();
    shape.remove(ax);
    let mut out = vec![E::NEG_INFINITY; outer * inner];
    if n > 0 && !out.is_empty() {
        if inner == 1 {
            lse_rows(isa, &xs, &mut out, n);
        } else {
            let ptr = OutPtr(out.as_mut_ptr());
            cols(
                isa,
                &xs,
                OutPtr(std::ptr::null_mut()),
                ptr,
                n,
                inner,
                Op::LogSoftmax,
            );
        }
    }
    ArrayD::from_shape_vec(IxDyn(&shape), out)
        .map_err(|e| Error::Invalid(format!("internal shape error: {e}")))
}

/// (outer, n, inner) around axis `ax`.
fn split(shape: &[usize], ax: usize) -> (usize, usize, usize) {
    let outer = shape[..ax].iter().product();
    let inner = shape[ax + 1..].iter().product();
    (outer, shape[ax], inner)
}

/// The kernel input in C order and, with a mask, the mask in C order.
type Prepared<'a, E> = (Cow<'a, [E]>, Option<Vec<bool>>);

/// x in C order (borrowed when it already is), with masked entries replaced by -inf; and the
/// mask in C order.
fn masked_input<'a, E: Elem>(
    x: &'a ArrayViewD<'_, E>,
    mask: Option<ArrayViewD<'_, bool>>,
) -> Result<Prepared<'a, E>> {
    let Some(mask) = mask else {
        let xs = match x.as_slice() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(try_collect(
                x.len(),
                x.iter().copied(),
                "a C-order copy of x",
            )?),
        };
        return Ok((xs, None));
    };
    let mb = mask.broadcast(x.raw_dim()).ok_or_else(|| Error::Shape {
        what: "where",
        expected: x.shape().to_vec(),
        got: mask.shape().to_vec(),
    })?;
    // Iterating both logically (C order) keeps them aligned whatever their strides.
    let xs = try_collect(
        x.len(),
        x.iter()
            .zip(mb.iter())
            .map(|(&v, &k)| if k { v } else { E::NEG_INFINITY }),
        "a masked copy of x",
    )?;
    let ms = try_collect(x.len(), mb.iter().copied(), "a C-order copy of where")?;
    Ok((Cow::Owned(xs), Some(ms)))
}

fn compute<E: Lanes>(isa: Isa, xs: &[E], ys: &mut [E], n: usize, inner: usize, op: Op) {
    if n == 0 || xs.is_empty() {
        return;
    }
    if inner == 1 {
        rows(isa, xs, ys, n, op);
    } else {
        cols(
            isa,
            xs,
            OutPtr(ys.as_mut_ptr()),
            OutPtr(std::ptr::null_mut()),
            n,
            inner,
            op,
        );
    }
}

/// Whether the two-pass writes use non-temporal stores for an output of `bytes` bytes: when x
/// and y together exceed the L3 (`cpu_info::Thresholds`).
fn streams(bytes: usize) -> bool {
    bytes > cpu_info::thresholds().stream_min_bytes
}

/// The concrete algorithm `Auto` stands for at row length n in an output of `bytes` bytes:
/// three-pass-reload (one exponential per element) while the row stays in the per-core L2 and
/// the output in the L3, two-pass beyond (its passes read x, not y, and split a long row across
/// threads). Rows beyond LONG_ROW elements are two-pass whatever the L2: only two-pass splits
/// them, and the choice may not depend on the thread count (results are bitwise identical for
/// any). The measurements behind it: benches/README.md.
pub fn resolve_auto<E>(n: usize, bytes: usize) -> Algorithm {
    let row_bytes = n * std::mem::size_of::<E>();
    let out_of_cache = streams(bytes) && n >= AUTO_STREAM_MIN_ROW;
    let fits = row_bytes <= cpu_info::thresholds().reload_max_row_bytes && n < LONG_ROW;
    if fits && !out_of_cache {
        Algorithm::ThreePassReload
    } else {
        Algorithm::TwoPass
    }
}

fn rows<E: Lanes>(isa: Isa, xs: &[E], ys: &mut [E], n: usize, op: Op) {
    let op = match op {
        Op::Softmax(Algorithm::Auto) => Op::Softmax(resolve_auto::<E>(n, size_of_val(ys))),
        o => o,
    };
    let splittable = matches!(op, Op::LogSoftmax | Op::Softmax(Algorithm::TwoPass));
    let stream = streams(size_of_val(ys));
    if splittable && n >= LONG_ROW {
        for (x, y) in xs.chunks_exact(n).zip(ys.chunks_exact_mut(n)) {
            long_row(isa, x, y, op == Op::LogSoftmax, stream);
        }
        return;
    }
    let per_task = TASK_ELEMS.div_ceil(n) * n;
    if xs.len() <= per_task {
        dispatch(
            isa,
            Rows {
                x: xs,
                y: ys,
                n,
                op,
                stream,
            },
        );
        return;
    }
    threads::install(|| {
        xs.par_chunks(per_task)
            .zip(ys.par_chunks_mut(per_task))
            .for_each(|(x, y)| {
                dispatch(
                    isa,
                    Rows {
                        x,
                        y,
                        n,
                        op,
                        stream,
                    },
                )
            });
    });
}

/// One long row: partial sums over fixed chunks in parallel, merged in order, then the writes.
fn long_row<E: Lanes>(isa: Isa, x: &[E], y: &mut [E], log: bool, stream: bool) {
    let parts: Vec<ExtSum<E>> = threads::install(|| {
        x.par_chunks(LONG_CHUNK)
            .map(|c| dispatch(isa, ChunkSum { x: c }))
            .collect()
    });
    let s = parts.into_iter().fold(ExtSum::empty(), ExtSum::merge);
    if !s.is_safe() {
        // Rare (non-finite or extreme values): the exact serial path.
        let op = if log {
            Op::LogSoftmax
        } else {
            Op::Softmax(Algorithm::ThreePassRecompute)
        };
        let n = x.len();
        dispatch(
            isa,
            Rows {
                x,
                y,
                n,
                op,
                stream: false,
            },
        );
        return;
    }
    threads::install(|| {
        x.par_chunks(LONG_CHUNK)
            .zip(y.par_chunks_mut(LONG_CHUNK))
            .for_each(|(x, y)| {
                dispatch(
                    isa,
                    ChunkWrite {
                        x,
                        y,
                        s,
                        log,
                        stream,
                    },
                )
            });
    });
}

fn lse_rows<E: Lanes>(isa: Isa, xs: &[E], out: &mut [E], n: usize) {
    if n >= LONG_ROW {
        for (x, o) in xs.chunks_exact(n).zip(out.iter_mut()) {
            let parts: Vec<ExtSum<E>> = threads::install(|| {
                x.par_chunks(LONG_CHUNK)
                    .map(|c| dispatch(isa, ChunkSum { x: c }))
                    .collect()
            });
            let s = parts.into_iter().fold(ExtSum::empty(), ExtSum::merge);
            *o = if s.is_safe() {
                E::from_f64(s.ln())
            } else {
                let mut one = [E::ZERO];
                dispatch(
                    isa,
                    RowsLse {
                        x,
                        out: &mut one,
                        n,
                    },
                );
                one[0]
            };
        }
        return;
    }
    let rows_per_task = TASK_ELEMS.div_ceil(n);
    if out.len() <= rows_per_task {
        dispatch(isa, RowsLse { x: xs, out, n });
        return;
    }
    threads::install(|| {
        xs.par_chunks(rows_per_task * n)
            .zip(out.par_chunks_mut(rows_per_task))
            .for_each(|(x, out)| dispatch(isa, RowsLse { x, out, n }));
    });
}

/// Column strips of every (n, inner) block; tasks are (block, column range) pairs.
fn cols<E: Lanes>(
    isa: Isa,
    xs: &[E],
    y: OutPtr<E>,
    lse: OutPtr<E>,
    n: usize,
    inner: usize,
    op: Op,
) {
    let block = n * inner;
    // Column ranges: a multiple of 64 (every ISA's strip width) holding about TASK_ELEMS.
    let width = (TASK_ELEMS / n)
        .next_multiple_of(64)
        .max(64)
        .min(inner.next_multiple_of(64));
    let per_block = inner.div_ceil(width);
    let tasks = (xs.len() / block) * per_block;
    let task = |t: usize| {
        let (o, c) = (t / per_block, t % per_block);
        let x = &xs[o * block..(o + 1) * block];
        let cols = c * width..((c + 1) * width).min(inner);
        // SAFETY: each task writes only its block's columns `cols` (and lse[o*inner + cols]);
        // tasks partition (block, column) pairs, so writes never overlap.
        let yb = if y.0.is_null() {
            y
        } else {
            OutPtr(unsafe { y.0.add(o * block) })
        };
        let lb = if lse.0.is_null() {
            lse
        } else {
            OutPtr(unsafe { lse.0.add(o * inner) })
        };
        dispatch(
            isa,
            Cols {
                x,
                y: yb,
                lse: lb,
                n,
                inner,
                cols,
                op,
            },
        );
    };
    if tasks <= 1 {
        (0..tasks).for_each(task);
    } else {
        threads::install(|| (0..tasks).into_par_iter().for_each(task));
    }
}
