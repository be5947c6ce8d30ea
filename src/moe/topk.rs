//! Partial selection without sorting: the k largest keys of a row (an insertion scan, and k
//! vector max rounds on the SIMD path), largest first, ties to the lower index (deterministic,
//! unlike an introselect such as `np.argpartition`).

use crate::simd::{Elem, Simd};

/// Fills `ids[..k]` / `vals[..k]` with the k largest keys, largest first, equal keys in index
/// order. The keys must not be NaN (the callers reject NaN input); -inf keys are selected only
/// when fewer than k keys are larger. Cost: one comparison per key plus an insertion (at most k
/// moves) for each key that enters, and a block of 16 keys below the current k-th is skipped
/// after one vectorisable "any key above the k-th" test.
#[inline(always)]
pub fn top_k<E: Elem>(keys: &[E], k: usize, ids: &mut [usize], vals: &mut [E]) {
    debug_assert!(k >= 1 && k <= keys.len() && ids.len() >= k && vals.len() >= k);
    let mut len = 0;
    let mut base = 0;
    for block in keys.chunks(16) {
        if len == k {
            // An or of comparisons vectorises (a running max is a serial chain).
            let kth = vals[k - 1];
            let mut hit = false;
            for &x in block {
                hit |= x > kth;
            }
            if !hit {
                base += block.len();
                continue;
            }
        }
        for (off, &x) in block.iter().enumerate() {
            if len == k && x <= vals[k - 1] {
                continue;
            }
            // Insert before the first strictly smaller key: an equal key keeps its earlier place.
            let mut p = if len == k { k - 1 } else { len };
            while p > 0 && vals[p - 1] < x {
                vals[p] = vals[p - 1];
                ids[p] = ids[p - 1];
                p -= 1;
            }
            vals[p] = x;
            ids[p] = base + off;
            if len < k {
                len += 1;
            }
        }
        base += block.len();
    }
}

/// Bits of the lanes of one vector.
#[inline(always)]
fn lane_bits<S: Simd>() -> u64 {
    if S::LANES >= 64 {
        u64::MAX
    } else {
        (1u64 << S::LANES) - 1
    }
}

/// (no NaN and no +inf, max) of a row in one vector pass.
#[inline(always)]
pub fn scan_row<S: Simd>(row: &[S::E]) -> (bool, S::E) {
    let (n, w, full) = (row.len(), S::LANES, lane_bits::<S>());
    let mut mx = S::splat(S::E::NEG_INFINITY);
    let mut nan = 0u64;
    let p = row.as_ptr();
    let mut j = 0;
    // SAFETY: every load reads below n (the last one through the masked path).
    unsafe {
        while j + w <= n {
            let v = S::load(p.add(j));
            nan |= !S::eq_mask(v, v) & full;
            mx = S::max(mx, v);
            j += w;
        }
        if j < n {
            let v = S::load_partial(p.add(j), n - j, S::E::NEG_INFINITY);
            nan |= !S::eq_mask(v, v) & full;
            mx = S::max(mx, v);
        }
    }
    let m = S::reduce_max(mx);
    (nan == 0 && m < S::E::INFINITY, m)
}

/// The vector of keys starting at j < len, -inf beyond the end. (Functions, not closures: a
/// closure would not inherit the caller's target features and its intrinsics become calls.)
#[inline(always)]
fn load<S: Simd>(keys: &[S::E], j: usize) -> S::V {
    let (n, w) = (keys.len(), S::LANES);
    debug_assert!(j < n);
    // SAFETY: lanes j..min(j + w, n) are inside keys; the masked path reads only those.
    unsafe {
        if j + w <= n {
            S::load(keys.as_ptr().add(j))
        } else {
            S::load_partial(keys.as_ptr().add(j), n - j, S::E::NEG_INFINITY)
        }
    }
}

/// The first index >= from holding exactly `target`.
#[inline(always)]
fn first_eq<S: Simd>(keys: &[S::E], target: S::E, from: usize) -> Option<usize> {
    let (n, w) = (keys.len(), S::LANES);
    let t = S::splat(target);
    let mut j = (from / w) * w;
    while j < n {
        let mut bits = S::eq_mask(load::<S>(keys, j), t);
        if j < from {
            bits &= !((1u64 << (from - j)) - 1);
        }
        if bits != 0 {
            return Some(j + bits.trailing_zeros() as usize);
        }
        j += w;
    }
    None
}

/// The same selection as `top_k` in k rounds over the row's vectors, without writing to it: the
/// next key after (m, i) in (key descending, index ascending) order is the first key equal to m
/// beyond index i, else the largest key below m (a max over the keys below m, the others
/// blended to -inf), then its first index. One pass per round plus a find pass: no data-dependent branch per element and no store-to-load stalls,
/// which beats the insertion scan for the small k of MoE routers. Returns false (the caller
/// then uses `top_k`) when a round reaches -inf, which has no value below it.
#[inline(always)]
pub fn top_k_lanes<S: Simd>(keys: &[S::E], k: usize, ids: &mut [usize], vals: &mut [S::E]) -> bool {
    let (n, w) = (keys.len(), S::LANES);
    debug_assert!(k <= n);
    let neg = S::E::NEG_INFINITY;
    let mut mx = S::splat(neg);
    let mut j = 0;
    while j < n {
        mx = S::max(mx, load::<S>(keys, j));
        j += w;
    }
    let mut m = S::reduce_max(mx);
    for s in 0..k {
        if m == neg {
            return false;
        }
        let at = if s == 0 {
            first_eq::<S>(keys, m, 0)
        } else {
            match first_eq::<S>(keys, m, ids[s - 1] + 1) {
                Some(t) => Some(t),
                None => {
                    let (t, fill) = (S::splat(m), S::splat(neg));
                    let mut mx = fill;
                    let mut j = 0;
                    while j < n {
                        mx = S::max(mx, S::below_or(load::<S>(keys, j), t, fill));
                        j += w;
                    }
                    m = S::reduce_max(mx);
                    if m == neg {
                        return false;
                    }
                    first_eq::<S>(keys, m, 0)
                }
            }
        };
        let Some(at) = at else { return false };
        ids[s] = at;
        vals[s] = m;
    }
    true
}

/// Sorts (weight, id) pairs by weight descending, then id ascending (insertion sort: k is small;
/// k - 1 comparisons when already sorted).
#[inline(always)]
pub fn sort_by_weight<W: PartialOrd + Copy, I: PartialOrd + Copy>(w: &mut [W], ids: &mut [I]) {
    for i in 1..w.len() {
        let (wi, ii) = (w[i], ids[i]);
        let mut p = i;
        while p > 0 && (w[p - 1] < wi || (w[p - 1] == wi && ids[p - 1] > ii)) {
            w[p] = w[p - 1];
            ids[p] = ids[p - 1];
            p -= 1;
        }
        w[p] = wi;
        ids[p] = ii;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stable descending argsort, first k: the definition.
    fn naive(keys: &[f64], k: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..keys.len()).collect();
        idx.sort_by(|&a, &b| keys[b].partial_cmp(&keys[a]).unwrap().then(a.cmp(&b)));
        idx.truncate(k);
        idx
    }

    #[test]
    fn matches_stable_argsort() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for n in [1usize, 2, 5, 15, 16, 17, 31, 32, 33, 64, 100, 257] {
            for k in [1usize, 2, 3, 8, 16] {
                if k > n {
                    continue;
                }
                for levels in [3u64, 1000] {
                    // Few distinct levels makes many ties; -inf included.
                    let keys: Vec<f64> = (0..n)
                        .map(|_| {
                            s ^= s << 13;
                            s ^= s >> 7;
                            s ^= s << 17;
                            let v = (s % levels) as f64;
                            if v == 0.0 {
                                f64::NEG_INFINITY
                            } else {
                                v
                            }
                        })
                        .collect();
                    let (mut ids, mut vals) = (vec![0; k], vec![0.0; k]);
                    top_k(&keys, k, &mut ids, &mut vals);
                    assert_eq!(ids, naive(&keys, k), "n={n} k={k}");
                    let lanes = top_k_lanes::<crate::simd::scalar::ScalarF64>(
                        &keys, k, &mut ids, &mut vals,
                    );
                    if lanes {
                        assert_eq!(ids, naive(&keys, k), "lanes n={n} k={k}");
                    }
                }
            }
        }
    }

    struct Lanes64<'a> {
        keys: &'a [f64],
        k: usize,
    }
    impl crate::simd::Kernel<f64> for Lanes64<'_> {
        type Output = Option<Vec<usize>>;
        fn run<S: Simd<E = f64>>(self) -> Option<Vec<usize>> {
            let (mut ids, mut vals) = (vec![0; self.k], vec![0.0; self.k]);
            top_k_lanes::<S>(self.keys, self.k, &mut ids, &mut vals).then_some(ids)
        }
    }
    struct Lanes32<'a> {
        keys: &'a [f32],
        k: usize,
    }
    impl crate::simd::Kernel<f32> for Lanes32<'_> {
        type Output = Option<Vec<usize>>;
        fn run<S: Simd<E = f32>>(self) -> Option<Vec<usize>> {
            let (mut ids, mut vals) = (vec![0; self.k], vec![0.0; self.k]);
            top_k_lanes::<S>(self.keys, self.k, &mut ids, &mut vals).then_some(ids)
        }
    }

    /// The vector selection on every ISA against the definition, on lengths around each vector
    /// width, with ties; it may decline (None) only when -inf keys are reached.
    #[test]
    fn lanes_match_on_every_isa() {
        let mut s = 0x2545_f491_4f6c_dd1du64;
        for isa in crate::simd::Isa::supported() {
            for n in [1usize, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65, 256] {
                for k in [1usize, 2, 8] {
                    if k > n {
                        continue;
                    }
                    for levels in [2u64, 5, 1 << 20] {
                        let keys: Vec<f64> = (0..n)
                            .map(|_| {
                                s ^= s << 13;
                                s ^= s >> 7;
                                s ^= s << 17;
                                (s % levels) as f64 - 1.0
                            })
                            .collect();
                        let want = naive(&keys, k);
                        let got = crate::simd::dispatch(isa, Lanes64 { keys: &keys, k });
                        assert_eq!(got.as_ref(), Some(&want), "{isa:?} f64 n={n} k={k}");
                        let k32: Vec<f32> = keys.iter().map(|&v| v as f32).collect();
                        let got = crate::simd::dispatch(isa, Lanes32 { keys: &k32, k });
                        assert_eq!(got.as_ref(), Some(&want), "{isa:?} f32 n={n} k={k}");
                    }
                }
            }
            let keys = [f64::NEG_INFINITY, 1.0, f64::NEG_INFINITY];
            assert_eq!(
                crate::simd::dispatch(isa, Lanes64 { keys: &keys, k: 2 }),
                None
            );
        }
    }

    #[test]
    fn weight_sort_breaks_ties_by_id() {
        let mut w = vec![0.25, 0.5, 0.25, 0.5];
        let mut ids = vec![7, 9, 3, 2];
        sort_by_weight(&mut w, &mut ids);
        assert_eq!(ids, vec![2, 9, 3, 7]);
        assert_eq!(w, vec![0.5, 0.5, 0.25, 0.25]);
    }
}
