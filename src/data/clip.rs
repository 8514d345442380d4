//! `Clip`: one modality of one sample in the canonical time-major layout
//! (time x joint x channel; series have a single joint), as every transform
//! sees it, and its conversion to the channels-first layout models consume.

use anyhow::{bail, Result};
use ndarray::{Array3, ArrayD, Axis, IxDyn};

/// Canonical clip: `(T, J, C)`, f32.
pub type Clip = Array3<f32>;

/// Converts an array read from disk, whose axes are named by `layout`
/// (letters T, J, C; series have no J), into a canonical clip.
pub fn clip_from_layout(array: ArrayD<f64>, layout: &str) -> Result<Clip> {
    let letters: Vec<char> = layout.chars().collect();
    if array.ndim() != letters.len() {
        bail!("array has {} dimensions {:?}, but layout '{layout}' expects {}", array.ndim(), array.shape(), letters.len());
    }
    let mut array = array;
    let mut letters = letters;
    if !letters.contains(&'J') {
        let last = Axis(array.ndim());
        array = array.insert_axis(last);
        letters.push('J');
    }
    let pos = |c: char| letters.iter().position(|&l| l == c).ok_or_else(|| anyhow::anyhow!("layout '{layout}' has no axis {c}"));
    let axes = [pos('T')?, pos('J')?, pos('C')?];
    if axes[0] == axes[1] || axes[1] == axes[2] || axes[0] == axes[2] || letters.len() != 3 {
        bail!("layout '{layout}' must name each of T, J (optional) and C once");
    }
    let permuted = array.permuted_axes(IxDyn(&axes));
    let shape = permuted.shape().to_vec();
    let clip = Array3::from_shape_vec((shape[0], shape[1], shape[2]), permuted.iter().map(|&v| v as f32).collect())?;
    Ok(clip)
}

/// Channels-first `(C, T, J)` copy of a clip, the layout of docs/method.md section 2
/// (`C x 50` for series, `C x F x J` for skeletons), contiguous.
pub fn channels_first(clip: &Clip) -> Array3<f32> {
    clip.view().permuted_axes([2, 0, 1]).as_standard_layout().to_owned()
}

/// Number of non-finite values in a clip.
pub fn count_non_finite(clip: &Clip) -> usize {
    clip.iter().filter(|v| !v.is_finite()).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ShapeBuilder;

    #[test]
    fn utd_skeleton_layout_maps_to_time_major() {
        // MATLAB d_skel is 20 x 3 x T column-major: element (j, c, t).
        let (j, c, t) = (4, 3, 5);
        let data: Vec<f64> = (0..j * c * t).map(|i| i as f64).collect();
        let a = ArrayD::from_shape_vec(IxDyn(&[j, c, t]).f(), data).unwrap();
        let expect = a[[2, 1, 3]];
        let clip = clip_from_layout(a, "JCT").unwrap();
        assert_eq!(clip.dim(), (t, j, c));
        assert_eq!(clip[[3, 2, 1]], expect as f32);
    }

    #[test]
    fn series_gets_a_single_joint_and_channels_first_view() {
        let a = ArrayD::from_shape_vec(IxDyn(&[3, 2]), vec![1., 2., 3., 4., 5., 6.]).unwrap();
        let clip = clip_from_layout(a, "TC").unwrap();
        assert_eq!(clip.dim(), (3, 1, 2));
        let cf = channels_first(&clip);
        assert_eq!(cf.dim(), (2, 3, 1));
        assert_eq!(cf.iter().copied().collect::<Vec<_>>(), vec![1., 3., 5., 2., 4., 6.]);
    }

    #[test]
    fn wrong_rank_is_an_error() {
        let a = ArrayD::from_shape_vec(IxDyn(&[3, 2]), vec![0.; 6]).unwrap();
        assert!(clip_from_layout(a, "JCT").is_err());
    }
}
