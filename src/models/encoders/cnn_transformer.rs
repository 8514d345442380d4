//! CNN-Transformer (docs/method.md section 4), the paper's inertial encoder:
//! Conv1d blocks, sinusoidal positions with dropout, post-norm Transformer
//! encoder layers with a ReLU feed-forward, flattened.

use super::cnn1d::{blocks_flops, blocks_len, ConvBlock1d};
use super::{default_series_channels, series_only, InputShape};
use crate::models::transformer;
use crate::models::{dropout, flops};
use anyhow::{bail, Result};
use burn::module::{ModuleMapper, Param};
use burn::nn::activation::ActivationConfig;
use burn::nn::attention::MultiHeadAttention;
use burn::nn::transformer::{TransformerEncoder, TransformerEncoderConfig};
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, PositionalEncoding, PositionalEncodingConfig};
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
    /// Start every Transformer layer as a copy of the first, as the
    /// reference code does (PyTorch's `TransformerEncoder` deep-copies one
    /// layer); off: each layer drawn on its own. The copy is drawn when the
    /// encoder is built rather than at first use.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub identical_layers: bool,
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
        let d_model = self.channels.last().copied().unwrap_or(0); // empty channels: blocks_len below is the error
        if d_model % 2 != 0 || self.heads == 0 || d_model % self.heads != 0 {
            bail!("cnn_transformer: the last channel count ({d_model}) must be even and divisible by heads ({})", self.heads);
        }
        if !(0.0..1.0).contains(&self.dropout) || !(0.0..1.0).contains(&self.positional_dropout) {
            bail!("cnn_transformer: dropout must be in [0, 1)");
        }
        Ok(blocks_len(&self.channels, self.kernel, self.padding, shape.frames)? * d_model)
    }

    /// Forward FLOPs per sample ([`crate::models::flops`]): the
    /// convolution blocks, then each Transformer layer on their time steps.
    pub fn forward_flops(&self, shape: InputShape) -> Result<u64> {
        let d_model = self.output_size(shape)?;
        let tokens = blocks_len(&self.channels, self.kernel, self.padding, shape.frames)?;
        let d_model = d_model / tokens;
        let layer = flops::transformer_layer(tokens, d_model, self.feed_forward);
        Ok(blocks_flops(&self.channels, self.kernel, self.padding, shape)? + self.layers as u64 * layer)
    }

    pub fn init(&self, shape: InputShape, device: &Device) -> CnnTransformer {
        let inputs = std::iter::once(shape.channels).chain(self.channels.iter().copied());
        let blocks = inputs.zip(&self.channels).map(|(i, &o)| ConvBlock1d::new(i, o, self.kernel, self.padding, device)).collect();
        let d_model = *self.channels.last().expect("validated by output_size");
        CnnTransformer {
            blocks,
            positions: PositionalEncodingConfig::new(d_model).init(device),
            positional_dropout: DropoutConfig::new(self.positional_dropout).init(),
            transformer: self.transformer(d_model, device),
        }
    }

    /// The Transformer layers, initialised as PyTorch's: burn's Linear
    /// defaults already are (Kaiming-uniform with a = sqrt 5, biases
    /// U(+-1/sqrt(fan_in))); attention's Q/K/V projections are
    /// Xavier-uniform over the stacked 3d x d in-projection, with zero
    /// biases, and the output projection's bias is zero.
    fn transformer(&self, d_model: usize, device: &Device) -> TransformerEncoder {
        let mut t = TransformerEncoderConfig::new(d_model, self.feed_forward, self.heads, self.layers)
            .with_dropout(self.dropout)
            .with_norm_first(false)
            .with_activation(ActivationConfig::Relu)
            .init(device);
        for layer in &mut t.layers {
            pytorch_attention_init(&mut layer.mha, d_model, device);
        }
        if self.identical_layers && !t.layers.is_empty() {
            crate::models::initialise_parameters(&t.layers[0]);
            let first = t.layers[0].clone();
            for layer in t.layers.iter_mut().skip(1) {
                *layer = first.clone().map(&mut FreshParameters);
            }
        }
        t
    }
}

/// `nn.MultiheadAttention._reset_parameters`: the in-projection weight
/// (Q, K and V stacked, 3d x d) Xavier-uniform, bound sqrt(6 / (d + 3d));
/// in-projection and output biases zero; the output weight keeps Linear's
/// initialisation.
fn pytorch_attention_init(mha: &mut MultiHeadAttention, d: usize, device: &Device) {
    let xavier = Initializer::XavierUniform { gain: 1.0 };
    for linear in [&mut mha.query, &mut mha.key, &mut mha.value] {
        linear.weight = xavier.init_with([d, d], Some(d), Some(3 * d), device);
        zero_bias(linear, d, device);
    }
    zero_bias(&mut mha.output, d, device);
}

fn zero_bias(linear: &mut Linear, d: usize, device: &Device) {
    if linear.bias.is_some() {
        linear.bias = Some(Initializer::Zeros.init_with([d], Some(d), Some(d), device));
    }
}

/// Gives every parameter of a cloned module a new id (same values), so a
/// copied layer trains as a parameter of its own.
struct FreshParameters;

impl ModuleMapper for FreshParameters {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        Param::from_tensor(param.val().detach())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_flops_of_the_papers_inertial_encoder() {
        let c: CnnTransformerConfig = crate::config::parse_yaml("{}").unwrap();
        let shape = InputShape { channels: 6, frames: 50, joints: 1 };
        // Multiply-adds: convolutions 6x32x5x48 + 32x64x5x46 + 64x128x5x44;
        // per layer on 44 tokens: projections 4x44x128x128, feed-forward
        // 2x44x128x2048, scores and sum 2x44x44x128.
        let convs = 6 * 32 * 5 * 48 + 32 * 64 * 5 * 46 + 64 * 128 * 5 * 44;
        let layer = 4 * 44 * 128 * 128 + 2 * 44 * 128 * 2048 + 2 * 44 * 44 * 128;
        assert_eq!(c.forward_flops(shape).unwrap(), 2 * (convs + 2 * layer));
        // Kernel 3 keeps 50 steps (the supervised multimodal baseline).
        let k3: CnnTransformerConfig = crate::config::parse_yaml("kernel: 3").unwrap();
        let convs = 6 * 32 * 3 * 50 + 32 * 64 * 3 * 50 + 64 * 128 * 3 * 50;
        let layer = 4 * 50 * 128 * 128 + 2 * 50 * 128 * 2048 + 2 * 50 * 50 * 128;
        assert_eq!(k3.forward_flops(shape).unwrap(), 2 * (convs + 2 * layer));
    }

    fn values(p: &Param<Tensor<2>>) -> Vec<f32> {
        p.val().into_data().try_to_vec::<f32>().unwrap()
    }

    fn encoder(identical_layers: bool) -> CnnTransformer {
        let c: CnnTransformerConfig = crate::config::parse_yaml(&format!("identical_layers: {identical_layers}")).unwrap();
        c.init(InputShape { channels: 6, frames: 50, joints: 1 }, &Device::flex())
    }

    /// Initial weights as PyTorch draws them: attention in-projections
    /// U(+-sqrt(6 / 4d)) (d = 128: 0.108), zero biases, the output and
    /// feed-forward projections U(+-1/sqrt(fan_in)).
    #[test]
    fn attention_starts_as_pytorchs_and_copied_layers_are_an_option() {
        let _rng = crate::training::exclusive();
        let e = encoder(false);
        let layer = &e.transformer.layers[0];
        let d = 128.0f32;
        let uniform = |v: &[f32], bound: f32, what: &str| {
            let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            let var = v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32;
            assert!(max <= bound && max > 0.98 * bound, "{what}: max |w| {max}, bound {bound}");
            assert!((var / (bound * bound / 3.0) - 1.0).abs() < 0.05, "{what}: variance {var} vs {}", bound * bound / 3.0);
        };
        for (what, linear) in [("query", &layer.mha.query), ("key", &layer.mha.key), ("value", &layer.mha.value)] {
            uniform(&values(&linear.weight), (6.0 / (4.0 * d)).sqrt(), what);
            assert!(linear.bias.as_ref().unwrap().val().into_data().try_to_vec::<f32>().unwrap().iter().all(|&b| b == 0.0), "{what} bias");
        }
        uniform(&values(&layer.mha.output.weight), 1.0 / d.sqrt(), "output");
        assert!(layer.mha.output.bias.as_ref().unwrap().val().into_data().try_to_vec::<f32>().unwrap().iter().all(|&b| b == 0.0));
        uniform(&values(&layer.pwff.linear_inner.weight), 1.0 / d.sqrt(), "feed-forward inner");
        uniform(&values(&layer.pwff.linear_outer.weight), 1.0 / 2048f32.sqrt(), "feed-forward outer");
        // Layers drawn on their own differ; copied layers start equal, as
        // parameters of their own.
        assert_ne!(values(&e.transformer.layers[1].mha.query.weight), values(&layer.mha.query.weight));
        let c = encoder(true);
        let (a, b) = (&c.transformer.layers[0], &c.transformer.layers[1]);
        assert_eq!(values(&a.mha.query.weight), values(&b.mha.query.weight));
        assert_eq!(values(&a.pwff.linear_outer.weight), values(&b.pwff.linear_outer.weight));
        assert_ne!(a.mha.query.weight.id, b.mha.query.weight.id);
    }
}
