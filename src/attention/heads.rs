//! The plumbing every attention function shares: shape checks of q (..., n, d), k (..., s, d),
//! v (..., s, dv) with grouped heads (the dim before n/s may differ, q's heads a multiple of
//! k's, as torch's `enable_gqa`), borrowing inputs as contiguous slices, the uninitialised
//! output, and the finite-input check.

use crate::error::{Error, Result};
use crate::simd::{all_finite, Elem, Lanes};
use ndarray::{ArrayD, ArrayView2, ArrayViewD, Axis, CowArray, IxDyn};
use std::mem::MaybeUninit;

/// The sizes of a batch of attention heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeadShape {
    /// Product of the batch dims before the heads dim.
    pub outer: usize,
    /// q's heads and k/v's heads (1 and 1 for 2-D inputs).
    pub hq: usize,
    pub hkv: usize,
    pub n: usize,
    pub s: usize,
    pub d: usize,
    pub dv: usize,
}

impl HeadShape {
    /// Number of query heads in all.
    pub fn heads(&self) -> usize {
        self.outer * self.hq
    }

    /// The k/v head that query head `h` (flat index) reads.
    pub fn kv_head(&self, h: usize) -> usize {
        let (b, i) = (h / self.hq, h % self.hq);
        b * self.hkv + i / (self.hq / self.hkv)
    }

    /// Query head h's rows of q (n x d) and its k/v head's rows of k (s x d) and v (s x dv), from
    /// contiguous inputs.
    pub fn head_slices<'a, E>(
        &self,
        h: usize,
        (q, k, v): (&'a [E], &'a [E], &'a [E]),
    ) -> (&'a [E], &'a [E], &'a [E]) {
        let kv = self.kv_head(h);
        (
            &q[h * self.n * self.d..][..self.n * self.d],
            &k[kv * self.s * self.d..][..self.s * self.d],
            &v[kv * self.s * self.dv..][..self.s * self.dv],
        )
    }

    /// The batch dims of q (everything before n).
    pub fn out_shape(q: &[usize], last: usize) -> Vec<usize> {
        let mut s = q.to_vec();
        if let Some(x) = s.last_mut() {
            *x = last;
        }
        s
    }
}

/// Checks q (..., n, d), k (..., s, d), v (..., s, dv) and returns their sizes. `func` names
/// the function in messages.
pub(crate) fn qkv_shape(func: &str, q: &[usize], k: &[usize], v: &[usize]) -> Result<HeadShape> {
    qkv_shape_named(func, ["q", "k", "v"], q, k, v)
}

/// [`qkv_shape`] for a function whose arguments have other names (tensor attention's k1, v1).
pub(crate) fn qkv_shape_named(
    func: &str,
    [qn, kn, vn]: [&str; 3],
    q: &[usize],
    k: &[usize],
    v: &[usize],
) -> Result<HeadShape> {
    let nd = q.len();
    if nd < 2 || k.len() != nd || v.len() != nd {
        return Err(Error::Invalid(format!(
            "{func}: {qn}, {kn} and {vn} must be (..., n, d), (..., s, d), (..., s, dv) with the same number of dims (at least 2), got {q:?}, {k:?}, {v:?}"
        )));
    }
    let (n, d, s, dv) = (q[nd - 2], q[nd - 1], k[nd - 2], v[nd - 1]);
    if k[nd - 1] != d {
        return Err(Error::Invalid(format!(
            "{func}: {kn}'s last dim must equal {qn}'s (d = {d}), got {kn} shape {k:?}"
        )));
    }
    if v[nd - 2] != s {
        return Err(Error::Invalid(format!(
            "{func}: {vn} must have {kn}'s sequence length s = {s}, got {vn} shape {v:?}"
        )));
    }
    if d == 0 || dv == 0 {
        return Err(Error::Invalid(format!(
            "{func}: d and dv must be >= 1, got d = {d} (the last dim of {qn} and {kn}) and dv = {dv} (the last dim of {vn})"
        )));
    }
    let (outer, hq, hkv) = if nd == 2 {
        (1, 1, 1)
    } else {
        let lead = nd - 3;
        if q[..lead] != k[..lead] || k[..nd - 2] != v[..nd - 2] {
            return Err(Error::Invalid(format!(
                "{func}: batch dims must match (only the heads dim before n may differ between {qn} and {kn}/{vn}), got {qn} {q:?}, {kn} {k:?}, {vn} {v:?}"
            )));
        }
        let (hq, hkv) = (q[nd - 3], k[nd - 3]);
        if (hkv == 0 && hq != 0) || (hkv != 0 && hq % hkv != 0) {
            return Err(Error::Invalid(format!(
                "{func}: {qn}'s heads ({hq}) must be a multiple of {kn}/{vn}'s heads ({hkv})"
            )));
        }
        (q[..lead].iter().product(), hq, hkv.max(1))
    };
    Ok(HeadShape {
        outer,
        hq,
        hkv,
        n,
        s,
        d,
        dv,
    })
}

/// Head h's (rows x cols) view of an array broadcast to (..., rows, cols): the batch dims
/// indexed one by one from the flat head index (row-major over the batch dims).
pub(crate) fn head_view<'a, E>(m: ArrayViewD<'a, E>, h: usize) -> Result<ArrayView2<'a, E>> {
    let batch = m.ndim().saturating_sub(2);
    let mut idx = vec![0; batch];
    let mut rest = h;
    for a in (0..batch).rev() {
        let len = m.shape()[a].max(1);
        idx[a] = rest % len;
        rest /= len;
    }
    let mut view = m;
    for &i in &idx {
        view = view.index_axis_move(Axis(0), i);
    }
    view.into_dimensionality()
        .map_err(|e| Error::Invalid(format!("internal: {e}")))
}

/// The (rows x cols) block of every head of `a` (heads: the dims before the last two,
/// row-major) as a slice, borrowed when every block is contiguous (unit column stride, row
/// stride = cols), as a KV cache sliced along its sequence axis is; None otherwise.
pub(crate) fn head_blocks<'a, E>(a: &ArrayViewD<'a, E>) -> Option<Vec<&'a [E]>> {
    let nd = a.ndim();
    if nd < 2 {
        return None;
    }
    let (lead, rows, cols) = (&a.shape()[..nd - 2], a.shape()[nd - 2], a.shape()[nd - 1]);
    let st = a.strides();
    let heads: usize = lead.iter().product();
    if rows * cols == 0 {
        return Some(vec![&[][..]; heads]);
    }
    if (cols > 1 && st[nd - 1] != 1) || (rows > 1 && st[nd - 2] != cols as isize) {
        return None;
    }
    let mut out = Vec::with_capacity(heads);
    for h in 0..heads {
        let (mut rest, mut off) = (h, 0isize);
        for ax in (0..nd - 2).rev() {
            off += (rest % lead[ax]) as isize * st[ax];
            rest /= lead[ax];
        }
        // SAFETY: `off` is the offset of element (head h, 0, 0) of the view, and the view holds
        // rows x cols elements from there contiguously (unit column stride, row stride cols,
        // checked above), all borrowed for 'a.
        out.push(unsafe { std::slice::from_raw_parts(a.as_ptr().offset(off), rows * cols) });
    }
    Some(out)
}

/// An input borrowed when C-contiguous (the common case), else copied once.
pub(crate) struct Contig<'a, E> {
    arr: CowArray<'a, E, IxDyn>,
}

impl<'a, E: Elem> Contig<'a, E> {
    pub fn new(a: ArrayViewD<'a, E>) -> Self {
        if a.is_standard_layout() {
            return Contig {
                arr: CowArray::from(a),
            };
        }
        // Row by row: a view sliced along a leading axis (the common case) has contiguous
        // rows, copied at memory speed. The fresh buffer is advised to huge pages like the
        // outputs: faulting a fresh buffer in 4 KiB at a time costs more than the copy on the VMs
        // measured (benches/README.md, non-contiguous inputs).
        let mut buf = Vec::with_capacity(a.len());
        huge_pages(&mut buf);
        if a.ndim() == 0 {
            buf.extend(a.iter().copied());
        } else {
            for row in a.rows() {
                match row.as_slice() {
                    Some(r) => buf.extend_from_slice(r),
                    None => buf.extend(row.iter().copied()),
                }
            }
        }
        let arr = ArrayD::from_shape_vec(IxDyn(a.shape()), buf)
            .unwrap_or_else(|_| a.as_standard_layout().into_owned());
        Contig {
            arr: CowArray::from(arr),
        }
    }

    pub fn slice(&self) -> &[E] {
        // A standard-layout array always has a slice; the empty fallback is never taken.
        self.arr.as_slice().unwrap_or(&[])
    }
}

/// ValueError naming the argument when it holds NaN or infinity.
pub(crate) fn check_finite<E: Lanes>(func: &str, what: &str, x: &[E]) -> Result<()> {
    if all_finite(x) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{func}: {what} contains NaN or infinity"
        )))
    }
}

/// Huge pages for a large fresh buffer (`memory::advise_huge_pages`); below two huge pages an
/// unaligned buffer holds at most one whole one, not worth the call.
fn huge_pages<E>(buf: &mut Vec<E>) {
    let bytes = buf.capacity() * std::mem::size_of::<E>();
    if bytes >= 2 * crate::memory::HUGE_PAGE {
        // SAFETY: the range is the vector's allocation.
        unsafe { crate::memory::advise_huge_pages(buf.as_mut_ptr().cast(), bytes) }
    }
}

/// An output of `len` elements that the kernels write before it is read.
pub(crate) struct Output<E> {
    buf: Vec<E>,
    len: usize,
}

impl<E> Output<E> {
    pub fn new(func: &str, len: usize) -> Result<Self> {
        let mut buf = Vec::new();
        buf.try_reserve_exact(len)
            .map_err(|_| Error::Invalid(format!("{func}: cannot allocate {len} outputs")))?;
        huge_pages(&mut buf);
        Ok(Output { buf, len })
    }

    pub fn uninit(&mut self) -> &mut [MaybeUninit<E>] {
        &mut self.buf.spare_capacity_mut()[..self.len]
    }

    /// The array, once every element was written.
    ///
    /// # Safety
    /// Every one of the `len` elements of `uninit()` has been written.
    pub unsafe fn assume_init(mut self, shape: &[usize]) -> Result<ArrayD<E>> {
        // SAFETY: the caller wrote all `len` elements; the capacity is at least `len`.
        unsafe { self.buf.set_len(self.len) };
        ArrayD::from_shape_vec(IxDyn(shape), self.buf).map_err(|e| Error::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contig_copies_any_layout_in_order() {
        let a =
            ndarray::Array3::from_shape_fn((3, 5, 4), |(i, j, k)| (i * 100 + j * 10 + k) as f64);
        let first = a.slice(ndarray::s![..1, .., ..]);
        let views = [
            a.view().into_dyn(),
            a.slice(ndarray::s![.., 1..4, ..]).into_dyn(),
            a.slice(ndarray::s![..;-1, .., ..;2]).into_dyn(),
            a.view().permuted_axes([2, 0, 1]).into_dyn(),
            first.broadcast((2, 3, 5, 4)).expect("broadcast").into_dyn(),
        ];
        for v in views {
            let want: Vec<f64> = v.iter().copied().collect();
            assert_eq!(
                Contig::new(v.clone()).slice(),
                &want[..],
                "shape {:?}",
                v.shape()
            );
        }
        let blocks = head_blocks(&a.slice(ndarray::s![.., 1..4, ..]).into_dyn()).expect("rows");
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[2][0], 210.0);
        assert!(head_blocks(&a.slice(ndarray::s![.., .., ..;2]).into_dyn()).is_none());
    }

    #[test]
    fn grouped_heads_and_errors() {
        let s = qkv_shape("f", &[2, 8, 5, 4], &[2, 2, 7, 4], &[2, 2, 7, 3]).expect("shape");
        assert_eq!(
            (s.outer, s.hq, s.hkv, s.n, s.s, s.d, s.dv),
            (2, 8, 2, 5, 7, 4, 3)
        );
        assert_eq!(s.kv_head(0), 0);
        assert_eq!(s.kv_head(3), 0);
        assert_eq!(s.kv_head(4), 1);
        assert_eq!(s.kv_head(8), 2);
        assert_eq!(s.kv_head(15), 3);
        assert!(qkv_shape("f", &[2, 6, 5, 4], &[2, 4, 7, 4], &[2, 4, 7, 3]).is_err());
        assert!(qkv_shape("f", &[5, 4], &[7, 3], &[7, 3]).is_err());
        assert!(qkv_shape("f", &[5, 4], &[7, 4], &[6, 3]).is_err());
        assert!(qkv_shape("f", &[5, 0], &[7, 0], &[7, 3]).is_err());
        assert!(qkv_shape("f", &[3, 5, 4], &[2, 7, 4], &[2, 7, 3]).is_err());
    }
}
