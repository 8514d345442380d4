//! Encoders: a modality's sample `(B, C, T, J)` in, a flat feature vector out.
//! Which encoder a modality gets, and its sizes, come from YAML.

mod cnn1d;
mod cnn_transformer;
mod co_occurrence;

pub use cnn1d::{Cnn1d, Cnn1dConfig};
pub use cnn_transformer::{CnnTransformer, CnnTransformerConfig};
pub use co_occurrence::{CoOccurrenceConfig, CoOccurrenceEncoder};

use anyhow::{bail, Result};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Shape of one sample as an encoder sees it: channels, time steps, joints
/// (1 for series).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputShape {
    pub channels: usize,
    pub frames: usize,
    pub joints: usize,
}

/// An encoder choice with its sizes; the YAML `type` selects the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EncoderConfig {
    Cnn1d(Cnn1dConfig),
    CnnTransformer(CnnTransformerConfig),
    CoOccurrence(CoOccurrenceConfig),
}

impl EncoderConfig {
    /// The YAML `type` name (`cnn1d`, `cnn_transformer`, `co_occurrence`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            EncoderConfig::Cnn1d(_) => "cnn1d",
            EncoderConfig::CnnTransformer(_) => "cnn_transformer",
            EncoderConfig::CoOccurrence(_) => "co_occurrence",
        }
    }
}

/// An initialised encoder.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // a handful live per run
pub enum Encoder {
    Cnn1d(Cnn1d),
    CnnTransformer(CnnTransformer),
    CoOccurrence(CoOccurrenceEncoder),
}

impl EncoderConfig {
    /// Features the encoder outputs for inputs of `shape`, computed from the
    /// configuration alone; errors when the input is too small for it.
    pub fn output_size(&self, shape: InputShape) -> Result<usize> {
        match self {
            EncoderConfig::Cnn1d(c) => c.output_size(shape),
            EncoderConfig::CnnTransformer(c) => c.output_size(shape),
            EncoderConfig::CoOccurrence(c) => c.output_size(shape),
        }
    }

    /// Forward FLOPs per sample for inputs of `shape`
    /// ([`crate::models::flops`]: convolutions, linear layers, attention).
    pub fn forward_flops(&self, shape: InputShape) -> Result<u64> {
        match self {
            EncoderConfig::Cnn1d(c) => c.forward_flops(shape),
            EncoderConfig::CnnTransformer(c) => c.forward_flops(shape),
            EncoderConfig::CoOccurrence(c) => c.forward_flops(shape),
        }
    }

    /// Builds the encoder for inputs of `shape`.
    pub fn init(&self, shape: InputShape, device: &Device) -> Result<Encoder> {
        self.output_size(shape)?;
        Ok(match self {
            EncoderConfig::Cnn1d(c) => Encoder::Cnn1d(c.init(shape, device)),
            EncoderConfig::CnnTransformer(c) => Encoder::CnnTransformer(c.init(shape, device)),
            EncoderConfig::CoOccurrence(c) => Encoder::CoOccurrence(c.init(shape, device)),
        })
    }
}

impl Encoder {
    /// `(B, C, T, J)` -> `(B, features)`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Encoder::Cnn1d(e) => e.forward(x.squeeze_dim::<3>(3)),
            Encoder::CnnTransformer(e) => e.forward(x.squeeze_dim::<3>(3)),
            Encoder::CoOccurrence(e) => e.forward(x),
        }
    }
}

/// Output length of a valid (or explicitly padded) convolution.
pub(crate) fn conv_len(len: usize, kernel: usize, padding: usize) -> Result<usize> {
    let padded = len + 2 * padding;
    if padded < kernel {
        bail!("input of length {len} is shorter than the kernel {kernel} (padding {padding})");
    }
    Ok(padded - kernel + 1)
}

/// Output length of a max-pool with stride = kernel, floor mode.
pub(crate) fn pool_len(len: usize, pool: usize) -> Result<usize> {
    if len < pool {
        bail!("input of length {len} is shorter than the pool size {pool}");
    }
    Ok(len / pool)
}

fn series_only(shape: InputShape, name: &str) -> Result<()> {
    if shape.joints != 1 {
        bail!("{name} encodes series (one joint), got {} joints: use co_occurrence for skeletons", shape.joints);
    }
    Ok(())
}

fn default_series_channels() -> Vec<usize> {
    vec![32, 64, 128]
}
