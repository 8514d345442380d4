//! Standardisation without leakage: each channel (or the whole modality)
//! shifted and scaled by statistics fitted on the training split alone, and
//! applied unchanged to validation and test samples. The statistics go into
//! the run record (`run.yaml`), so a result says what its inputs were.

use crate::data::clip::Clip;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// What one pair of statistics covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StandardizePer {
    /// One mean and deviation per channel (pooled over joints and time).
    Channel,
    /// One mean and deviation for the whole modality.
    Modality,
}

/// Fitted statistics of one modality.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardization {
    pub modality: String,
    pub per: StandardizePer,
    /// Training samples the statistics come from.
    pub fitted_on: usize,
    /// Per channel (or one value), in channel order.
    pub mean: Vec<f64>,
    /// Population standard deviations; a constant channel (0) is only
    /// centred.
    pub std: Vec<f64>,
}

impl Standardization {
    /// Fits the statistics of `clips[i]` for `i` in `train`, in f64, in
    /// sample order (so the same split gives the same bits).
    pub fn fit(modality: &str, per: StandardizePer, clips: &[Clip], train: &[usize]) -> Result<Self> {
        let Some(&first) = train.first() else { bail!("modality '{modality}': standardisation needs training samples") };
        let channels = clips[first].dim().2;
        let groups = match per {
            StandardizePer::Channel => channels,
            StandardizePer::Modality => 1,
        };
        let group = |c: usize| if groups == 1 { 0 } else { c };
        let mut sum = vec![0.0f64; groups];
        let mut count = vec![0usize; groups];
        for &i in train {
            for ((_, _, c), &v) in clips[i].indexed_iter() {
                sum[group(c)] += v as f64;
                count[group(c)] += 1;
            }
        }
        let mean: Vec<f64> = sum.iter().zip(&count).map(|(s, &n)| s / n as f64).collect();
        let mut squares = vec![0.0f64; groups];
        for &i in train {
            for ((_, _, c), &v) in clips[i].indexed_iter() {
                let d = v as f64 - mean[group(c)];
                squares[group(c)] += d * d;
            }
        }
        let std = squares.iter().zip(&count).map(|(s, &n)| (s / n as f64).sqrt()).collect();
        Ok(Standardization { modality: modality.to_string(), per, fitted_on: train.len(), mean, std })
    }

    /// Standardises one clip in place.
    pub fn apply(&self, clip: &mut Clip) {
        let single = self.mean.len() == 1;
        for ((_, _, c), v) in clip.indexed_iter_mut() {
            let g = if single { 0 } else { c };
            let scale = if self.std[g] > 0.0 { self.std[g] } else { 1.0 };
            *v = ((*v as f64 - self.mean[g]) / scale) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn clip(values: &[[f32; 2]]) -> Clip {
        Array3::from_shape_fn((values.len(), 1, 2), |(t, _, c)| values[t][c])
    }

    #[test]
    fn statistics_come_from_the_training_samples_only() {
        let clips = vec![clip(&[[1.0, 5.0], [3.0, 5.0]]), clip(&[[100.0, -7.0], [300.0, 9.0]])];
        let s = Standardization::fit("acc", StandardizePer::Channel, &clips, &[0]).unwrap();
        assert_eq!((s.mean.clone(), s.std.clone()), (vec![2.0, 5.0], vec![1.0, 0.0]));
        let mut test = clips[1].clone();
        s.apply(&mut test);
        // Channel 1 is constant on the training split: centred, not scaled.
        assert_eq!(test, clip(&[[98.0, -12.0], [298.0, 4.0]]));
        let whole = Standardization::fit("acc", StandardizePer::Modality, &clips, &[0]).unwrap();
        assert_eq!(whole.mean, vec![3.5]);
        assert!(Standardization::fit("acc", StandardizePer::Modality, &clips, &[]).is_err());
    }
}
