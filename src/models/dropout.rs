//! Inverted dropout with a counter-based mask, for the hot path.
//!
//! burn's [`Dropout`] draws one Bernoulli sample per element from its
//! process-wide generator, one element at a time, and multiplies twice; in
//! the CNN-Transformer that was a tenth of a training step. Here one seed is
//! drawn from the same generator per call (so `Device::seed` still fixes
//! every mask) and element `i` is kept when its half of SplitMix64 of
//! `seed + i / 2` falls under the keep probability: independent of thread
//! count, parallel, one hash per two elements and one multiplication.
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

    /// Whether element `i` survives: the high 32 bits of the pair's hash
    /// decide for even `i`, the low 32 bits for odd.
    pub fn kept(&self, i: usize) -> bool {
        self.pair(i / 2)[i % 2]
    }

    /// Whether elements `2 p` and `2 p + 1` survive, from one hash.
    fn pair(&self, p: usize) -> [bool; 2] {
        let hash = splitmix64(self.seed.wrapping_add(p as u64));
        [(hash >> 32) < self.threshold, (hash & 0xFFFF_FFFF) < self.threshold]
    }

    /// Calls `f(j, value, kept)` for each `values[j]`, element `start + j`
    /// of the mask: [`Mask::kept`], hashing once per pair of elements.
    pub fn apply(&self, start: usize, values: &mut [f32], mut f: impl FnMut(usize, &mut f32, bool)) {
        let len = values.len();
        let skip = (start % 2).min(len);
        let (head, rest) = values.split_at_mut(skip);
        if let Some(v) = head.first_mut() {
            f(0, v, self.kept(start));
        }
        let mut pairs = rest.chunks_exact_mut(2);
        for (p, pair) in (&mut pairs).enumerate() {
            let [first, second] = self.pair((start + skip) / 2 + p);
            let j = skip + 2 * p;
            f(j, &mut pair[0], first);
            f(j + 1, &mut pair[1], second);
        }
        if let [v] = pairs.into_remainder() {
            f(len - 1, v, self.kept(start + len - 1));
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
    let draws = draws.try_to_vec::<f32>().unwrap_or_default();
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
        // Pairwise hashing gives the per-element definition, from any start.
        let m = Mask::new(9, 0.5);
        for (start, len) in [(0, 9), (3, 8), (5, 1), (6, 0), (7, 2)] {
            let mut seen = vec![0.0f32; len];
            m.apply(start, &mut seen, |j, v, kept| *v = if kept { 1.0 + j as f32 } else { -1.0 - j as f32 });
            let expected: Vec<f32> = (0..len).map(|j| if m.kept(start + j) { 1.0 + j as f32 } else { -1.0 - j as f32 }).collect();
            assert_eq!(seen, expected, "start {start}, len {len}");
        }
        let halves: Vec<bool> = (0..2000).map(|i| m.kept(i)).collect();
        assert!(halves.chunks(2).any(|p| p[0] != p[1]), "the two halves of a hash decide apart");
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
