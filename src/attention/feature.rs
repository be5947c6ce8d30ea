//! Feature maps of linear attention, applied to blocks of rows inside the kernels (never to a
//! whole mapped copy of q or k), and the Hedgehog map (Zhang et al., 2024).
//!
//! - `elu1`: elu(x) + 1 (Katharopoulos et al., 2020; fast-transformers' default),
//! - `relu`: max(x, 0), `identity`: x,
//! - `exp`: e^(x - max_c x) per token (stabilised: the per-token factor is the same for every
//!   feature, so a normalised output is unchanged for q and only rescales k's weight).

use super::heads::{check_finite, Contig};
use crate::error::{Error, Result};
use crate::linalg::{gemm, GemmElem};
use crate::simd::exp::{exp_poly_on, ExpPoly};
use crate::simd::{self, dispatch, Kernel, Lanes, Simd};
use crate::softmax::online_tile::{load_upto, row_max, softmax_in_place_on, store_upto};
use ndarray::{ArrayD, ArrayView2, ArrayViewD, ArrayViewMut2, IxDyn, ShapeBuilder};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeatureMap {
    Elu1,
    Relu,
    Identity,
    Exp,
}

impl FeatureMap {
    pub const NAMES: [&'static str; 4] = ["elu1", "relu", "identity", "exp"];

    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "elu1" => Ok(FeatureMap::Elu1),
            "relu" => Ok(FeatureMap::Relu),
            "identity" => Ok(FeatureMap::Identity),
            "exp" => Ok(FeatureMap::Exp),
            _ => Err(Error::Invalid(format!(
                "feature_map must be one of {:?}, got {name:?}",
                Self::NAMES
            ))),
        }
    }

    /// y = scale * phi(x) for rows of d elements (x and y of the same length); returns whether
    /// every element of x was finite (the check rides along the map's one pass).
    pub fn apply<E: Lanes>(self, x: &[E], y: &mut [E], d: usize, scale: E) -> bool {
        self.apply_with(simd::active(), x, y, d, scale)
    }

    /// `apply` on a given ISA (tests compare every ISA with the portable path).
    pub fn apply_with<E: Lanes>(
        self,
        isa: simd::Isa,
        x: &[E],
        y: &mut [E],
        d: usize,
        scale: E,
    ) -> bool {
        dispatch(
            isa,
            MapRows {
                map: self,
                x,
                y,
                d,
                scale,
            },
        )
    }
}

struct MapRows<'a, E> {
    map: FeatureMap,
    x: &'a [E],
    y: &'a mut [E],
    d: usize,
    scale: E,
}

impl<E: Lanes> Kernel<E> for MapRows<'_, E> {
    type Output = bool;
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) -> bool {
        let (w, d) = (S::LANES, self.d);
        if d == 0 {
            return true;
        }
        let poly = ExpPoly::<S>::softmax(S::splat(E::ONE));
        let (zero, one, sc) = (S::splat(E::ZERO), S::splat(E::ONE), S::splat(self.scale));
        // 0 x is 0 for finite x and NaN otherwise (as `simd::all_finite`).
        let mut check = zero;
        for (xr, yr) in self.x.chunks_exact(d).zip(self.y.chunks_exact_mut(d)) {
            let m = match self.map {
                FeatureMap::Exp => S::splat(row_max::<S>(xr)),
                _ => zero,
            };
            let mut j = 0;
            while j < d {
                let k = (d - j).min(w);
                // SAFETY: j + k <= d, the length of both rows.
                let xv = unsafe { load_upto::<S>(xr.as_ptr().add(j), k, E::ZERO) };
                check = S::fma(xv, zero, check);
                let fx = match self.map {
                    FeatureMap::Elu1 => {
                        let e = exp_poly_on::<S>(S::min(xv, zero), &poly);
                        S::select_ge(xv, zero, S::add(xv, one), e)
                    }
                    FeatureMap::Relu => S::max(xv, zero),
                    FeatureMap::Identity => xv,
                    FeatureMap::Exp => exp_poly_on::<S>(S::sub(xv, m), &poly),
                };
                // SAFETY: as the load.
                unsafe { store_upto::<S>(yr.as_mut_ptr().add(j), k, S::mul(fx, sc)) };
                j += k;
            }
        }
        S::reduce_add(check) == E::ZERO
    }
}

/// Hedgehog's feature map: y = x W + b, then [softmax(y), softmax(-y)] along the features, for
/// x (..., n, d), weight (d, f), bias (f,): (..., n, 2f). One GEMM straight into the first half
/// of the output, the negated copy into the second, then both softmaxes in place: no
/// temporaries beyond the output.
pub fn hedgehog_feature_map<E: GemmElem + Lanes>(
    x: ArrayViewD<'_, E>,
    weight: ArrayView2<'_, E>,
    bias: Option<&[E]>,
) -> Result<ArrayD<E>> {
    const F: &str = "hedgehog_feature_map";
    let nd = x.ndim();
    if nd < 1 {
        return Err(Error::Invalid(format!(
            "{F}: x must have at least 1 dim, got a scalar"
        )));
    }
    let d = x.shape()[nd - 1];
    let (wd, f) = weight.dim();
    if wd != d || f == 0 {
        return Err(Error::Invalid(format!(
            "{F}: weight must be (d, f) with d = {d} (x's last dim) and f >= 1, got {:?}",
            weight.shape()
        )));
    }
    if let Some(b) = bias {
        if b.len() != f {
            return Err(Error::Invalid(format!(
                "{F}: bias must have f = {f} elements, got {}",
                b.len()
            )));
        }
        check_finite(F, "bias", b)?;
    }
    let xc = Contig::new(x.view());
    check_finite(F, "x", xc.slice())?;
    let wc = weight.as_standard_layout();
    check_finite(F, "weight", wc.as_slice().unwrap_or(&[]))?;
    let rows: usize = x.shape()[..nd - 1].iter().product();
    let mut shape = x.shape().to_vec();
    shape[nd - 1] = 2 * f;
    if rows == 0 {
        // No tokens: an empty (..., 0, 2f) result (a (0, f) strided view of an empty buffer is
        // refused by ndarray's bounds check).
        return ArrayD::from_shape_vec(IxDyn(&shape), Vec::new())
            .map_err(|e| Error::Invalid(e.to_string()));
    }
    let len = rows * 2 * f;
    let mut y: Vec<E> = Vec::new();
    y.try_reserve_exact(len)
        .map_err(|_| Error::Invalid(format!("{F}: cannot allocate {len} outputs")))?;
    // Zeroed rather than uninitialised: the GEMM (beta = 0) and the negated copy write every
    // element, but a plain vector keeps this free of unsafe for one write pass.
    y.resize(len, E::ZERO);
    let xv =
        ArrayView2::from_shape((rows, d), xc.slice()).map_err(|e| Error::Invalid(e.to_string()))?;
    {
        let yv = ArrayViewMut2::from_shape((rows, f).strides((2 * f, 1)), &mut y[..])
            .map_err(|e| Error::Invalid(e.to_string()))?;
        gemm(E::ZERO, yv, E::ONE, xv, wc.view())?;
    }
    dispatch(simd::active(), HedgehogRows { y: &mut y, f, bias });
    ArrayD::from_shape_vec(IxDyn(&shape), y).map_err(|e| Error::Invalid(e.to_string()))
}

struct HedgehogRows<'a, E> {
    y: &'a mut [E],
    f: usize,
    bias: Option<&'a [E]>,
}

impl<E: Lanes> Kernel<E> for HedgehogRows<'_, E> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = E>>(self) {
        let f = self.f;
        for row in self.y.chunks_exact_mut(2 * f) {
            let (pos, neg) = row.split_at_mut(f);
            if let Some(b) = self.bias {
                pos.iter_mut().zip(b).for_each(|(p, &b)| *p = *p + b);
            }
            neg.iter_mut()
                .zip(pos.iter())
                .for_each(|(n, &p)| *n = E::ZERO - p);
            softmax_in_place_on::<S>(pos);
            softmax_in_place_on::<S>(neg);
        }
    }
}
