//! The 1-nearest-neighbour baseline: Euclidean distance on flattened
//! preprocessed features of one modality, gallery = train split, queries =
//! test split. It calibrates the synthetic set's difficulty and is the floor
//! every learned model must beat.

use crate::data::clip::channels_first;
use crate::data::Dataset;
use anyhow::Result;
use ndarray::Array3;
use rayon::prelude::*;
use serde::Serialize;

/// 1-NN test accuracy of one modality.
#[derive(Debug, Clone, Serialize)]
pub struct NearestNeighbour {
    pub modality: String,
    pub protocol: String,
    pub gallery: usize,
    pub queries: usize,
    pub accuracy: f64,
}

/// Accuracy of a 1-NN classifier (ties go to the earliest gallery item).
pub fn one_nn_accuracy(gallery: &[&[f32]], gallery_labels: &[usize], queries: &[&[f32]], query_labels: &[usize]) -> f64 {
    let correct: usize = queries
        .par_iter()
        .zip(query_labels)
        .filter(|(q, &label)| {
            let mut best = (f64::INFINITY, usize::MAX);
            for (g, &l) in gallery.iter().zip(gallery_labels) {
                let d: f64 = q.iter().zip(g.iter()).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
                if d < best.0 {
                    best = (d, l);
                }
            }
            best.1 == label
        })
        .count();
    correct as f64 / queries.len().max(1) as f64
}

/// Runs the baseline for every loaded modality under `protocol`.
pub fn nearest_neighbour_baseline(ds: &Dataset, protocol: &str) -> Result<Vec<NearestNeighbour>> {
    ds.ensure_clean()?;
    let split = ds.decl.split(protocol, &ds.meta)?;
    let features = ds.prepare(&split, ds.decl.protocol(protocol)?)?.clips;
    let labels = |idx: &[usize]| idx.iter().map(|&i| ds.meta[i].label).collect::<Vec<_>>();
    Ok(ds
        .modalities
        .iter()
        .zip(&features)
        .map(|(m, feats)| {
            // Flattened in the channels-first layout models see.
            let flat_feats: Vec<Array3<f32>> = feats.iter().map(channels_first).collect();
            let flat = |idx: &[usize]| idx.iter().map(|&i| as_slice(&flat_feats[i])).collect::<Vec<_>>();
            NearestNeighbour {
                modality: m.name.clone(),
                protocol: protocol.to_string(),
                gallery: split.train.len(),
                queries: split.test.len(),
                accuracy: one_nn_accuracy(&flat(&split.train), &labels(&split.train), &flat(&split.test), &labels(&split.test)),
            }
        })
        .collect())
}

fn as_slice(a: &Array3<f32>) -> &[f32] {
    a.as_slice().expect("preprocessed arrays are contiguous")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_neighbour_by_hand() {
        let g: Vec<&[f32]> = vec![&[0.0, 0.0], &[10.0, 0.0], &[0.0, 10.0]];
        let q: Vec<&[f32]> = vec![&[1.0, 1.0], &[9.0, 1.0], &[1.0, 9.0], &[6.0, 0.0]];
        // Nearest: 0, 1, 2, 1 -> labels 0, 1, 2, 1; truth 0, 1, 0, 1 -> 3/4.
        assert_eq!(one_nn_accuracy(&g, &[0, 1, 2], &q, &[0, 1, 0, 1]), 0.75);
    }
}
