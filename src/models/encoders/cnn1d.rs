//! CNN1D (docs/method.md section 4): Conv1d -> BatchNorm -> ReLU blocks, flattened.

use super::{conv_len, default_series_channels, series_only, InputShape};
use crate::models::{channels_last, flops};
use anyhow::{bail, Result};
use burn::nn::conv::{Conv1d, Conv1dConfig as BurnConv1d};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig1d, Relu};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Sizes of a [`Cnn1d`]; defaults are the paper's (32, 64, 128; kernel 3, padding 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cnn1dConfig {
    #[serde(default = "default_series_channels")]
    pub channels: Vec<usize>,
    #[serde(default = "three")]
    pub kernel: usize,
    #[serde(default = "one")]
    pub padding: usize,
}

fn three() -> usize {
    3
}
fn one() -> usize {
    1
}

/// Stacked 1-D convolution blocks over time.
#[derive(Module, Debug)]
pub struct Cnn1d {
    blocks: Vec<ConvBlock1d>,
}

/// Conv1d -> BatchNorm -> ReLU.
#[derive(Module, Debug)]
pub struct ConvBlock1d {
    conv: Conv1d,
    norm: BatchNorm,
    relu: Relu,
}

impl ConvBlock1d {
    pub fn new(c_in: usize, c_out: usize, kernel: usize, padding: usize, device: &Device) -> Self {
        ConvBlock1d {
            conv: BurnConv1d::new(c_in, c_out, kernel).with_padding(PaddingConfig1d::Explicit(padding, padding)).init(device),
            norm: BatchNormConfig::new(c_out).init(device),
            relu: Relu::new(),
        }
    }

    /// Channels last: `(B, T, C_in)` -> `(B, T', C_out)`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        channels_last::batch_norm_relu(&self.norm, channels_last::conv1d(&self.conv, x))
    }
}

/// Time steps after the convolution blocks.
pub(super) fn blocks_len(channels: &[usize], kernel: usize, padding: usize, frames: usize) -> Result<usize> {
    if channels.is_empty() {
        bail!("the encoder needs at least one convolution block");
    }
    channels.iter().try_fold(frames, |t, _| conv_len(t, kernel, padding))
}

/// Forward FLOPs of the convolution blocks on `shape` ([`crate::models::flops`]).
pub(super) fn blocks_flops(channels: &[usize], kernel: usize, padding: usize, shape: InputShape) -> Result<u64> {
    let inputs = std::iter::once(shape.channels).chain(channels.iter().copied());
    let mut len = shape.frames;
    let mut total = 0;
    for (c_in, &c_out) in inputs.zip(channels) {
        len = conv_len(len, kernel, padding)?;
        total += flops::conv(c_in, c_out, kernel, len);
    }
    Ok(total)
}

impl Cnn1dConfig {
    /// Forward FLOPs per sample ([`crate::models::flops`]).
    pub fn forward_flops(&self, shape: InputShape) -> Result<u64> {
        self.output_size(shape)?;
        blocks_flops(&self.channels, self.kernel, self.padding, shape)
    }

    pub fn output_size(&self, shape: InputShape) -> Result<usize> {
        series_only(shape, "cnn1d")?;
        // blocks_len fails first on empty channels, so the last one exists.
        Ok(blocks_len(&self.channels, self.kernel, self.padding, shape.frames)? * self.channels.last().copied().unwrap_or(0))
    }

    pub fn init(&self, shape: InputShape, device: &Device) -> Cnn1d {
        let inputs = std::iter::once(shape.channels).chain(self.channels.iter().copied());
        let blocks = inputs.zip(&self.channels).map(|(i, &o)| ConvBlock1d::new(i, o, self.kernel, self.padding, device)).collect();
        Cnn1d { blocks }
    }
}

impl Cnn1d {
    /// `(B, C, T)` -> `(B, channels x T')`, channel-major.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let x = self.blocks.iter().fold(x.swap_dims(1, 2), |x, b| b.forward(x));
        x.swap_dims(1, 2).flatten(1, 2)
    }
}
