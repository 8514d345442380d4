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
pub use cmkm_kernels::mask::{keep_mask, splitmix64, Mask};
use std::cell::Cell;

/// Applies `layer` as burn's [`Dropout`] would (training only, on the
/// autodiff device), with a counter-based mask.
pub fn dropout<const D: usize>(layer: &Dropout, x: Tensor<D>) -> Tensor<D> {
    match draw_mask(layer, &x.device()) {
        Some(mask) => apply_mask(x, mask),
        None => x,
    }
}

/// `x` times the 0 or `1 / keep` of `mask` at each (flattened) position.
pub fn apply_mask<const D: usize>(x: Tensor<D>, mask: Mask) -> Tensor<D> {
    let (device, dims) = (x.device(), x.dims());
    x * Tensor::<D>::from_data(TensorData::new(keep_mask(dims.iter().product(), mask), dims), &device)
}

/// The mask `layer` applies now, drawing its seed from burn's
/// generator; `None` where it applies none (inference, probability 0).
pub fn draw_mask(layer: &Dropout, device: &Device) -> Option<Mask> {
    if !layer.training.is_enabled() || !device.is_autodiff() || layer.prob == 0.0 {
        return None;
    }
    Some(Mask::new(draw_seed(device), 1.0 - layer.prob))
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
    let draws = Tensor::<1>::random([2], Distribution::Uniform(0.0, 1.0), &crate::device::generator(device)).into_data();
    let draws = draws.try_to_vec::<f32>().expect("uniform f32 draws read back as f32");
    draws.iter().fold(0u64, |seed, &u| (seed << 24) | (u * (1 << 24) as f32) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

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
