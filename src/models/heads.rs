//! Heads (docs/method.md section 5): the SSL projection, and the classifiers put on
//! encoders for supervised training and evaluation.

use crate::models::channels_last;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, Relu};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Sizes of the SSL projection head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectionConfig {
    #[serde(default = "hidden")]
    pub hidden: usize,
    #[serde(default = "out")]
    pub out: usize,
}

fn hidden() -> usize {
    256
}
fn out() -> usize {
    128
}

impl Default for ProjectionConfig {
    fn default() -> Self {
        ProjectionConfig { hidden: hidden(), out: out() }
    }
}

/// Linear(in, 256) -> BatchNorm -> ReLU -> Linear(256, 128).
#[derive(Module, Debug)]
pub struct ProjectionHead {
    first: Linear,
    norm: BatchNorm,
    second: Linear,
}

impl ProjectionHead {
    pub fn new(input: usize, c: &ProjectionConfig, device: &Device) -> Self {
        ProjectionHead {
            first: LinearConfig::new(input, c.hidden).init(device),
            norm: BatchNormConfig::new(c.hidden).init(device),
            second: LinearConfig::new(c.hidden, c.out).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        // Batch norm + ReLU as one operation (and running statistics that
        // do not depend on the thread, see `channels_last`).
        self.second.forward(channels_last::batch_norm_relu(&self.norm, self.first.forward(x)))
    }
}

/// The head that evaluates one frozen SSL encoder (fine-tuning and label
/// fractions; several modalities always get the fusion classifier).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum EvaluationHead {
    /// Flatten, one Linear(out, classes): the reference code's linear
    /// evaluation, whose numbers fill the paper's table.
    #[default]
    Linear,
    /// The MLP in -> 256 -> 128 -> classes (the reference's unused
    /// `models/mlp.py`; cmkm's head before 0.12.0).
    Mlp,
}

/// Unimodal evaluation MLP: in -> 256 -> ReLU -> 128 -> ReLU -> classes.
#[derive(Module, Debug)]
pub struct EvaluationMlp {
    layers: Vec<Linear>,
    relu: Relu,
}

impl EvaluationMlp {
    pub fn new(input: usize, classes: usize, device: &Device) -> Self {
        let sizes = [input, 256, 128, classes];
        EvaluationMlp { layers: sizes.windows(2).map(|w| LinearConfig::new(w[0], w[1]).init(device)).collect(), relu: Relu::new() }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x, |x, (i, l)| {
            let y = l.forward(x);
            if i < last {
                self.relu.forward(y)
            } else {
                y
            }
        })
    }
}

/// One modality's branch of the fusion classifier: Linear -> BN -> ReLU.
#[derive(Module, Debug)]
pub struct FusionBranch {
    linear: Linear,
    norm: BatchNorm,
}

/// Multimodal classifier: per modality Linear(out, 256) -> BN -> ReLU,
/// concatenated, then Linear(256 x modalities, classes).
#[derive(Module, Debug)]
pub struct FusionClassifier {
    branches: Vec<FusionBranch>,
    out: Linear,
}

impl FusionClassifier {
    pub fn new(inputs: &[usize], classes: usize, device: &Device) -> Self {
        let branches =
            inputs.iter().map(|&i| FusionBranch { linear: LinearConfig::new(i, 256).init(device), norm: BatchNormConfig::new(256).init(device) }).collect();
        FusionClassifier { branches, out: LinearConfig::new(256 * inputs.len(), classes).init(device) }
    }

    pub fn forward(&self, features: Vec<Tensor<2>>) -> Tensor<2> {
        // Batch norm through `channels_last`, as every other layer: running
        // statistics that follow the batches in order, unbiased variance.
        let parts = self.branches.iter().zip(features).map(|(b, f)| channels_last::batch_norm_relu(&b.norm, b.linear.forward(f))).collect();
        self.out.forward(Tensor::cat(parts, 1))
    }
}

/// The classifier on top of one or more encoders.
#[derive(Module, Debug)]
pub enum ClassifierHead {
    /// Supervised unimodal, and the linear evaluation: Linear(out, classes).
    Linear(Linear),
    /// Evaluation of a frozen SSL encoder.
    Mlp(EvaluationMlp),
    /// Several modalities.
    Fusion(FusionClassifier),
}

impl ClassifierHead {
    /// Logits from per-modality features.
    pub fn forward(&self, mut features: Vec<Tensor<2>>) -> Tensor<2> {
        match self {
            ClassifierHead::Linear(l) => l.forward(features.remove(0)),
            ClassifierHead::Mlp(m) => m.forward(features.remove(0)),
            ClassifierHead::Fusion(f) => f.forward(features),
        }
    }
}
