//! Turning preprocessed clips into training tensors: batch order, parallel
//! augmentation with per-sample streams, and channels-first stacking.

use crate::data::clip::{channels_first, Clip};
use crate::data::transforms::{augment_batch, TransformStep};
use crate::rng::stream;
use burn::prelude::*;
use rand::seq::SliceRandom;

/// The batches of one epoch: `indices` shuffled by the stream
/// `(seed, "shuffle", epoch)`, cut into `batch_size` pieces; a last, smaller
/// piece is dropped when `drop_last` (the SSL rule) or when it would hold a
/// single sample (batch norm cannot train on one).
pub fn epoch_batches(indices: &[usize], batch_size: usize, drop_last: bool, seed: u64, epoch: u64) -> Vec<Vec<usize>> {
    let mut order = indices.to_vec();
    order.shuffle(&mut stream(seed, "shuffle", epoch));
    let mut batches: Vec<Vec<usize>> = order.chunks(batch_size.max(1)).map(<[usize]>::to_vec).collect();
    if batches.last().is_some_and(|b| b.len() < batch_size && (drop_last || b.len() < 2)) {
        batches.pop();
    }
    batches
}

/// Fixed-order batches for evaluation.
pub fn eval_batches(indices: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    indices.chunks(batch_size.max(1)).map(<[usize]>::to_vec).collect()
}

/// One modality's clips of the samples in `batch`, augmented when `steps`
/// is non-empty, as a `(B, C, T, J)` tensor on `device`.
pub fn batch_tensor(clips: &[Clip], batch: &[usize], steps: &[TransformStep], augmentation: Option<(u64, &str, u64)>, device: &Device) -> Tensor<4> {
    let picked: Vec<&Clip> = batch.iter().map(|&i| &clips[i]).collect();
    let augmented;
    let views: Vec<&Clip> = match augmentation {
        Some((seed, view, epoch)) if !steps.is_empty() => {
            augmented = augment_batch(steps, &picked, batch, seed, view, epoch);
            augmented.iter().collect()
        }
        _ => picked,
    };
    stack(&views, device)
}

/// Stacks clips (time-major) into one channels-first tensor; every clip must
/// have the same shape (preprocessing resamples to a fixed length).
pub fn stack(clips: &[&Clip], device: &Device) -> Tensor<4> {
    let (t, j, c) = clips[0].dim();
    let mut data: Vec<f32> = Vec::with_capacity(clips.len() * t * j * c);
    for clip in clips {
        data.extend(channels_first(clip).iter());
    }
    Tensor::from_data(TensorData::new(data, [clips.len(), c, t, j]), device)
}

/// Labels of a batch as an Int tensor.
pub fn label_tensor(labels: &[usize], batch: &[usize], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = batch.iter().map(|&i| labels[i] as i64).collect();
    Tensor::from_data(TensorData::new(values, [batch.len()]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_the_split_once_and_follow_the_seed() {
        let idx: Vec<usize> = (10..75).collect();
        let b = epoch_batches(&idx, 16, false, 1, 0);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![16, 16, 16, 16]); // a lone sample is dropped
        let b = epoch_batches(&idx[..63], 16, false, 1, 0);
        assert_eq!(b.last().map(Vec::len), Some(15));
        assert_eq!(epoch_batches(&idx[..63], 16, true, 1, 0).len(), 3);
        assert_eq!(epoch_batches(&idx, 16, true, 1, 0), epoch_batches(&idx, 16, true, 1, 0));
        assert_ne!(epoch_batches(&idx, 16, true, 1, 0), epoch_batches(&idx, 16, true, 1, 1));
    }
}
