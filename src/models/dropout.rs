//! Inverted dropout with a counter-based mask, for the hot path.
//!
//! burn's [`Dropout`] draws one Bernoulli sample per element from its
//! process-wide generator, one element at a time, and multiplies twice; in
//! the CNN-Transformer that was a tenth of a training step. Here one seed is
//! drawn from the same generator per call (so `Device::seed` still fixes
//! every mask) and element `i` is kept when a 32-bit hash of `i` keyed by
//! the seed ([`Mask::kept`]) falls under the keep probability: independent
//! of thread count, parallel, hashed 64 elements at a time in vector lanes,
//! and one multiplication.
//!
//! Sub-networks that run side by side take their seeds from streams of
//! their own ([`with_seed_stream`]) instead, so that the order in which two
//! threads reach their dropout layers cannot change any mask.

use burn::nn::Dropout;
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use rayon::prelude::*;
use std::cell::Cell;

/// Applies `layer` as burn's [`Dropout`] would (training only, on the
/// autodiff device), with a counter-based mask.
pub fn dropout<const D: usize>(layer: &Dropout, x: Tensor<D>) -> Tensor<D> {
    match Mask::draw(layer, &x.device()) {
        Some(mask) => apply_mask(x, mask),
        None => x,
    }
}

/// `x` times the 0 or `1 / keep` of `mask` at each (flattened) position.
pub fn apply_mask<const D: usize>(x: Tensor<D>, mask: Mask) -> Tensor<D> {
    let (device, dims) = (x.device(), x.dims());
    x * Tensor::<D>::from_data(TensorData::new(keep_mask(dims.iter().product(), mask), dims), &device)
}

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
    /// The mask `layer` applies now, drawing its seed from burn's
    /// generator; `None` where it applies none (inference, probability 0).
    pub fn draw(layer: &Dropout, device: &Device) -> Option<Mask> {
        if !layer.training.is_enabled() || !device.is_autodiff() || layer.prob == 0.0 {
            return None;
        }
        Some(Mask::new(draw_seed(device), 1.0 - layer.prob))
    }

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

thread_local! {
    /// The current thread's seed stream: its base and the next counter.
    static STREAM: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
}

/// Runs `f` with every dropout seed it draws on this thread taken, in
/// order, from the stream that `seed` starts, not from burn's generator.
/// Streams nest: a task that rayon runs on this thread while `f` waits
/// sets its own stream and restores this one when it returns.
pub fn with_seed_stream<T>(seed: u64, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<(u64, u64)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            STREAM.set(self.0);
        }
    }
    let _restore = Restore(STREAM.replace(Some((seed, 0))));
    f()
}

/// The next seed of this thread's stream, or else from burn's generator.
fn draw_seed(device: &Device) -> u64 {
    match STREAM.get() {
        Some((base, next)) => {
            STREAM.set(Some((base, next + 1)));
            splitmix64(base ^ splitmix64(next))
        }
        None => generator_seed(device),
    }
}

/// 48 random bits from burn's seeded generator: a dropout seed, or the
/// start of a [`with_seed_stream`] stream.
pub fn generator_seed(device: &Device) -> u64 {
    let draws = Tensor::<1>::random([2], Distribution::Uniform(0.0, 1.0), device).into_data();
    let draws = draws.try_to_vec::<f32>().expect("uniform f32 draws read back as f32");
    draws.iter().fold(0u64, |seed, &u| (seed << 24) | (u * (1 << 24) as f32) as u64)
}

/// `1 / keep` where element `i` is kept, else 0.
fn keep_mask(len: usize, mask: Mask) -> Vec<f32> {
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

/// `hashes[k] = lowbias32(key, first + k)`, in AVX2 lanes where the CPU
/// has them (the same integers either way).
fn hash_run(key: u32, first: u32, hashes: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { hash_run_avx2(key, first, hashes) };
    }
    hash_run_portable(key, first, hashes);
}

#[inline(always)]
fn hash_run_portable(key: u32, first: u32, hashes: &mut [u32]) {
    for (k, hash) in (0u32..).zip(hashes.iter_mut()) {
        *hash = lowbias32(key, first.wrapping_add(k));
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn hash_run_avx2(key: u32, first: u32, hashes: &mut [u32]) {
    hash_run_portable(key, first, hashes);
}

/// SplitMix64 (Steele, Lea and Flood 2014) of the counter `x`.
fn splitmix64(x: u64) -> u64 {
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

    #[test]
    fn seeded_device_gives_the_same_mask_and_inference_passes_through() {
        let _exclusive = crate::training::exclusive();
        let layer = burn::nn::DropoutConfig::new(0.5).init();
        let device = Device::flex().autodiff();
        let x = Tensor::<2>::ones([8, 64], &device);
        let run = |seed| {
            device.seed(seed);
            dropout(&layer, x.clone()).into_data().try_to_vec::<f32>().unwrap()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        let plain = Tensor::<2>::ones([8, 64], &Device::flex());
        assert_eq!(dropout(&layer, plain.clone()).into_data(), plain.into_data());
    }

    /// A stream gives the same seeds whatever burn's generator did before,
    /// distinct seeds for distinct streams, and nests.
    #[test]
    fn seed_streams_are_independent_of_the_generator_and_nest() {
        let _exclusive = crate::training::exclusive();
        let device = Device::flex().autodiff();
        let draws = |n: usize| (0..n).map(|_| draw_seed(&device)).collect::<Vec<_>>();
        device.seed(1);
        let first = with_seed_stream(5, || draws(3));
        device.seed(2);
        let _ = draws(4);
        assert_eq!(with_seed_stream(5, || draws(3)), first);
        assert_ne!(with_seed_stream(6, || draws(3)), first);
        let nested = with_seed_stream(5, || {
            let a = draws(1);
            let inner = with_seed_stream(6, || draws(1));
            (a, inner, draws(2))
        });
        assert_eq!(nested.0, first[..1]);
        assert_eq!(nested.1, with_seed_stream(6, || draws(1)));
        assert_eq!(nested.2, first[1..]);
        device.seed(3);
        let outside = draws(2);
        device.seed(3);
        assert_eq!(draws(2), outside, "outside a stream, seeds come from burn's generator");
    }
}
