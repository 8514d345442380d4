//! Inverted dropout with a counter-based mask, for the hot path.
//!
//! burn's [`Dropout`] draws one Bernoulli sample per element from its
//! process-wide generator, one element at a time, and multiplies twice; in
//! the CNN-Transformer that was a tenth of a training step. Here one seed is
//! drawn from the same generator per call (so `Device::seed` still fixes
//! every mask) and element `i` is kept when SplitMix64 of `seed + i` falls
//! under the keep probability: independent of thread count, parallel, and
//! one multiplication.

use burn::nn::Dropout;
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use rayon::prelude::*;

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

    /// Whether element `i` survives.
    pub fn kept(&self, i: usize) -> bool {
        (splitmix64(self.seed.wrapping_add(i as u64)) >> 32) < self.threshold
    }
}

/// 48 random bits from burn's seeded generator.
fn draw_seed(device: &Device) -> u64 {
    let draws = Tensor::<1>::random([2], Distribution::Uniform(0.0, 1.0), device).into_data();
    let draws = draws.try_to_vec::<f32>().unwrap_or_default();
    draws.iter().fold(0u64, |seed, &u| (seed << 24) | (u * (1 << 24) as f32) as u64)
}

/// `1 / keep` where element `i` is kept, else 0.
fn keep_mask(len: usize, mask: Mask) -> Vec<f32> {
    let mut values = vec![0.0f32; len];
    values.par_chunks_mut(1 << 16).enumerate().for_each(|(chunk, values)| {
        let start = chunk << 16;
        for (i, v) in values.iter_mut().enumerate() {
            *v = if mask.kept(start + i) { mask.scale } else { 0.0 };
        }
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
}
