//! Fine-tuning (the paper's "fully-supervised fine-tuning"): frozen encoders
//! plus the evaluation heads of docs/method.md section 5, trained on the train split
//! (or a subset) with docs/method.md section 7's schedule, selected on the validation
//! main metric, then one test pass.
//!
//! Frozen encoders see no augmentation, so their features are computed once
//! and the head trains on the cached features ([`fine_tune_cached`]);
//! [`fine_tune_encoders`] runs the encoders every step instead, which is the
//! reference behaviour (a test shows both agree) and, with `full`, fine-tunes
//! the encoders too.

use super::{ClassificationResult, EncoderSet, HeadTraining};
use crate::methods::devices;
use crate::methods::supervised::{evaluate_classifier, Evaluation, Supervised, SupervisedModel};
use crate::models::{ClassifierHead, EvaluationHead, EvaluationMlp, FusionClassifier};
use crate::training::batches::label_tensor;
use crate::training::{exclusive, fit, FitRules, Objective, Progress, StepOutput, TrainData, Validation};
use anyhow::Result;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;

pub use super::settings::{paper_schedule, FrozenEncoders};

/// The evaluation head: `kind` (linear or the MLP) for one modality, the
/// fusion classifier for several.
pub fn evaluation_head(feature_sizes: &[usize], classes: usize, kind: EvaluationHead, device: &Device) -> ClassifierHead {
    match (feature_sizes, kind) {
        ([one], EvaluationHead::Linear) => ClassifierHead::Linear(burn::nn::LinearConfig::new(*one, classes).init(device)),
        ([one], EvaluationHead::Mlp) => ClassifierHead::Mlp(EvaluationMlp::new(*one, classes, device)),
        (many, _) => ClassifierHead::Fusion(FusionClassifier::new(many, classes, device)),
    }
}

/// Trains a head on cached features.
struct CachedHead<'a> {
    features: &'a [Vec<Vec<f32>>],
    data: &'a TrainData,
    batch_size: usize,
    train_device: Device,
    eval_device: Device,
}

impl CachedHead<'_> {
    fn inputs(&self, batch: &[usize], device: &Device) -> Vec<Tensor<2>> {
        self.features
            .iter()
            .map(|f| {
                let d = f[0].len();
                let flat: Vec<f32> = batch.iter().flat_map(|&i| f[i].iter().copied()).collect();
                Tensor::from_data(TensorData::new(flat, [batch.len(), d]), device)
            })
            .collect()
    }

    fn evaluate(&self, head: &ClassifierHead, indices: &[usize]) -> Evaluation {
        evaluate_classifier(self.data, indices, self.batch_size, &self.eval_device, |batch| head.forward(self.inputs(batch, &self.eval_device)))
    }
}

impl Objective for CachedHead<'_> {
    type Model = ClassifierHead;

    fn step(&self, head: &ClassifierHead, batch: &[usize], _epoch: u64) -> StepOutput {
        let logits = head.forward(self.inputs(batch, &self.train_device));
        let loss = CrossEntropyLossConfig::new().init(&self.train_device).forward(logits, label_tensor(&self.data.labels, batch, &self.train_device));
        StepOutput::new(loss, vec![])
    }

    fn validate(&self, head: &ClassifierHead) -> Validation {
        let e = self.evaluate(head, &self.data.split.val);
        Validation { loss: e.loss, metric: Some(e.metrics.main(self.data.main_metric)) }
    }
}

fn result<M>(data: &TrainData, test: &[usize], e: Evaluation, fitted: &crate::training::Fitted<M>) -> ClassificationResult {
    ClassificationResult {
        metrics: e.metrics,
        best_epoch: fitted.best_epoch + 1,
        epochs_run: fitted.log.len(),
        validation: fitted.log.get(fitted.best_epoch).and_then(|l| l.val_metric),
        sample_ids: test.iter().map(|&i| data.sample_ids[i].clone()).collect(),
        labels: test.iter().map(|&i| data.labels[i]).collect(),
        predictions: e.predictions,
    }
}

/// Fine-tunes a head on cached encoder `features` (per modality, per
/// sample) using the samples `train`; selects on validation, tests once.
/// The features being fixed, `training.frozen` plays no part.
pub fn fine_tune_cached(
    features: &[Vec<Vec<f32>>],
    data: &TrainData,
    train: &[usize],
    training: &HeadTraining,
    progress: &Progress,
) -> Result<ClassificationResult> {
    let HeadTraining { schedule, head, seed, .. } = training;
    let _exclusive = exclusive();
    let (train_device, eval_device) = devices();
    crate::device::seed(&train_device, *seed);
    let sizes: Vec<usize> = features.iter().map(|f| f[0].len()).collect();
    let objective = CachedHead { features, data, batch_size: schedule.batch_size, train_device: train_device.clone(), eval_device };
    let head = crate::device::build(&train_device, |d| Ok(evaluation_head(&sizes, data.classes, *head, d)))?;
    let fitted = fit(&objective, head, train, schedule, FitRules::Classifier, *seed, progress)?;
    let e = objective.evaluate(&fitted.best, &data.split.test);
    Ok(result(data, &data.split.test, e, &fitted))
}

/// Fine-tunes heads on the frozen encoders of `set` in the
/// `training.frozen` mode: on their cached features
/// ([`FrozenEncoders::Eval`]) or with them run in every step
/// ([`FrozenEncoders::Training`]). `device` computes the cache.
pub fn fine_tune_frozen(
    set: &EncoderSet,
    data: &TrainData,
    train: &[usize],
    training: &HeadTraining,
    device: &Device,
    progress: &Progress,
) -> Result<ClassificationResult> {
    match training.frozen {
        FrozenEncoders::Eval => fine_tune_cached(&set.features(data, device)?, data, train, training, progress),
        FrozenEncoders::Training => fine_tune_encoders(set, data, train, training, false, progress),
    }
}

/// Fine-tunes with the encoders in the loop: frozen (in [`FrozenEncoders::Eval`]
/// mode the same result as [`fine_tune_cached`], slower; in
/// [`FrozenEncoders::Training`] mode as the reference) or, with `full`,
/// trained too.
pub fn fine_tune_encoders(
    set: &EncoderSet,
    data: &TrainData,
    train: &[usize],
    training: &HeadTraining,
    full: bool,
    progress: &Progress,
) -> Result<ClassificationResult> {
    let HeadTraining { schedule, head, frozen, seed } = training;
    let (head, frozen, seed) = (*head, *frozen, *seed);
    set.check(data)?;
    let _exclusive = exclusive();
    let (train_device, eval_device) = devices();
    crate::device::seed(&train_device, seed);
    // Evaluation heads train on the inputs as they are: no augmentation.
    let objective = Supervised {
        data,
        augmentations: vec![&[]; set.modalities.len()],
        seed,
        batch_size: schedule.batch_size,
        train_device: train_device.clone(),
        eval_device,
    };
    let sizes = set.configs.iter().zip(&set.shapes).map(|(c, &s)| c.output_size(s)).collect::<Result<Vec<_>>>()?;
    let encoders = set
        .encoders
        .iter()
        .map(|e| match (full, frozen) {
            (true, _) => e.clone().train(),
            (false, FrozenEncoders::Eval) => e.clone().train().freeze(),
            (false, FrozenEncoders::Training) => e.clone().train().no_grad(),
        })
        .collect();
    let head = crate::device::build(&train_device, |d| Ok(evaluation_head(&sizes, data.classes, head, d)))?;
    let model = SupervisedModel { encoders, head };
    let fitted = fit(&objective, model, train, schedule, FitRules::Classifier, seed, progress)?;
    let e = objective.evaluate(&fitted.best, &data.split.test);
    Ok(result(data, &data.split.test, e, &fitted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linear_evaluation_head_is_one_linear_layer() {
        let _rng = crate::training::exclusive();
        let device = Device::flex();
        let params = |kind| evaluation_head(&[5632], 27, kind, &device).num_params();
        assert_eq!(params(EvaluationHead::Linear), 5632 * 27 + 27);
        assert_eq!(params(EvaluationHead::Mlp), (5632 * 256 + 256) + (256 * 128 + 128) + (128 * 27 + 27));
    }
}
