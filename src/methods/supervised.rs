//! Supervised references: encoders + classifier trained end to end on labels
//! (one modality: a linear head; several: the fusion classifier), tested
//! with the epoch of the best validation main metric. Also the evaluation of
//! a fixed split, used for the test pass.
//!
//! ```yaml
//! kind: supervised   # no loss section: cross-entropy
//! ```

use super::flops::{MethodFlops, PassFlops};
use super::method::{Context, Method, ModelSpec, Trained, TrainedParts};
use super::two_views::weighted_mean;
use crate::data::transforms::TransformStep;
use crate::metrics::{classification_metrics, ClassificationMetrics};
use crate::models::{ClassifierHead, Encoder, FusionClassifier};
use crate::training::batches::{batch_tensor, eval_batches, label_tensor};
use crate::training::timing::{self, StepTimes};
use crate::training::{checkpoint, fit, FitRules, Objective, Progress, StepOutput, TrainData, Validation};
use anyhow::{bail, Result};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::LinearConfig;
use burn::prelude::*;
use std::ops::RangeInclusive;
use std::path::Path;

/// Supervised training, registered as `kind: supervised`.
pub struct SupervisedMethod;

impl Method for SupervisedMethod {
    fn kind(&self) -> &'static str {
        "supervised"
    }
    fn display_name(&self) -> &'static str {
        "Supervised"
    }
    fn modalities(&self) -> RangeInclusive<usize> {
        1..=usize::MAX
    }
    fn self_supervised(&self) -> bool {
        false
    }
    fn check_loss(&self, loss: Option<&serde_yaml::Value>, file: Option<&Path>) -> Result<()> {
        match (loss, file) {
            (Some(_), Some(f)) => bail!("{}: a supervised method trains on cross-entropy and has no `loss` settings; remove `loss`", f.display()),
            (Some(_), None) => bail!("a supervised method trains on cross-entropy and has no `loss` settings; remove `loss`"),
            _ => Ok(()),
        }
    }
    fn train(&self, ctx: &Context, progress: &Progress, out: &Path) -> Result<Trained> {
        let objective = Supervised::of(ctx);
        let fitted = fit(&objective, fresh_model(ctx)?, &ctx.data.split.train, &ctx.method.schedule, FitRules::Classifier, ctx.seed, progress)?;
        let test = objective.evaluate(&fitted.best, &ctx.data.split.test);
        write_predictions(out, ctx.data, &ctx.data.split.test, &test.predictions)?;
        Trained::save(fitted, out, Some(test.metrics))
    }
    fn load(&self, spec: &ModelSpec, device: &Device, path: &Path) -> Result<TrainedParts> {
        let model = checkpoint::load(SupervisedModel::new(spec, device)?, path)?.valid();
        Ok(TrainedParts { encoders: model.encoders, projections: None })
    }
    fn time_steps(&self, ctx: &Context, batch: &[usize], steps: usize) -> Result<StepTimes> {
        Ok(timing::time_steps(&Supervised::of(ctx), fresh_model(ctx)?, batch, steps, &ctx.train_device))
    }
    fn flops(&self, spec: &ModelSpec, samples: usize) -> Result<PassFlops> {
        Ok(MethodFlops::of(spec)?.supervised(samples))
    }
}

/// A freshly initialised [`SupervisedModel`] on the training device.
fn fresh_model(ctx: &Context) -> Result<SupervisedModel> {
    crate::device::build(&ctx.train_device, |d| SupervisedModel::new(&ctx.spec(), d))
}

/// `predictions.csv` (1-based labels) of `indices` into `out`.
fn write_predictions(out: &Path, data: &TrainData, indices: &[usize], predictions: &[usize]) -> Result<()> {
    let mut csv = String::from("sample_id,label,prediction\n");
    for (&i, p) in indices.iter().zip(predictions) {
        csv.push_str(&format!("{},{},{}\n", data.sample_ids[i], data.labels[i] + 1, p + 1));
    }
    crate::fsutil::write_atomic(&out.join("predictions.csv"), csv.as_bytes())
}

/// Encoders (one per modality) and a classifier head.
#[derive(Module, Debug)]
pub struct SupervisedModel {
    pub encoders: Vec<Encoder>,
    pub head: ClassifierHead,
}

impl SupervisedModel {
    /// One encoder per modality and the head (linear for one modality, the fusion classifier for several).
    pub fn new(spec: &ModelSpec, device: &Device) -> Result<Self> {
        let n = spec.modalities.len();
        let encoders = (0..n).map(|m| spec.encoder(m, device)).collect::<Result<Vec<_>>>()?;
        let sizes = (0..n).map(|m| spec.encoder_output(m)).collect::<Result<Vec<_>>>()?;
        let head = if n == 1 {
            ClassifierHead::Linear(LinearConfig::new(sizes[0], spec.classes).init(device))
        } else {
            ClassifierHead::Fusion(FusionClassifier::new(&sizes, spec.classes, device))
        };
        Ok(SupervisedModel { encoders, head })
    }

    /// Class logits from one tensor per modality.
    pub fn forward(&self, inputs: Vec<Tensor<4>>) -> Tensor<2> {
        let features = self.encoders.iter().zip(inputs).map(|(e, x)| e.forward(x)).collect();
        self.head.forward(features)
    }
}

/// Cross-entropy training with augmentation, validation on the main metric:
/// a supervised method's training, and the evaluation heads that train
/// with the encoders in the loop.
pub struct Supervised<'a> {
    pub data: &'a TrainData,
    /// Each modality's augmentations, in the data's order (none for a head
    /// on frozen encoders).
    pub augmentations: Vec<&'a [TransformStep]>,
    /// Seeds the augmentation streams.
    pub seed: u64,
    /// Batch of the evaluation passes.
    pub batch_size: usize,
    /// Autodiff device: the training steps.
    pub train_device: Device,
    /// Plain device: validation and test.
    pub eval_device: Device,
}

impl<'a> Supervised<'a> {
    /// The objective of a supervised method's training.
    pub fn of(ctx: &'a Context<'a>) -> Self {
        Supervised {
            data: ctx.data,
            augmentations: ctx.data.modalities.iter().map(|m| ctx.method.augmentation(m)).collect(),
            seed: ctx.seed,
            batch_size: ctx.method.schedule.batch_size,
            train_device: ctx.train_device.clone(),
            eval_device: ctx.eval_device.clone(),
        }
    }
}

/// Predictions and loss over a fixed list of samples.
pub struct Evaluation {
    pub loss: f64,
    pub predictions: Vec<usize>,
    pub metrics: ClassificationMetrics,
}

impl Supervised<'_> {
    fn inputs(&self, batch: &[usize], augment: Option<u64>, device: &Device) -> Vec<Tensor<4>> {
        (0..self.data.modalities.len())
            .map(|m| {
                let name = &self.data.modalities[m];
                let steps = if augment.is_some() { self.augmentations[m] } else { &[] };
                batch_tensor(&self.data.clips[m], batch, steps, augment.map(|e| (self.seed, name.as_str(), e)), device)
            })
            .collect()
    }

    /// Evaluates an evaluation-mode model on `indices` (no augmentation).
    pub fn evaluate(&self, model: &SupervisedModel, indices: &[usize]) -> Evaluation {
        evaluate_classifier(self.data, indices, self.batch_size, &self.eval_device, |batch| model.forward(self.inputs(batch, None, &self.eval_device)))
    }
}

/// Cross-entropy, argmax predictions and metrics of `logits` over
/// `indices`, in fixed-order batches: every classifier evaluation shares it.
pub fn evaluate_classifier(data: &TrainData, indices: &[usize], batch_size: usize, device: &Device, logits: impl Fn(&[usize]) -> Tensor<2>) -> Evaluation {
    let ce = CrossEntropyLossConfig::new().init(device);
    let mut predictions = Vec::with_capacity(indices.len());
    let mut losses = vec![];
    for batch in eval_batches(indices, batch_size) {
        let logits = logits(&batch);
        let loss = ce.forward(logits.clone(), label_tensor(&data.labels, &batch, device));
        losses.push((loss.into_scalar::<f32>() as f64, batch.len()));
        let argmax = logits.argmax(1).squeeze_dim::<1>(1).try_into_vec_as::<i64>().expect("argmax indices read back as integers");
        predictions.extend(argmax.into_iter().map(|p| p as usize));
    }
    let labels: Vec<usize> = indices.iter().map(|&i| data.labels[i]).collect();
    let metrics = classification_metrics(&labels, &predictions, data.classes);
    Evaluation { loss: weighted_mean(&losses), predictions, metrics }
}

impl Objective for Supervised<'_> {
    type Model = SupervisedModel;

    fn step(&self, model: &SupervisedModel, batch: &[usize], epoch: u64) -> StepOutput {
        let logits = model.forward(self.inputs(batch, Some(epoch), &self.train_device));
        let loss = CrossEntropyLossConfig::new().init(&self.train_device).forward(logits, label_tensor(&self.data.labels, batch, &self.train_device));
        StepOutput::new(loss, vec![])
    }

    fn validate(&self, model: &SupervisedModel) -> Validation {
        let e = self.evaluate(model, &self.data.split.val);
        Validation { loss: e.loss, metric: Some(e.metrics.main(self.data.main_metric)) }
    }
}
