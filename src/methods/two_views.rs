//! One modality, two augmented views of each sample through one encoder and
//! projection head, and a loss that pulls the views' embeddings together:
//! SimCLR's NT-Xent, or VICReg and Barlow Twins used unimodally.

use super::method::{Context, ModelSpec, Trained, TrainedParts};
use crate::models::{Encoder, ProjectionHead};
use crate::training::batches::{batch_tensor, eval_batches};
use crate::training::timing::{self, StepTimes};
use crate::training::{checkpoint, fit, FitRules, Objective, Progress, StepOutput, Validation};
use anyhow::Result;
use burn::prelude::*;
use std::path::Path;

/// A loss of two embeddings of the same samples (N x D each).
pub type PairLoss<'a> = &'a dyn Fn(Tensor<2>, Tensor<2>) -> Tensor<1>;

/// Encoder + projection head.
#[derive(Module, Debug)]
pub struct TwoViewModel {
    pub encoder: Encoder,
    pub projection: ProjectionHead,
}

impl TwoViewModel {
    /// Builds the model for the method's only modality.
    pub fn new(spec: &ModelSpec, device: &Device) -> Result<Self> {
        let encoder = spec.encoder(0, device)?;
        let projection = ProjectionHead::new(spec.encoder_output(0)?, &spec.method.projection, device);
        Ok(TwoViewModel { encoder, projection })
    }

    fn embed(&self, x: Tensor<4>) -> Tensor<2> {
        self.projection.forward(self.encoder.forward(x))
    }
}

/// The objective: `loss` of two augmented views, on training and validation batches.
pub struct TwoViews<'a> {
    pub ctx: &'a Context<'a>,
    pub loss: PairLoss<'a>,
}

impl TwoViews<'_> {
    fn views(&self, model: &TwoViewModel, batch: &[usize], names: [&str; 2], epoch: u64, device: &Device) -> Tensor<1> {
        let c = self.ctx;
        let view = |name: &str| {
            let x = batch_tensor(&c.data.clips[0], batch, c.method.augmentation(&c.data.modalities[0]), Some((c.seed, name, epoch)), device);
            model.embed(x)
        };
        (self.loss)(view(names[0]), view(names[1]))
    }
}

impl Objective for TwoViews<'_> {
    type Model = TwoViewModel;

    fn step(&self, model: &TwoViewModel, batch: &[usize], epoch: u64) -> StepOutput {
        StepOutput::new(self.views(model, batch, ["view_a", "view_b"], epoch, &self.ctx.train_device), vec![])
    }

    fn validate(&self, model: &TwoViewModel) -> Validation {
        let c = self.ctx;
        let batches = eval_batches(&c.data.split.val, c.method.schedule.batch_size);
        let losses: Vec<(f64, usize)> = batches
            .iter()
            .filter(|b| b.len() >= 2)
            .map(|b| (self.views(model, b, ["val_a", "val_b"], 0, &c.eval_device).into_scalar::<f32>() as f64, b.len()))
            .collect();
        Validation { loss: weighted_mean(&losses), metric: None }
    }
}

/// A freshly initialised [`TwoViewModel`] on the training device.
fn fresh_model(ctx: &Context) -> Result<TwoViewModel> {
    crate::device::build(&ctx.train_device, |d| TwoViewModel::new(&ctx.spec(), d))
}

/// Trains a [`TwoViewModel`] with `loss` and saves it to `out`.
pub fn train(ctx: &Context, loss: PairLoss, progress: &Progress, out: &Path) -> Result<Trained> {
    let objective = TwoViews { ctx, loss };
    let fitted = fit(&objective, fresh_model(ctx)?, &ctx.data.pretraining(), &ctx.method.schedule, FitRules::SelfSupervised, ctx.seed, progress)?;
    Trained::save(fitted, out, None)
}

/// Times what [`train`] runs ([`crate::methods::Method::time_steps`]).
pub fn time_steps(ctx: &Context, loss: PairLoss, batch: &[usize], steps: usize) -> Result<StepTimes> {
    Ok(timing::time_steps(&TwoViews { ctx, loss }, fresh_model(ctx)?, batch, steps, &ctx.train_device))
}

/// The encoder of a saved [`TwoViewModel`].
pub fn load(spec: &ModelSpec, device: &Device, path: &Path) -> Result<TrainedParts> {
    let model = checkpoint::load(TwoViewModel::new(spec, device)?, path)?.valid();
    Ok(TrainedParts { encoders: vec![model.encoder], projections: None })
}

/// Mean of per-batch values weighted by batch size.
pub fn weighted_mean(values: &[(f64, usize)]) -> f64 {
    let n: usize = values.iter().map(|v| v.1).sum();
    values.iter().map(|(v, k)| v * *k as f64).sum::<f64>() / n.max(1) as f64
}
