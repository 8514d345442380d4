//! Dropout masks as seeds: whether element `i` of an activation is kept is
//! a hash of `i` keyed by the mask's seed, so a kernel computes any part of
//! the mask where it needs it, in any order, on any thread, and the mask
//! never exists in memory.

use rayon::prelude::*;

/// One call's dropout mask, as a seed: element `i` of the (flattened)
/// activation is kept, and scaled by `1 / keep`, where [`Mask::kept`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mask {
    pub seed: u64,
    pub keep: f64,
    threshold: u64,
    pub scale: f32,
}

impl Mask {
    /// Keeps each element with probability `keep` (1 keeps all).
    pub fn new(seed: u64, keep: f64) -> Mask {
        Mask { seed, keep, threshold: (keep * 2f64.powi(32)) as u64, scale: (1.0 / keep) as f32 }
    }

    /// Whether element `i` survives: a 32-bit hash of its index, keyed by
    /// the seed (and the index's high half), falls below the threshold.
    pub fn kept(&self, i: usize) -> bool {
        self.survives(lowbias32(self.key(i >> 32), i as u32))
    }

    /// The key shared by the 2^32 elements whose index has this high half.
    fn key(&self, high: usize) -> u32 {
        splitmix64(self.seed.wrapping_add(high as u64)) as u32
    }

    fn survives(&self, hash: u32) -> bool {
        u64::from(hash) < self.threshold
    }

    /// Calls `f(j, value, kept)` for each `values[j]`, element `start + j`
    /// of the mask: [`Mask::kept`], with the hashes of 64 elements at a
    /// time computed in one loop of 32-bit arithmetic, which vectorises.
    pub fn apply(&self, start: usize, values: &mut [f32], mut f: impl FnMut(usize, &mut f32, bool)) {
        const RUN: usize = 64;
        let mut hashes = [0u32; RUN];
        for (b, block) in values.chunks_mut(RUN).enumerate() {
            let first = start + b * RUN;
            let high = first >> 32;
            if (first + block.len() - 1) >> 32 != high {
                // A block across a 2^32 boundary: element by element.
                block.iter_mut().enumerate().for_each(|(k, v)| f(b * RUN + k, v, self.kept(first + k)));
                continue;
            }
            hash_run(self.key(high), first as u32, &mut hashes[..block.len()]);
            // One lane width (u32 against u32), so the loop vectorises
            // instead of branching on coin tosses.
            let (limit, all) = (self.threshold.min(u64::from(u32::MAX)) as u32, self.threshold > u64::from(u32::MAX));
            for (k, (v, &hash)) in block.iter_mut().zip(&hashes).enumerate() {
                f(b * RUN + k, v, all | (hash < limit));
            }
        }
    }
}

/// `1 / keep` where element `i` is kept, else 0 (the composed dropout path).
pub fn keep_mask(len: usize, mask: Mask) -> Vec<f32> {
    let mut values = vec![0.0f32; len];
    values.par_chunks_mut(1 << 16).enumerate().for_each(|(chunk, values)| {
        mask.apply(chunk << 16, values, |_, v, kept| *v = if kept { mask.scale } else { 0.0 });
    });
    values
}

/// lowbias32 (C. Wellons' integer hash) of the index scrambled by a
/// Weyl step and the key: 32-bit multiplies and shifts only, so a run of
/// indices hashes in vector lanes (SplitMix64's 64-bit products did not).
#[inline(always)]
fn lowbias32(key: u32, i: u32) -> u32 {
    let mut x = i.wrapping_mul(0x9E37_79B9) ^ key;
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846C_A68B);
    x ^ (x >> 16)
}

/// `hashes[k] = lowbias32(key, first + k)`, in the widest lanes the
/// kernels may use ([`crate::isa::vectorised`]; the same integers either way).
fn hash_run(key: u32, first: u32, hashes: &mut [u32]) {
    crate::isa::vectorised(
        #[inline(always)]
        || hash_run_portable(key, first, hashes),
    )
}

#[inline(always)]
fn hash_run_portable(key: u32, first: u32, hashes: &mut [u32]) {
    for (k, hash) in (0u32..).zip(hashes.iter_mut()) {
        *hash = lowbias32(key, first.wrapping_add(k));
    }
}

/// SplitMix64 (Steele, Lea and Flood 2014) of the counter `x`.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_configured_share_scaled_up() {
        let mask = keep_mask(200_000, Mask::new(7, 0.9));
        let kept = mask.iter().filter(|&&v| v > 0.0).count() as f64 / mask.len() as f64;
        assert!((kept - 0.9).abs() < 0.005, "kept {kept}");
        assert!(mask.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));
        assert_eq!(keep_mask(200_000, Mask::new(7, 0.9)), mask);
        assert_ne!(keep_mask(200_000, Mask::new(8, 0.9)), mask);
        // Hashing in runs gives the per-element definition, from any start
        // (across the 64-element runs and a 2^32 boundary too).
        let m = Mask::new(9, 0.5);
        for (start, len) in [(0, 9), (3, 8), (5, 1), (6, 0), (7, 2), (10, 200), ((1 << 32) - 70, 140)] {
            let mut seen = vec![0.0f32; len];
            m.apply(start, &mut seen, |j, v, kept| *v = if kept { 1.0 + j as f32 } else { -1.0 - j as f32 });
            let expected: Vec<f32> = (0..len).map(|j| if m.kept(start + j) { 1.0 + j as f32 } else { -1.0 - j as f32 }).collect();
            assert_eq!(seen, expected, "start {start}, len {len}");
        }
        let half = (0..200_000).filter(|&i| m.kept(i)).count() as f64 / 200_000.0;
        assert!((half - 0.5).abs() < 0.005, "kept {half}");
    }
}
