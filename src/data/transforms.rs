//! Preprocessing transforms and augmentations (docs/method.md sections 2-3), each a
//! small value configured from YAML as `{name: ..., <parameters>, p: ...}`
//! and applied to a canonical [`Clip`] (time x joint x channel).
//!
//! A pipeline is a list of [`TransformStep`]s; each step fires independently with its
//! probability `p` (default 1), in order, drawing from the caller's stream.

use crate::data::clip::Clip;
use crate::data::modality::{ModalityKind, ModalityShape};
use crate::data::resample::fourier_resample;
use crate::rng::Stream;
use anyhow::{bail, Result};
use ndarray::{Array3, Axis};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Distribution, Normal, StandardNormal};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which meaning the inertial `permute` and `shuffle_channels` have.
///
/// The reference implementation applies them to the channels-first `C x T`
/// tensor, so its "permutation" reorders groups of channels and its "channel
/// shuffle" shuffles time steps (docs/method.md section 3). `reference` (the default)
/// reproduces that; `paper` permutes time segments and shuffles channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Semantics {
    #[default]
    Reference,
    Paper,
}

/// How often `scale` draws a factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalePer {
    /// One factor per element (the reference).
    #[default]
    Element,
    /// One factor per channel.
    Channel,
}

/// Centre of the skeleton rotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pivot {
    /// Joint 0 of each frame (docs/method.md section 3).
    #[default]
    Joint0,
    /// The coordinate origin.
    Origin,
}

/// One transform; the YAML `name` selects the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    /// Fourier resampling along time to `length` steps.
    Resample { length: usize },
    /// Subtracts the position of `joint` in the first frame from every joint.
    CenterOnJoint { joint: usize },
    /// Divides by the distance between two joints in the first frame.
    ScaleByBone { joints: [usize; 2] },
    /// Keeps a random contiguous fraction U(min, max) of the frames,
    /// optionally Fourier-resampled back to `resize_to` steps.
    RandomCrop {
        min_fraction: f64,
        max_fraction: f64,
        #[serde(default)]
        resize_to: Option<usize>,
    },
    /// Adds N(0, sigma) noise to every value.
    Jitter { sigma: f64 },
    /// Multiplies by factors drawn from N(1, sigma).
    Scale {
        sigma: f64,
        #[serde(default)]
        per: ScalePer,
    },
    /// Splits an axis into a random number of segments in [1, max_segments)
    /// and shuffles them (see [`Semantics`] for which axis).
    Permute {
        max_segments: usize,
        #[serde(default)]
        semantics: Semantics,
    },
    /// Shuffles channels (see [`Semantics`]).
    ShuffleChannels {
        #[serde(default)]
        semantics: Semantics,
    },
    /// Flips the sign of each channel with probability 1/2 (inertial "rotation").
    FlipSigns,
    /// Scales each axis by U(low, high) about joint 0 of each frame.
    ScaleAxes { low: f64, high: f64 },
    /// Rotates by one angle per axis drawn from {-max, -max+step, ..., max}
    /// degrees (R = Rx Ry Rz in 3-D, one angle in 2-D).
    Rotate {
        max_degrees: f64,
        step_degrees: f64,
        #[serde(default)]
        about: Pivot,
    },
    /// Shears with per-axis factors N(0, sigma): row i of the matrix is 1 on
    /// the diagonal and s_i elsewhere.
    Shear { sigma: f64 },
}

/// A transform with its firing probability.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformStep {
    pub transform: Transform,
    pub p: f64,
}

impl Transform {
    /// Checks parameters against the modality the transform will see.
    pub fn check(&self, m: &ModalityShape) -> Result<()> {
        let joints = m.joints;
        let skeleton_only = matches!(
            self,
            Transform::CenterOnJoint { .. } | Transform::ScaleByBone { .. } | Transform::ScaleAxes { .. } | Transform::Rotate { .. } | Transform::Shear { .. }
        );
        if skeleton_only && m.kind != ModalityKind::Skeleton {
            bail!("transform {self:?} only applies to skeleton modalities");
        }
        match *self {
            Transform::Resample { length } if length < 2 => bail!("resample: length must be at least 2"),
            Transform::CenterOnJoint { joint } if joint >= joints => {
                bail!("center_on_joint: joint {joint} out of range (modality has {joints} joints)")
            }
            Transform::ScaleByBone { joints: [a, b] } if a >= joints || b >= joints || a == b => {
                bail!("scale_by_bone: joints [{a}, {b}] must be two distinct joints below {joints}")
            }
            Transform::RandomCrop { min_fraction, max_fraction, resize_to } => {
                if !(0.0 < min_fraction && min_fraction <= max_fraction && max_fraction <= 1.0) {
                    bail!("random_crop: need 0 < min_fraction <= max_fraction <= 1");
                }
                if resize_to.is_some_and(|l| l < 2) {
                    bail!("random_crop: resize_to must be at least 2");
                }
            }
            Transform::Jitter { sigma } | Transform::Scale { sigma, .. } | Transform::Shear { sigma } if !(sigma >= 0.0 && sigma.is_finite()) => {
                bail!("{self:?}: sigma must be finite and non-negative")
            }
            Transform::Permute { max_segments, .. } if max_segments < 2 => {
                bail!("permute: max_segments must be at least 2 (segments are drawn from [1, max_segments))")
            }
            Transform::ScaleAxes { low, high } if !(0.0 < low && low <= high) => {
                bail!("scale_axes: need 0 < low <= high")
            }
            Transform::Rotate { max_degrees, step_degrees, .. } if !(max_degrees >= 0.0 && step_degrees > 0.0) => {
                bail!("rotate: need max_degrees >= 0 and step_degrees > 0")
            }
            _ => {}
        }
        if matches!(self, Transform::Rotate { .. }) && !(2..=3).contains(&m.channels) {
            bail!("rotate needs 2-D or 3-D joints, modality has {} channels", m.channels);
        }
        Ok(())
    }

    /// Applies the transform to `clip`.
    pub fn apply(&self, clip: Clip, rng: &mut Stream) -> Clip {
        match *self {
            Transform::Resample { length } => resample_time(&clip, length),
            Transform::CenterOnJoint { joint } => center_on_joint(clip, joint),
            Transform::ScaleByBone { joints } => scale_by_bone(clip, joints),
            Transform::RandomCrop { min_fraction, max_fraction, resize_to } => {
                let cropped = random_crop(&clip, min_fraction, max_fraction, rng);
                match resize_to {
                    Some(len) => resample_time(&cropped, len),
                    None => cropped,
                }
            }
            Transform::Jitter { sigma } => jitter(clip, sigma, rng),
            Transform::Scale { sigma, per } => scale(clip, sigma, per, rng),
            Transform::Permute { max_segments, semantics } => {
                let axis = match semantics {
                    Semantics::Paper => Axis(0),
                    Semantics::Reference => Axis(2),
                };
                permute_segments(&clip, axis, max_segments, rng)
            }
            Transform::ShuffleChannels { semantics } => {
                let axis = match semantics {
                    Semantics::Paper => Axis(2),
                    Semantics::Reference => Axis(0),
                };
                shuffle_axis(&clip, axis, rng)
            }
            Transform::FlipSigns => flip_signs(clip, rng),
            Transform::ScaleAxes { low, high } => {
                let factors: Vec<f64> = (0..clip.dim().2).map(|_| rng.random_range(low..=high)).collect();
                let m = diagonal(&factors);
                linear_map(clip, &m, Pivot::Joint0)
            }
            Transform::Rotate { max_degrees, step_degrees, about } => {
                let m = random_rotation(clip.dim().2, max_degrees, step_degrees, rng);
                linear_map(clip, &m, about)
            }
            Transform::Shear { sigma } => {
                let c = clip.dim().2;
                let normal = Normal::new(0.0, sigma).unwrap_or(Normal::new(0.0, 0.0).expect("valid"));
                let s: Vec<f64> = (0..c).map(|_| normal.sample(rng)).collect();
                let m: Vec<Vec<f64>> = (0..c).map(|i| (0..c).map(|k| if i == k { 1.0 } else { s[i] }).collect()).collect();
                linear_map(clip, &m, Pivot::Origin)
            }
        }
    }
}

/// Runs a pipeline over a clip, each step firing with its probability.
pub fn apply_steps(steps: &[TransformStep], mut clip: Clip, rng: &mut Stream) -> Clip {
    for step in steps {
        let fire = step.p >= 1.0 || rng.random::<f64>() < step.p;
        if fire {
            clip = step.transform.apply(clip, rng);
        }
    }
    clip
}

/// Fourier-resamples every (joint, channel) lane along time.
pub fn resample_time(clip: &Clip, length: usize) -> Clip {
    let (_, j, c) = clip.dim();
    let mut out = Array3::<f32>::zeros((length, j, c));
    for ji in 0..j {
        for ci in 0..c {
            let lane: Vec<f64> = clip.slice(ndarray::s![.., ji, ci]).iter().map(|&v| v as f64).collect();
            let resampled = fourier_resample(&lane, length);
            for (t, v) in resampled.into_iter().enumerate() {
                out[[t, ji, ci]] = v as f32;
            }
        }
    }
    out
}

fn center_on_joint(mut clip: Clip, joint: usize) -> Clip {
    let origin = clip.slice(ndarray::s![0, joint, ..]).to_owned();
    for mut frame in clip.outer_iter_mut() {
        for mut pos in frame.outer_iter_mut() {
            pos -= &origin;
        }
    }
    clip
}

fn scale_by_bone(mut clip: Clip, [a, b]: [usize; 2]) -> Clip {
    let d: f32 = (0..clip.dim().2).map(|c| (clip[[0, a, c]] - clip[[0, b, c]]).powi(2)).sum::<f32>().sqrt();
    // A zero-length bone cannot normalise; leave the clip as it is rather
    // than fill it with infinities (the loader reports degenerate skeletons).
    if d > 0.0 && d.is_finite() {
        clip.mapv_inplace(|v| v / d);
    }
    clip
}

fn random_crop(clip: &Clip, min_fraction: f64, max_fraction: f64, rng: &mut Stream) -> Clip {
    let t = clip.dim().0;
    let fraction = if max_fraction > min_fraction { rng.random_range(min_fraction..=max_fraction) } else { min_fraction };
    let len = ((fraction * t as f64).round() as usize).clamp(1.min(t), t);
    let start = rng.random_range(0..=t - len);
    clip.slice(ndarray::s![start..start + len, .., ..]).to_owned()
}

fn jitter(mut clip: Clip, sigma: f64, rng: &mut Stream) -> Clip {
    clip.mapv_inplace(|v| v + (sigma * rng.sample::<f64, _>(StandardNormal)) as f32);
    clip
}

fn scale(mut clip: Clip, sigma: f64, per: ScalePer, rng: &mut Stream) -> Clip {
    match per {
        ScalePer::Element => clip.mapv_inplace(|v| v * (1.0 + sigma * rng.sample::<f64, _>(StandardNormal)) as f32),
        ScalePer::Channel => {
            let factors: Vec<f32> = (0..clip.dim().2).map(|_| (1.0 + sigma * rng.sample::<f64, _>(StandardNormal)) as f32).collect();
            for mut lane in clip.lanes_mut(Axis(2)) {
                lane.iter_mut().zip(&factors).for_each(|(v, f)| *v *= f);
            }
        }
    }
    clip
}

/// Splits `axis` into n in [1, max_segments) non-empty contiguous segments
/// and concatenates them in a random order.
fn permute_segments(clip: &Clip, axis: Axis, max_segments: usize, rng: &mut Stream) -> Clip {
    let len = clip.len_of(axis);
    let segments = rng.random_range(1..max_segments).min(len.max(1));
    if segments <= 1 {
        return clip.clone();
    }
    let mut cuts: Vec<usize> = rand::seq::index::sample(rng, len - 1, segments - 1).into_iter().map(|i| i + 1).collect();
    cuts.sort_unstable();
    let mut bounds = vec![0];
    bounds.extend(cuts);
    bounds.push(len);
    let mut pieces: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
    pieces.shuffle(rng);
    let order: Vec<usize> = pieces.into_iter().flat_map(|(a, b)| a..b).collect();
    clip.select(axis, &order)
}

fn shuffle_axis(clip: &Clip, axis: Axis, rng: &mut Stream) -> Clip {
    let mut order: Vec<usize> = (0..clip.len_of(axis)).collect();
    order.shuffle(rng);
    clip.select(axis, &order)
}

fn flip_signs(mut clip: Clip, rng: &mut Stream) -> Clip {
    let signs: Vec<f32> = (0..clip.dim().2).map(|_| if rng.random::<bool>() { -1.0 } else { 1.0 }).collect();
    for mut lane in clip.lanes_mut(Axis(2)) {
        lane.iter_mut().zip(&signs).for_each(|(v, s)| *v *= s);
    }
    clip
}

fn diagonal(values: &[f64]) -> Vec<Vec<f64>> {
    (0..values.len()).map(|i| (0..values.len()).map(|k| if i == k { values[i] } else { 0.0 }).collect()).collect()
}

/// A rotation matrix with one discrete random angle per axis (3-D: Rx Ry Rz;
/// 2-D: a single in-plane angle).
pub fn random_rotation(channels: usize, max_degrees: f64, step_degrees: f64, rng: &mut Stream) -> Vec<Vec<f64>> {
    let steps = (max_degrees / step_degrees).floor() as i64;
    let mut angle = || (rng.random_range(-steps..=steps) as f64 * step_degrees).to_radians();
    if channels == 2 {
        let a = angle();
        return vec![vec![a.cos(), -a.sin()], vec![a.sin(), a.cos()]];
    }
    let (ax, ay, az) = (angle(), angle(), angle());
    let rx = [[1.0, 0.0, 0.0], [0.0, ax.cos(), -ax.sin()], [0.0, ax.sin(), ax.cos()]];
    let ry = [[ay.cos(), 0.0, ay.sin()], [0.0, 1.0, 0.0], [-ay.sin(), 0.0, ay.cos()]];
    let rz = [[az.cos(), -az.sin(), 0.0], [az.sin(), az.cos(), 0.0], [0.0, 0.0, 1.0]];
    let r = matmul3(&matmul3(&rx, &ry), &rz);
    r.iter().map(|row| row.to_vec()).collect()
}

fn matmul3(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut out = [[0.0; 3]; 3];
    for i in 0..3 {
        for k in 0..3 {
            out[i][k] = (0..3).map(|j| a[i][j] * b[j][k]).sum();
        }
    }
    out
}

/// Applies `x' = pivot + M (x - pivot)` to every joint of every frame.
fn linear_map(mut clip: Clip, m: &[Vec<f64>], about: Pivot) -> Clip {
    let c = clip.dim().2;
    for mut frame in clip.outer_iter_mut() {
        let pivot: Vec<f64> = match about {
            Pivot::Joint0 => frame.row(0).iter().map(|&v| v as f64).collect(),
            Pivot::Origin => vec![0.0; c],
        };
        for mut joint in frame.outer_iter_mut() {
            let rel: Vec<f64> = joint.iter().zip(&pivot).map(|(&v, p)| v as f64 - p).collect();
            for (i, out) in joint.iter_mut().enumerate() {
                *out = (pivot[i] + (0..c).map(|k| m[i][k] * rel[k]).sum::<f64>()) as f32;
            }
        }
    }
    clip
}

impl<'de> Deserialize<'de> for TransformStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = serde_yaml::Mapping::deserialize(d)?;
        let p = match map.remove("p") {
            None => 1.0,
            Some(v) => v.as_f64().ok_or_else(|| D::Error::custom("'p' must be a number"))?,
        };
        if !(0.0..=1.0).contains(&p) {
            return Err(D::Error::custom(format!("'p' must be in [0, 1], got {p}")));
        }
        let transform = serde_yaml::from_value(serde_yaml::Value::Mapping(map)).map_err(D::Error::custom)?;
        Ok(TransformStep { transform, p })
    }
}

impl Serialize for TransformStep {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut value = serde_yaml::to_value(&self.transform).map_err(S::Error::custom)?;
        if let serde_yaml::Value::Mapping(map) = &mut value {
            map.insert("p".into(), self.p.into());
        }
        value.serialize(s)
    }
}

/// The stream that augments `sample` for `view` (SimCLR's two views, CMC's
/// two modalities...) in `epoch`: fixed by those numbers alone, so a batch
/// comes out the same whatever thread handles which sample.
pub fn augment_stream(seed: u64, view: &str, epoch: u64, sample: u64) -> Stream {
    crate::rng::stream(seed, &format!("augment/{view}"), (epoch << 32) | (sample & 0xffff_ffff))
}

/// Augments the clips of a batch in parallel; `samples[i]` is the dataset
/// index of `clips[i]` and selects its stream.
pub fn augment_batch(steps: &[TransformStep], clips: &[&Clip], samples: &[usize], seed: u64, view: &str, epoch: u64) -> Vec<Clip> {
    use rayon::prelude::*;
    clips.par_iter().zip(samples).map(|(clip, &i)| apply_steps(steps, (*clip).clone(), &mut augment_stream(seed, view, epoch, i as u64))).collect()
}
