//! Every transform and augmentation: shapes, invariants, the reference and
//! paper semantics, YAML configuration, and seeded determinism.

use cmkm::data::clip::Clip;
use cmkm::data::transforms::{apply_steps, augment_batch, Pivot, Semantics, Transform, TransformStep};
use cmkm::rng::stream;
use ndarray::Array3;

/// A skeleton clip (T=30, J=20, C=3) with distinct, smooth coordinates.
fn skeleton() -> Clip {
    Array3::from_shape_fn((30, 20, 3), |(t, j, c)| ((t as f32) * 0.1 + j as f32 * 0.7 + c as f32 * 1.3).sin() + j as f32 * 0.1)
}

/// An inertial clip (T=50, J=1, C=6).
fn series() -> Clip {
    Array3::from_shape_fn((50, 1, 6), |(t, _, c)| (t * 6 + c) as f32)
}

fn bone(clip: &Clip, t: usize, a: usize, b: usize) -> f32 {
    (0..clip.dim().2).map(|c| (clip[[t, a, c]] - clip[[t, b, c]]).powi(2)).sum::<f32>().sqrt()
}

fn sorted(clip: &Clip) -> Vec<f32> {
    let mut v: Vec<f32> = clip.iter().copied().collect();
    v.sort_by(f32::total_cmp);
    v
}

fn apply(t: Transform, clip: Clip, seed: u64) -> Clip {
    t.apply(clip, &mut stream(seed, "test", 0))
}

#[test]
fn rotation_preserves_bone_lengths_and_pivot() {
    let clip = skeleton();
    let rotated = apply(Transform::Rotate { max_degrees: 10.0, step_degrees: 2.0, about: Pivot::Joint0 }, clip.clone(), 1);
    assert_ne!(rotated, clip);
    for t in [0, 17, 29] {
        for (a, b) in [(0, 1), (4, 9), (11, 19)] {
            assert!((bone(&clip, t, a, b) - bone(&rotated, t, a, b)).abs() < 1e-4);
        }
        for c in 0..3 {
            assert!((clip[[t, 0, c]] - rotated[[t, 0, c]]).abs() < 1e-6, "joint 0 is the pivot");
        }
    }
    // 2-D skeletons rotate in the plane, preserving distances too.
    let flat = Array3::from_shape_fn((10, 17, 2), |(t, j, c)| (t + j * 3 + c) as f32 * 0.1);
    let r = apply(Transform::Rotate { max_degrees: 15.0, step_degrees: 2.0, about: Pivot::Origin }, flat.clone(), 4);
    assert!((bone(&flat, 3, 2, 9) - bone(&r, 3, 2, 9)).abs() < 1e-4);
}

#[test]
fn rotation_angles_come_from_the_discrete_grid() {
    // One axis only (2-D): the angle between a vector and its image is a multiple of the step.
    let clip = Array3::from_shape_fn((1, 2, 2), |(_, j, c)| if j == 1 && c == 0 { 1.0 } else { 0.0 });
    for seed in 0..20 {
        let r = apply(Transform::Rotate { max_degrees: 10.0, step_degrees: 2.0, about: Pivot::Joint0 }, clip.clone(), seed);
        let angle = r[[0, 1, 1]].atan2(r[[0, 1, 0]]).to_degrees();
        assert!(angle.abs() <= 10.0 + 1e-3 && ((angle / 2.0).round() * 2.0 - angle).abs() < 1e-3, "{angle}");
    }
}

#[test]
fn scale_axes_keeps_joint_zero_and_bounds_factors() {
    let clip = skeleton();
    let s = apply(Transform::ScaleAxes { low: 0.7, high: 1.2 }, clip.clone(), 2);
    for t in 0..30 {
        for j in 1..20 {
            for c in 0..3 {
                let before = clip[[t, j, c]] - clip[[t, 0, c]];
                let after = s[[t, j, c]] - s[[t, 0, c]];
                if before.abs() > 1e-3 {
                    let f = after / before;
                    assert!((0.7 - 1e-4..=1.2 + 1e-4).contains(&f), "factor {f}");
                }
            }
        }
        assert!((0..3).all(|c| (s[[t, 0, c]] - clip[[t, 0, c]]).abs() < 1e-6));
    }
}

#[test]
fn shear_is_linear_with_unit_diagonal() {
    let mut clip = Array3::zeros((1, 3, 3));
    for j in 0..3 {
        clip[[0, j, j]] = 1.0; // joints are the unit vectors
    }
    let s = apply(Transform::Shear { sigma: 0.2 }, clip, 3);
    for j in 0..3 {
        assert!((s[[0, j, j]] - 1.0).abs() < 1e-6);
    }
    // Column k of the image of e_k holds s_i in row i: row i is constant off the diagonal.
    assert!((s[[0, 1, 0]] - s[[0, 2, 0]]).abs() < 1e-6);
    assert!(s[[0, 1, 0]] != 0.0);
}

#[test]
fn crops_keep_the_requested_fraction_and_resize() {
    let clip = skeleton();
    for seed in 0..10 {
        let c = apply(Transform::RandomCrop { min_fraction: 0.7, max_fraction: 1.0, resize_to: None }, clip.clone(), seed);
        assert!((21..=30).contains(&c.dim().0));
        assert_eq!(&c.dim().1, &20);
        let r = apply(Transform::RandomCrop { min_fraction: 0.8, max_fraction: 0.9, resize_to: Some(50) }, clip.clone(), seed);
        assert_eq!(r.dim(), (50, 20, 3));
    }
    // A crop is a contiguous run of the original frames.
    let c = apply(Transform::RandomCrop { min_fraction: 0.5, max_fraction: 0.5, resize_to: None }, clip.clone(), 9);
    let start = (0..30).find(|&t| clip[[t, 5, 1]] == c[[0, 5, 1]]).unwrap();
    assert_eq!(c, clip.slice(ndarray::s![start..start + 15, .., ..]).to_owned());
}

#[test]
fn permutation_and_shuffle_follow_their_semantics() {
    let clip = series();
    // Reference: permute reorders channel groups; each time step keeps its values.
    let mut changed = false;
    for seed in 0..20 {
        let p = apply(Transform::Permute { max_segments: 3, semantics: Semantics::Reference }, clip.clone(), seed);
        assert_eq!(sorted(&p), sorted(&clip));
        for t in 0..50 {
            let mut a: Vec<f32> = p.slice(ndarray::s![t, 0, ..]).to_vec();
            a.sort_by(f32::total_cmp);
            assert_eq!(a, clip.slice(ndarray::s![t, 0, ..]).to_vec());
        }
        changed |= p != clip;
    }
    assert!(changed, "two segments must sometimes swap");
    // Paper: permute reorders time segments; each channel keeps its values.
    let p = (0..20).map(|s| apply(Transform::Permute { max_segments: 3, semantics: Semantics::Paper }, clip.clone(), s)).find(|p| *p != clip).unwrap();
    for c in 0..6 {
        let mut a: Vec<f32> = p.slice(ndarray::s![.., 0, c]).to_vec();
        a.sort_by(f32::total_cmp);
        assert_eq!(a, clip.slice(ndarray::s![.., 0, c]).to_vec());
    }
    // Reference channel shuffle shuffles time steps (rows stay intact).
    let s = apply(Transform::ShuffleChannels { semantics: Semantics::Reference }, clip.clone(), 5);
    let rows: Vec<Vec<f32>> = (0..50).map(|t| s.slice(ndarray::s![t, 0, ..]).to_vec()).collect();
    assert!(rows.iter().all(|r| r[0] % 6.0 == 0.0 && r[5] == r[0] + 5.0));
    assert_ne!(s, clip);
    // Paper channel shuffle moves whole channels.
    let s = apply(Transform::ShuffleChannels { semantics: Semantics::Paper }, clip.clone(), 5);
    assert!((0..6).all(|c| (0..6).any(|k| s.slice(ndarray::s![.., 0, c]) == clip.slice(ndarray::s![.., 0, k]))));
}

#[test]
fn jitter_scale_and_sign_flips_have_the_right_statistics() {
    let zeros = Array3::<f32>::zeros((500, 1, 6));
    let j = apply(Transform::Jitter { sigma: 0.1 }, zeros.clone(), 0);
    let var = j.iter().map(|v| (v * v) as f64).sum::<f64>() / j.len() as f64;
    assert!((var.sqrt() - 0.1).abs() < 0.01, "std {}", var.sqrt());
    let ones = Array3::<f32>::ones((500, 1, 6));
    let s = apply(Transform::Scale { sigma: 1.0, per: Default::default() }, ones.clone(), 0);
    let mean = s.iter().map(|&v| v as f64).sum::<f64>() / s.len() as f64;
    let std = (s.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / s.len() as f64).sqrt();
    assert!((mean - 1.0).abs() < 0.1 && (std - 1.0).abs() < 0.1, "{mean} {std}");
    let f = apply(Transform::FlipSigns, series(), 1);
    assert!(f.iter().zip(series().iter()).all(|(a, b)| a.abs() == b.abs()));
}

#[test]
fn preprocessing_normalises_the_first_frame() {
    let steps: Vec<TransformStep> =
        cmkm::config::parse_yaml("[{name: center_on_joint, joint: 2}, {name: scale_by_bone, joints: [1, 2]}, {name: resample, length: 50}]").unwrap();
    let mut rng = stream(0, "x", 0);
    let before = skeleton();
    let centred = apply_steps(&steps[..2], before.clone(), &mut rng);
    assert!((0..3).all(|c| centred[[0, 2, c]].abs() < 1e-6));
    assert!((bone(&centred, 0, 1, 2) - 1.0).abs() < 1e-5);
    let out = apply_steps(&steps, before, &mut rng);
    assert_eq!(out.dim(), (50, 20, 3));
}

#[test]
fn yaml_steps_parse_with_probability_and_reject_unknown_keys() {
    let steps: Vec<TransformStep> =
        cmkm::config::parse_yaml("- {name: jitter, sigma: 1.0, p: 0.75}\n- {name: permute, max_segments: 3, semantics: paper}\n- {name: flip_signs, p: 0}")
            .unwrap();
    assert_eq!(steps[0], TransformStep { transform: Transform::Jitter { sigma: 1.0 }, p: 0.75 });
    assert_eq!(steps[1].p, 1.0);
    assert_eq!(steps[1].transform, Transform::Permute { max_segments: 3, semantics: Semantics::Paper });
    // Round trip through YAML.
    let text = serde_yaml::to_string(&steps).unwrap();
    assert_eq!(cmkm::config::parse_yaml::<Vec<TransformStep>>(&text).unwrap(), steps);
    let err = cmkm::config::parse_yaml::<Vec<TransformStep>>("[{name: jitter, sigmaa: 1}]").unwrap_err().to_string();
    assert!(err.contains("sigmaa"), "{err}");
    let err = cmkm::config::parse_yaml::<Vec<TransformStep>>("[{name: wobble}]").unwrap_err().to_string();
    assert!(err.contains("wobble"), "{err}");
    assert!(cmkm::config::parse_yaml::<Vec<TransformStep>>("[{name: jitter, sigma: 1, p: 2}]").is_err());
    // p = 0 never fires.
    let clip = series();
    assert_eq!(apply_steps(&steps[2..], clip.clone(), &mut stream(0, "x", 0)), clip);
}

#[test]
fn augmentation_is_seeded_per_sample_not_per_thread() {
    let steps: Vec<TransformStep> = cmkm::config::parse_yaml(
        "[{name: jitter, sigma: 0.1}, {name: random_crop, min_fraction: 0.8, max_fraction: 0.9, resize_to: 50, p: 0.75}, \
          {name: scale_axes, low: 0.7, high: 1.2, p: 0.75}, {name: rotate, max_degrees: 10, step_degrees: 2, p: 0.75}, \
          {name: shear, sigma: 0.2, p: 0.75}]",
    )
    .unwrap();
    let clips: Vec<Clip> = (0..16).map(|i| skeleton() * (1.0 + i as f32 * 0.01)).collect();
    let refs: Vec<&Clip> = clips.iter().collect();
    let ids: Vec<usize> = (100..116).collect();
    let a = augment_batch(&steps, &refs, &ids, 7, "skeleton", 3);
    let b = augment_batch(&steps, &refs, &ids, 7, "skeleton", 3);
    assert_eq!(a, b);
    // The same sample in a different batch position gets the same augmentation.
    let c = augment_batch(&steps, &refs[5..6], &ids[5..6], 7, "skeleton", 3);
    assert_eq!(c[0], a[5]);
    // Other epochs, views and seeds differ.
    assert_ne!(augment_batch(&steps, &refs, &ids, 7, "skeleton", 4), a);
    assert_ne!(augment_batch(&steps, &refs, &ids, 7, "other", 3), a);
    assert_ne!(augment_batch(&steps, &refs, &ids, 8, "skeleton", 3), a);
}
