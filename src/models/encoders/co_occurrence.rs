//! Co-occurrence CNN (Li et al., IJCAI 2018; docs/method.md section 4), the skeleton
//! encoder: a joint stream and a motion stream each learn point-level then
//! co-occurrence features (joints moved into channels), fused by two more
//! convolutions. No padding anywhere.
//!
//! The two streams are concatenated along the last axis (the feature axis
//! that the joint-to-channel move exposes), as the reference does: with no
//! padding only this arrangement yields the 256 features of 3 x 50 x 20
//! inputs (time-axis concatenation leaves a zero-width map).

use super::{conv_len, pool_len, InputShape};
use crate::models::{channels_last, flops};
use anyhow::{bail, Result};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Relu};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Sizes of a [`CoOccurrenceEncoder`]; defaults are the paper's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoOccurrenceConfig {
    /// 1x1 point-level convolution.
    #[serde(default = "point")]
    pub point_channels: usize,
    /// Temporal convolution (kernel over time x 1 joint).
    #[serde(default = "temporal")]
    pub temporal_channels: usize,
    #[serde(default = "three")]
    pub temporal_kernel: usize,
    /// Co-occurrence convolutions on joints-as-channels, each + BN + pool.
    #[serde(default = "cooccurrence")]
    pub cooccurrence_channels: Vec<usize>,
    /// Convolutions after fusing the streams, each + BN + ReLU + pool.
    #[serde(default = "fused")]
    pub fused_channels: Vec<usize>,
    #[serde(default = "three")]
    pub kernel: usize,
    #[serde(default = "two")]
    pub pool: usize,
}

fn point() -> usize {
    64
}
fn temporal() -> usize {
    32
}
fn three() -> usize {
    3
}
fn two() -> usize {
    2
}
fn cooccurrence() -> Vec<usize> {
    vec![32, 64]
}
fn fused() -> Vec<usize> {
    vec![128, 256]
}

/// Conv2d -> BatchNorm -> optional ReLU -> MaxPool.
#[derive(Module, Debug)]
pub struct PooledConv {
    conv: Conv2d,
    norm: BatchNorm,
    relu: Option<Relu>,
    pool: MaxPool2d,
}

impl PooledConv {
    fn new(c_in: usize, c_out: usize, kernel: usize, pool: usize, relu: bool, device: &Device) -> Self {
        PooledConv {
            conv: Conv2dConfig::new([c_in, c_out], [kernel, kernel]).init(device),
            norm: BatchNormConfig::new(c_out).init(device),
            relu: relu.then(Relu::new),
            pool: MaxPool2dConfig::new([pool, pool]).init(),
        }
    }

    /// Channels last: `(B, H, W, C_in)` -> `(B, H', W', C_out)`.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = channels_last::conv2d(&self.conv, x);
        let x = match self.relu {
            Some(_) => channels_last::batch_norm_relu(&self.norm, x),
            None => channels_last::batch_norm(&self.norm, x),
        };
        channels_last::max_pool2d(&self.pool, x)
    }
}

/// One stream (joints or motions).
#[derive(Module, Debug)]
pub struct Stream {
    point: Conv2d,
    point_norm: BatchNorm,
    relu: Relu,
    temporal: Conv2d,
    temporal_norm: BatchNorm,
    cooccurrence: Vec<PooledConv>,
}

impl Stream {
    fn new(c: &CoOccurrenceConfig, shape: InputShape, device: &Device) -> Self {
        let inputs = std::iter::once(shape.joints).chain(c.cooccurrence_channels.iter().copied());
        Stream {
            point: Conv2dConfig::new([shape.channels, c.point_channels], [1, 1]).init(device),
            point_norm: BatchNormConfig::new(c.point_channels).init(device),
            relu: Relu::new(),
            temporal: Conv2dConfig::new([c.point_channels, c.temporal_channels], [c.temporal_kernel, 1]).init(device),
            temporal_norm: BatchNormConfig::new(c.temporal_channels).init(device),
            cooccurrence: inputs.zip(&c.cooccurrence_channels).map(|(i, &o)| PooledConv::new(i, o, c.kernel, c.pool, false, device)).collect(),
        }
    }

    /// Channels last: `(B, T, J, C)` -> `(B, T'', F'', channels)`.
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = channels_last::point_norm_relu(&self.point, &self.point_norm, x);
        let x = channels_last::batch_norm(&self.temporal_norm, channels_last::conv2d(&self.temporal, x));
        // (B, T, J, F) -> (B, T, F, J): joints become channels, so the next
        // convolutions see every joint at once (co-occurrence).
        let x = x.swap_dims(2, 3);
        self.cooccurrence.iter().fold(x, |x, c| c.forward(x))
    }
}

/// The two-stream co-occurrence encoder.
#[derive(Module, Debug)]
pub struct CoOccurrenceEncoder {
    joints: Stream,
    motions: Stream,
    fused: Vec<PooledConv>,
}

impl CoOccurrenceConfig {
    pub fn output_size(&self, shape: InputShape) -> Result<usize> {
        if self.cooccurrence_channels.is_empty() || self.fused_channels.is_empty() || self.pool == 0 {
            bail!("co_occurrence: needs co-occurrence and fused channel lists and a positive pool size");
        }
        if self.pool * self.pool > usize::from(u16::MAX) {
            bail!("co_occurrence: pool {} is too large (the max-pool kernel keeps each window's winner in 16 bits: at most 255)", self.pool);
        }
        let mut h = conv_len(shape.frames, self.temporal_kernel, 0)?; // time
        let mut w = self.temporal_channels; // features, after the joint-to-channel move
        for _ in &self.cooccurrence_channels {
            h = pool_len(conv_len(h, self.kernel, 0)?, self.pool)?;
            w = pool_len(conv_len(w, self.kernel, 0)?, self.pool)?;
        }
        w *= 2; // the two streams side by side
        for _ in &self.fused_channels {
            h = pool_len(conv_len(h, self.kernel, 0)?, self.pool)?;
            w = pool_len(conv_len(w, self.kernel, 0)?, self.pool)?;
        }
        if h == 0 || w == 0 {
            bail!("co_occurrence: {} frames leave an empty feature map", shape.frames);
        }
        Ok(h * w * self.fused_channels.last().copied().unwrap_or(0)) // checked non-empty when the config is validated
    }

    /// Forward FLOPs per sample ([`crate::models::flops`]): both streams'
    /// point, temporal and co-occurrence convolutions, then the fused ones.
    pub fn forward_flops(&self, shape: InputShape) -> Result<u64> {
        self.output_size(shape)?;
        let (k, kk) = (self.kernel, self.kernel * self.kernel);
        let (frames, joints) = (shape.frames, shape.joints);
        let mut h = conv_len(frames, self.temporal_kernel, 0)?;
        let mut stream = flops::conv(shape.channels, self.point_channels, 1, frames * joints)
            + flops::conv(self.point_channels, self.temporal_channels, self.temporal_kernel, h * joints);
        let mut w = self.temporal_channels;
        let mut c_in = joints;
        for &c_out in &self.cooccurrence_channels {
            let (ch, cw) = (conv_len(h, k, 0)?, conv_len(w, k, 0)?);
            stream += flops::conv(c_in, c_out, kk, ch * cw);
            (h, w, c_in) = (pool_len(ch, self.pool)?, pool_len(cw, self.pool)?, c_out);
        }
        let mut fused = 0;
        w *= 2;
        for &c_out in &self.fused_channels {
            let (ch, cw) = (conv_len(h, k, 0)?, conv_len(w, k, 0)?);
            fused += flops::conv(c_in, c_out, kk, ch * cw);
            (h, w, c_in) = (pool_len(ch, self.pool)?, pool_len(cw, self.pool)?, c_out);
        }
        Ok(2 * stream + fused)
    }

    pub fn init(&self, shape: InputShape, device: &Device) -> CoOccurrenceEncoder {
        let last_stream = *self.cooccurrence_channels.last().expect("validated by output_size");
        let inputs = std::iter::once(last_stream).chain(self.fused_channels.iter().copied());
        CoOccurrenceEncoder {
            joints: Stream::new(self, shape, device),
            motions: Stream::new(self, shape, device),
            fused: inputs.zip(&self.fused_channels).map(|(i, &o)| PooledConv::new(i, o, self.kernel, self.pool, true, device)).collect(),
        }
    }
}

impl CoOccurrenceEncoder {
    /// `(B, C, T, J)` -> `(B, features)`, the features in channel, time,
    /// feature order. Computed channels last (see [`channels_last`]).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let m = motion(x.clone());
        let joints = self.joints.forward(x.permute([0, 2, 3, 1]));
        let motions = self.motions.forward(m.permute([0, 2, 3, 1]));
        let x = Tensor::cat(vec![joints, motions], 2);
        let x = self.fused.iter().fold(x, |x, c| c.forward(x));
        x.permute([0, 3, 1, 2]).flatten(1, 3)
    }
}

/// Frame differences along time, the first frame zero.
pub fn motion(x: Tensor<4>) -> Tensor<4> {
    let [b, c, t, j] = x.dims();
    let diff = x.clone().narrow(2, 1, t - 1) - x.narrow(2, 0, t - 1);
    let zeros = Tensor::zeros([b, c, 1, j], &diff.device());
    Tensor::cat(vec![zeros, diff], 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    #[test]
    fn forward_flops_of_the_papers_skeleton_encoder() {
        let c: CoOccurrenceConfig = crate::config::parse_yaml("{}").unwrap();
        // Multiply-adds per stream on 3 x 50 x 20: point 3x64 at 50x20,
        // temporal 64x32x3 at 48x20, co-occurrence 20x32x9 at 46x30 (pooled
        // to 23x15) and 32x64x9 at 21x13 (pooled to 10x6); fused, on 10x12:
        // 64x128x9 at 8x10 (pooled to 4x5), 128x256x9 at 2x3.
        let stream = 3 * 64 * 1000 + 64 * 32 * 3 * 960 + 20 * 32 * 9 * 1380 + 32 * 64 * 9 * 273;
        let fused = 64 * 128 * 9 * 80 + 128 * 256 * 9 * 6;
        let shape = InputShape { channels: 3, frames: 50, joints: 20 };
        assert_eq!(c.forward_flops(shape).unwrap(), 2 * (2 * stream + fused));
        assert!(c.forward_flops(InputShape { frames: 8, ..shape }).is_err(), "too few frames is an error, as for output_size");
    }

    /// The encoder as burn's channels-first layers compute it.
    fn channels_first(e: &CoOccurrenceEncoder, x: Tensor<4>) -> Tensor<2> {
        let pooled = |c: &PooledConv, x: Tensor<4>| {
            let x = c.norm.forward(c.conv.forward(x));
            c.pool.forward(if c.relu.is_some() { burn::tensor::activation::relu(x) } else { x })
        };
        let stream = |s: &Stream, x: Tensor<4>| {
            let x = s.relu.forward(s.point_norm.forward(s.point.forward(x)));
            let x = s.temporal_norm.forward(s.temporal.forward(x)).permute([0, 3, 2, 1]);
            s.cooccurrence.iter().fold(x, |x, c| pooled(c, x))
        };
        let x = Tensor::cat(vec![stream(&e.joints, x.clone()), stream(&e.motions, motion(x))], 3);
        e.fused.iter().fold(x, |x, c| pooled(c, x)).flatten(1, 3)
    }

    /// A pool too large for the kernel's 16-bit winners is a config error,
    /// not a panic in the first training step.
    #[test]
    fn pools_beyond_255_are_config_errors() {
        let shape = InputShape { channels: 3, frames: 4000, joints: 20 };
        let config: CoOccurrenceConfig = serde_yaml::from_str("{temporal_channels: 600, cooccurrence_channels: [8], fused_channels: [8], pool: 256}").unwrap();
        let err = config.output_size(shape).unwrap_err().to_string();
        assert!(err.contains("pool 256 is too large"), "{err}");
        let config: CoOccurrenceConfig = serde_yaml::from_str("{temporal_channels: 600, cooccurrence_channels: [8], fused_channels: [8], pool: 255}").unwrap();
        // 255 passes this check (here the maps then pool to nothing).
        assert!(!config.output_size(shape).unwrap_err().to_string().contains("too large"));
    }

    #[test]
    fn channels_last_forward_matches_the_channels_first_layers() {
        let _rng = crate::training::exclusive();
        let device = Device::flex();
        let config: CoOccurrenceConfig = serde_yaml::from_str("{}").unwrap();
        // 64 frames leave a 2 x 1 final map, so the flattening order matters.
        let shape = InputShape { channels: 3, frames: 64, joints: 20 };
        assert_eq!(config.output_size(shape).unwrap(), 2 * 256);
        let encoder = config.init(shape, &device);
        let x = Tensor::<4>::random([2, 3, 64, 20], Distribution::Normal(0.0, 1.0), &device);
        let expected = channels_first(&encoder, x.clone()).into_data();
        encoder.forward(x).into_data().assert_approx_eq::<f32>(&expected, Tolerance::rel_abs(1e-4, 1e-4));
    }

    /// Training mode, where batch statistics and every backward kernel
    /// count: the flex kernels give the composed operations' gradients.
    /// Compared as a relative L2 error: usually about 1e-5, but where one of
    /// the ~400 K batch-norm outputs lies within rounding of the ReLU's kink
    /// the two paths cut it differently, and one layer's error jumps to about
    /// 1e-2 (seen in 3 of 10 draws). A wrongly wired gradient is off by O(1);
    /// each kernel's formulas are checked exactly against finite differences.
    #[test]
    fn training_gradients_of_the_flex_kernels_match_the_composed_layers() {
        let _rng = crate::training::exclusive();
        let device = Device::flex().autodiff();
        let config: CoOccurrenceConfig = serde_yaml::from_str("{}").unwrap();
        let shape = InputShape { channels: 3, frames: 50, joints: 20 };
        let encoder = config.init(shape, &device);
        let x = Tensor::<4>::random([6, 3, 50, 20], Distribution::Normal(0.0, 1.0), &device);
        let weights = Tensor::<2>::random([6, 256], Distribution::Normal(0.0, 1.0), &device);
        let loss = |e: &CoOccurrenceEncoder| (e.forward(x.clone()) * weights.clone()).sum();
        let (fused, composed) = (loss(&encoder), crate::models::flex_kernels::composed(|| loss(&encoder)));
        fused.clone().into_data().assert_approx_eq::<f32>(&composed.clone().into_data(), Tolerance::rel_abs(1e-3, 1e-3));
        let (g_fused, g_composed) = (fused.backward(), composed.backward());
        let grad = |p: &burn::module::Param<Tensor<4>>, g| p.val().grad(g).unwrap().try_into_vec_as::<f32>().unwrap();
        for conv in [&encoder.joints.point, &encoder.motions.temporal, &encoder.joints.cooccurrence[0].conv, &encoder.fused[1].conv] {
            let (fused, composed) = (grad(&conv.weight, &g_fused), grad(&conv.weight, &g_composed));
            let error = fused.iter().zip(&composed).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt();
            let norm = composed.iter().map(|b| (*b as f64).powi(2)).sum::<f64>().sqrt();
            assert!(error / norm < 5e-2, "relative gradient error {}", error / norm);
        }
    }
}
