//! SciPy's axis forms for the softmax family: `axis=None` (the whole array) and tuples of axes
//! (`scipy.special.softmax`, `log_softmax`, `logsumexp`), plus logsumexp's `keepdims`, and its
//! weights `b` with `return_sign` (scipy.special.logsumexp's meaning: log |sum b e^x| and the
//! sum's sign). Several axes are one reduction: the kept axes go first, the reduced ones are
//! merged into one last axis (a view when the array is C-ordered, e.g. every `axis=None` call
//! on a contiguous array; a copy otherwise), and the one-axis kernels do the rest.

use super::driver::{logsumexp_with, softmax_with, Op};
use crate::error::{normalize_axis, Error, Result};
use crate::simd::{Isa, Lanes};
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis, CowArray, IxDyn};

/// Which axes a call reduces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Axes {
    One(isize),
    /// A tuple of axes, any order, no repeats (empty: every element is its own group).
    Many(Vec<isize>),
    /// `axis=None`: the whole array.
    All,
}

/// The reduced axes, sorted, checked.
fn resolve(axes: &Axes, ndim: usize) -> Result<Vec<usize>> {
    let mut red = match axes {
        Axes::One(a) => vec![normalize_axis(*a, ndim)?],
        Axes::Many(list) => list
            .iter()
            .map(|&a| normalize_axis(a, ndim))
            .collect::<Result<_>>()?,
        Axes::All => (0..ndim).collect(),
    };
    red.sort_unstable();
    if let Some(w) = red.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::Invalid(format!("axis: repeated axis {}", w[0])));
    }
    Ok(red)
}

/// The permutation putting the kept axes first (in order), then the reduced ones, and the
/// merged shape (kept dims, then the product of the reduced dims).
fn merged(shape: &[usize], red: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let kept = (0..shape.len()).filter(|a| !red.contains(a));
    let perm: Vec<usize> = kept.chain(red.iter().copied()).collect();
    let mut dims: Vec<usize> = perm[..shape.len() - red.len()]
        .iter()
        .map(|&a| shape[a])
        .collect();
    dims.push(red.iter().map(|&a| shape[a]).product());
    (perm, dims)
}

/// x in the merged layout (kept dims, reduced elements): a view when the permuted array is
/// C-ordered (axis=None or trailing axes of a contiguous array), a copy otherwise.
fn merged_view<'a, T: Clone>(
    x: ArrayViewD<'a, T>,
    perm: &[usize],
    dims: &[usize],
) -> CowArray<'a, T, IxDyn> {
    const SAME: &str = "a standard-layout array reshapes to the same number of elements";
    let p = x.permuted_axes(IxDyn(perm));
    if p.is_standard_layout() {
        CowArray::from(p.into_shape_with_order(IxDyn(dims)).expect(SAME))
    } else {
        let c = p.as_standard_layout().into_owned();
        CowArray::from(c.into_shape_with_order(IxDyn(dims)).expect(SAME))
    }
}

/// softmax or log-softmax over `axes` into `out` (x's shape).
pub fn softmax_axes_with<E: Lanes>(
    isa: Isa,
    x: ArrayViewD<'_, E>,
    axes: &Axes,
    op: Op,
    mask: Option<ArrayViewD<'_, bool>>,
    mut out: ArrayViewMutD<'_, E>,
) -> Result<()> {
    let red = resolve(axes, x.ndim())?;
    if red.len() == 1 {
        return softmax_with(isa, x, red[0] as isize, op, mask, out);
    }
    if out.shape() != x.shape() {
        return Err(Error::Shape {
            what: "out",
            expected: x.shape().to_vec(),
            got: out.shape().to_vec(),
        });
    }
    let mask = broadcast_mask(&x, &mask)?;
    let (perm, dims) = merged(x.shape(), &red);
    let xm = merged_view(x.view(), &perm, &dims);
    let mm = mask.map(|m| merged_view(m, &perm, &dims));
    let mv = mm.as_ref().map(|m| m.view());
    let mut op_view = out.view_mut().permuted_axes(IxDyn(&perm));
    if op_view.is_standard_layout() {
        // out in the merged layout already (axis=None, or trailing axes, of a C-ordered out):
        // the kernel writes it directly.
        let direct = op_view
            .into_shape_with_order(IxDyn(&dims))
            .expect("a standard-layout array reshapes to the same number of elements");
        return softmax_with(isa, xm.view(), -1, op, mv, direct);
    }
    let mut res = ArrayD::from_elem(IxDyn(&dims), E::ZERO);
    softmax_with(isa, xm.view(), -1, op, mv, res.view_mut())?;
    let pshape = op_view.shape().to_vec();
    let back = res
        .into_shape_with_order(IxDyn(&pshape))
        .expect("same number of elements");
    op_view.assign(&back);
    Ok(())
}

/// logsumexp over `axes`: the kept dims (with 1s where the reduced axes were when `keepdims`).
/// With weights `b` (broadcastable to x): log |sum b e^x|, and the sum's sign when
/// `return_sign` (otherwise a negative sum gives NaN, as SciPy).
#[allow(clippy::too_many_arguments)]
pub fn logsumexp_axes_with<E: Lanes>(
    isa: Isa,
    x: ArrayViewD<'_, E>,
    axes: &Axes,
    mask: Option<ArrayViewD<'_, bool>>,
    keepdims: bool,
    b: Option<ArrayViewD<'_, f64>>,
    return_sign: bool,
) -> Result<(ArrayD<E>, Option<ArrayD<E>>)> {
    let red = resolve(axes, x.ndim())?;
    let mut kshape = x.shape().to_vec();
    for &a in &red {
        kshape[a] = 1;
    }
    let (perm, dims) = merged(x.shape(), &red);
    let (res, sign) = match b {
        None => {
            let r = if red.len() == 1 {
                logsumexp_with(isa, x.view(), red[0] as isize, mask)?
            } else {
                let mask = broadcast_mask(&x, &mask)?;
                let xm = merged_view(x.view(), &perm, &dims);
                let mm = mask.map(|m| merged_view(m, &perm, &dims));
                logsumexp_with(isa, xm.view(), -1, mm.as_ref().map(|m| m.view()))?
            };
            let sign = return_sign.then(|| r.mapv(sign_of_lse));
            (r, sign)
        }
        Some(b) => {
            let bb = b.broadcast(x.raw_dim()).ok_or_else(|| Error::Shape {
                what: "b",
                expected: x.shape().to_vec(),
                got: b.shape().to_vec(),
            })?;
            let mask = broadcast_mask(&x, &mask)?;
            let xm = merged_view(x.view(), &perm, &dims);
            let bm = merged_view(bb, &perm, &dims);
            let mm = mask.map(|m| merged_view(m, &perm, &dims));
            weighted(&xm, &bm, mm.as_ref(), &dims, return_sign)
        }
    };
    let shape = if keepdims {
        kshape
    } else {
        dims[..dims.len() - 1].to_vec()
    };
    let reshape = |a: ArrayD<E>| {
        a.into_shape_with_order(IxDyn(&shape))
            .expect("same number of elements")
    };
    Ok((reshape(res), sign.map(reshape)))
}

/// The mask broadcast to x's shape (an error naming `where` when it does not broadcast).
fn broadcast_mask<'b, E>(
    x: &ArrayViewD<'_, E>,
    mask: &'b Option<ArrayViewD<'_, bool>>,
) -> Result<Option<ArrayViewD<'b, bool>>> {
    mask.as_ref()
        .map(|m| {
            m.broadcast(x.raw_dim()).ok_or_else(|| Error::Shape {
                what: "where",
                expected: x.shape().to_vec(),
                got: m.shape().to_vec(),
            })
        })
        .transpose()
}

/// 1 for a finite or +inf logsumexp, 0 for -inf (an empty or all-masked sum), NaN for NaN.
fn sign_of_lse<E: Lanes>(r: E) -> E {
    if r.is_nan() {
        r
    } else if r == E::NEG_INFINITY {
        E::ZERO
    } else {
        E::ONE
    }
}

/// The weighted reduction row by row in f64: m = max of the x_j with b_j != 0 (0 when not
/// finite), s = sum b_j e^(x_j - m), log |s| + m and sign(s).
fn weighted<E: Lanes>(
    x: &CowArray<'_, E, IxDyn>,
    b: &CowArray<'_, f64, IxDyn>,
    mask: Option<&CowArray<'_, bool, IxDyn>>,
    dims: &[usize],
    return_sign: bool,
) -> (ArrayD<E>, Option<ArrayD<E>>) {
    let kept = IxDyn(&dims[..dims.len() - 1]);
    let mut res = ArrayD::from_elem(kept.clone(), E::NEG_INFINITY);
    let mut sign = ArrayD::from_elem(kept, E::ZERO);
    let last = Axis(dims.len() - 1);
    let xs = x.lanes(last).into_iter();
    let bs = b.lanes(last).into_iter();
    let mut ms = mask.map(|m| m.lanes(last).into_iter());
    for ((r, sg), (xr, br)) in res.iter_mut().zip(sign.iter_mut()).zip(xs.zip(bs)) {
        let keep = ms.as_mut().and_then(|it| it.next());
        let terms = || {
            xr.iter()
                .zip(br.iter())
                .enumerate()
                .filter(|&(j, (_, &w))| w != 0.0 && keep.as_ref().is_none_or(|k| k[j]))
                .map(|(_, (&v, &w))| (v.to_f64(), w))
        };
        let m = terms().map(|(v, _)| v).fold(f64::NEG_INFINITY, f64::max);
        let shift = if m.is_finite() { m } else { 0.0 };
        let s: f64 = terms().map(|(v, w)| w * (v - shift).exp()).sum();
        let lse = s.abs().ln() + shift;
        let sgn = if s.is_nan() || s == 0.0 {
            s // NaN, or 0 for an empty sum
        } else {
            s.signum()
        };
        *sg = E::from_f64(sgn);
        *r = E::from_f64(if s < 0.0 && !return_sign {
            f64::NAN
        } else {
            lse
        });
    }
    (res, return_sign.then_some(sign))
}
