//! Token dispatch to capacity-limited experts (GShard / Switch style) and the gather/combine
//! that move token vectors into (E, C, D) expert buffers and back.

use crate::error::{try_zeroed, Error, Result, Zeroed};
use crate::simd::Lanes;
use ndarray::{Array1, Array2, Array3, ArrayView2, ArrayView3};
use rayon::prelude::*;

/// n zeros, or a ValueError naming the arguments that set n instead of aborting when they cannot
/// be allocated (an allocation failure is not a panic: it would end the Python process). Zeroed
/// pages: `num_experts` counts or (E, C, D) slots cost only what the tokens touch.
/// `size` says which arguments set n ("num_experts = 5"), for the message.
fn alloc<T: Zeroed>(n: Option<usize>, what: &str, size: &str) -> Result<Vec<T>> {
    n.and_then(try_zeroed)
        .ok_or_else(|| Error::Invalid(format!("{what}: {size} is too large to allocate")))
}

fn check_expert(i: i64, experts: usize, what: &str) -> Result<usize> {
    if i < 0 || i as usize >= experts {
        return Err(Error::Invalid(format!(
            "{what}: indices holds expert {i}, outside 0..num_experts = {experts}"
        )));
    }
    Ok(i as usize)
}

/// Slot of each (token, choice) in its expert's buffer, -1 when the expert is full, and the
/// number of assignments each expert received (kept = min(count, capacity)). Priority is
/// choice-major: every token's first choice is placed before any second choice, tokens in order
/// within a choice (Switch / GShard), so a token loses its secondary experts first.
pub fn moe_dispatch(
    indices: ArrayView2<'_, i64>,
    experts: usize,
    capacity: Option<usize>,
) -> Result<(Array2<i64>, Array1<i64>)> {
    let (t, k) = indices.dim();
    let mut pos = Array2::from_elem((t, k), -1i64);
    let mut counts = Array1::from_vec(alloc::<i64>(
        Some(experts),
        "moe_dispatch",
        &format!("num_experts = {experts}"),
    )?);
    for c in 0..k {
        for r in 0..t {
            let e = check_expert(indices[[r, c]], experts, "moe_dispatch")?;
            let p = counts[e];
            if capacity.is_none_or(|cap| (p as usize) < cap) {
                pos[[r, c]] = p;
            }
            counts[e] += 1;
        }
    }
    Ok((pos, counts))
}

/// For each expert slot, 1 + the token that fills it (0: empty), validating indices and positions.
fn slot_owners(
    indices: ArrayView2<'_, i64>,
    positions: ArrayView2<'_, i64>,
    experts: usize,
    capacity: usize,
    what: &str,
) -> Result<Vec<usize>> {
    if positions.dim() != indices.dim() {
        return Err(Error::Shape {
            what: "positions",
            expected: indices.shape().to_vec(),
            got: positions.shape().to_vec(),
        });
    }
    let mut owner = alloc::<usize>(
        experts.checked_mul(capacity),
        what,
        &format!("num_experts x capacity = {experts} x {capacity}"),
    )?;
    for ((r, c), &p) in positions.indexed_iter() {
        let e = check_expert(indices[[r, c]], experts, what)?;
        if p == -1 {
            continue;
        }
        if p < 0 || p as usize >= capacity {
            return Err(Error::Invalid(format!(
                "{what}: positions holds {p}, outside 0..capacity = {capacity} (or -1 for dropped)"
            )));
        }
        let slot = &mut owner[e * capacity + p as usize];
        if *slot != 0 {
            return Err(Error::Invalid(format!(
                "{what}: positions assigns slot {p} of expert {e} twice"
            )));
        }
        *slot = r + 1;
    }
    Ok(owner)
}

/// moe_combine's validation: every index and position in range, no slot claimed twice, by
/// sorting the kept (expert, position) pairs (T k of them: expert_out may be huge or empty).
fn check_slots(
    indices: ArrayView2<'_, i64>,
    positions: ArrayView2<'_, i64>,
    experts: usize,
    capacity: usize,
) -> Result<()> {
    let what = "moe_combine";
    if positions.dim() != indices.dim() {
        return Err(Error::Shape {
            what: "positions",
            expected: indices.shape().to_vec(),
            got: positions.shape().to_vec(),
        });
    }
    let mut kept = Vec::with_capacity(indices.len());
    for (&i, &p) in indices.iter().zip(positions.iter()) {
        let e = check_expert(i, experts, what)?;
        if p == -1 {
            continue;
        }
        if p < 0 || p as usize >= capacity {
            return Err(Error::Invalid(format!(
                "{what}: positions holds {p}, outside 0..capacity = {capacity} (or -1 for dropped)"
            )));
        }
        kept.push((e, p));
    }
    kept.sort_unstable();
    if let Some(w) = kept.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::Invalid(format!(
            "{what}: positions assigns slot {} of expert {} twice",
            w[0].1, w[0].0
        )));
    }
    Ok(())
}

/// Token vectors x (T, D) into expert buffers (E, C, D); empty slots are 0.
pub fn moe_gather<E: Copy + Send + Sync + Zeroed>(
    x: ArrayView2<'_, E>,
    indices: ArrayView2<'_, i64>,
    positions: ArrayView2<'_, i64>,
    capacity: usize,
    experts: usize,
) -> Result<Array3<E>> {
    let (t, d) = x.dim();
    if indices.nrows() != t {
        return Err(Error::Invalid(format!(
            "moe_gather: indices has {} rows, x has {t} tokens",
            indices.nrows()
        )));
    }
    // NumPy's own bound on an array, empty or not: the extent of its non-zero axes in bytes
    // must fit an isize (an empty (0, 2**62, 1) array would otherwise get overflowed strides).
    let extent = [experts, capacity, d, std::mem::size_of::<E>()]
        .iter()
        .try_fold(1usize, |a, &n| a.checked_mul(n.max(1)))
        .filter(|&b| b <= isize::MAX as usize);
    if extent.is_none() {
        return Err(Error::Invalid(format!(
            "moe_gather: num_experts x capacity x d = {experts} x {capacity} x {d} is too large"
        )));
    }
    let owner = slot_owners(indices, positions, experts, capacity, "moe_gather")?;
    let xs = x.as_standard_layout();
    let size = experts.checked_mul(capacity).and_then(|n| n.checked_mul(d));
    let mut out = alloc::<E>(
        size,
        "moe_gather",
        &format!("num_experts x capacity x d = {experts} x {capacity} x {d}"),
    )?;
    let slots = owner.len();
    if d > 0 && slots > 4 * indices.len() {
        // Far more slots than tokens (a huge capacity or expert count): scatter the kept tokens
        // and leave the zeroed pages of the empty slots untouched, instead of visiting them all.
        for ((r, c), &p) in positions.indexed_iter() {
            if p >= 0 {
                let slot = (indices[[r, c]] as usize * capacity + p as usize) * d;
                out[slot..slot + d]
                    .iter_mut()
                    .zip(xs.row(r))
                    .for_each(|(a, &b)| *a = b);
            }
        }
    } else if d > 0 {
        crate::threads::install(|| {
            out.par_chunks_mut(d)
                .zip(owner.par_iter())
                .for_each(|(o, w)| {
                    if *w > 0 {
                        o.iter_mut().zip(xs.row(*w - 1)).for_each(|(a, &b)| *a = b);
                    }
                })
        });
    }
    Array3::from_shape_vec((experts, capacity, d), out).map_err(|e| Error::Invalid(e.to_string()))
}

/// out[t] = sum_j weights[t, j] * expert_out[indices[t, j], positions[t, j]] over the kept
/// choices (dropped slots add 0), in choice order.
pub fn moe_combine<E: Lanes>(
    expert_out: ArrayView3<'_, E>,
    indices: ArrayView2<'_, i64>,
    positions: ArrayView2<'_, i64>,
    weights: ArrayView2<'_, E>,
) -> Result<Array2<E>> {
    let (experts, capacity, d) = expert_out.dim();
    if weights.dim() != indices.dim() {
        return Err(Error::Shape {
            what: "weights",
            expected: indices.shape().to_vec(),
            got: weights.shape().to_vec(),
        });
    }
    check_slots(indices, positions, experts, capacity)?;
    let eo = expert_out.as_standard_layout();
    let es = eo
        .as_slice()
        .ok_or_else(|| Error::Invalid("internal: layout".into()))?;
    let (t, k) = indices.dim();
    let mut out = vec![E::ZERO; t * d];
    if d > 0 {
        crate::threads::install(|| {
            out.par_chunks_mut(d).enumerate().for_each(|(r, o)| {
                for j in 0..k {
                    let p = positions[[r, j]];
                    if p < 0 {
                        continue;
                    }
                    let slot = (indices[[r, j]] as usize * capacity + p as usize) * d;
                    let w = weights[[r, j]];
                    for (a, &b) in o.iter_mut().zip(&es[slot..slot + d]) {
                        *a = *a + w * b;
                    }
                }
            })
        });
    }
    Array2::from_shape_vec((t, d), out).map_err(|e| Error::Invalid(e.to_string()))
}
