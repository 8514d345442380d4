//! CNN-Transformer (docs/method.md section 4), the paper's inertial encoder:
//! Conv1d blocks, sinusoidal positions with dropout, post-norm Transformer
//! encoder layers with a ReLU feed-forward, flattened.

use super::cnn1d::{blocks_len, ConvBlock1d};
use super::{default_series_channels, series_only, InputShape};
use crate::models::dropout;
use crate::models::transformer;
use anyhow::{bail, Result};
use burn::nn::activation::ActivationConfig;
use burn::nn::transformer::{TransformerEncoder, TransformerEncoderConfig};
use burn::nn::{Dropout, DropoutConfig, PositionalEncoding, PositionalEncodingConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Sizes of a [`CnnTransformer`]; defaults are the paper's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CnnTransformerConfig {
    /// Conv1d channels; the last one is the Transformer's d_model.
    #[serde(default = "default_series_channels")]
    pub channels: Vec<usize>,
    #[serde(default = "five")]
    pub kernel: usize,
    #[serde(default = "one")]
    pub padding: usize,
    #[serde(default = "two")]
    pub heads: usize,
    #[serde(default = "two")]
    pub layers: usize,
    #[serde(default = "feed_forward")]
    pub feed_forward: usize,
    #[serde(default = "dropout")]
    pub dropout: f64,
    #[serde(default = "dropout")]
    pub positional_dropout: f64,
}

fn five() -> usize {
    5
}
fn one() -> usize {
    1
}
fn two() -> usize {
    2
}
fn feed_forward() -> usize {
    2048
}
fn dropout() -> f64 {
    0.1
}

/// The convolution + Transformer encoder.
#[derive(Module, Debug)]
pub struct CnnTransformer {
    blocks: Vec<ConvBlock1d>,
    positions: PositionalEncoding,
    positional_dropout: Dropout,
    transformer: TransformerEncoder,
}

impl CnnTransformerConfig {
    pub fn output_size(&self, shape: InputShape) -> Result<usize> {
        series_only(shape, "cnn_transformer")?;
        let d_model = self.channels.last().copied().unwrap_or(0);
        if d_model % 2 != 0 || self.heads == 0 || d_model % self.heads != 0 {
            bail!("cnn_transformer: the last channel count ({d_model}) must be even and divisible by heads ({})", self.heads);
        }
        if !(0.0..1.0).contains(&self.dropout) || !(0.0..1.0).contains(&self.positional_dropout) {
            bail!("cnn_transformer: dropout must be in [0, 1)");
        }
        Ok(blocks_len(&self.channels, self.kernel, self.padding, shape.frames)? * d_model)
    }

    pub fn init(&self, shape: InputShape, device: &Device) -> CnnTransformer {
        let inputs = std::iter::once(shape.channels).chain(self.channels.iter().copied());
        let blocks = inputs.zip(&self.channels).map(|(i, &o)| ConvBlock1d::new(i, o, self.kernel, self.padding, device)).collect();
        let d_model = *self.channels.last().expect("validated by output_size");
        CnnTransformer {
            blocks,
            positions: PositionalEncodingConfig::new(d_model).init(device),
            positional_dropout: DropoutConfig::new(self.positional_dropout).init(),
            transformer: TransformerEncoderConfig::new(d_model, self.feed_forward, self.heads, self.layers)
                .with_dropout(self.dropout)
                .with_norm_first(false)
                .with_activation(ActivationConfig::Relu)
                .init(device),
        }
    }
}

impl CnnTransformer {
    /// `(B, C, T)` -> `(B, T' x d_model)`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        // Channels last, (B, T', d_model): time steps are the tokens.
        let x = self.blocks.iter().fold(x.swap_dims(1, 2), |x, b| b.forward(x));
        let x = dropout::dropout(&self.positional_dropout, self.positions.forward(x));
        let x = transformer::encoder_forward(&self.transformer, x);
        x.flatten(1, 2)
    }
}
