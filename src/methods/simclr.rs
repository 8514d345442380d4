//! SimCLR (Chen et al., 2020) on one modality: two augmented views of each
//! sample, encoder + projection head, NT-Xent.

use super::Context;
use crate::losses::nt_xent_loss;
use crate::models::{Encoder, ProjectionHead};
use crate::training::batches::{batch_tensor, eval_batches};
use crate::training::{Objective, StepOutput, Validation};
use burn::prelude::*;

/// Encoder + projection head.
#[derive(Module, Debug)]
pub struct SimclrModel {
    pub encoder: Encoder,
    pub projection: ProjectionHead,
}

impl SimclrModel {
    /// Builds the model for the method's only modality.
    pub fn new(ctx: &Context, device: &Device) -> anyhow::Result<Self> {
        let encoder = ctx.encoder(0, device)?;
        let projection = ProjectionHead::new(ctx.encoder_output(0)?, &ctx.method.projection, device);
        Ok(SimclrModel { encoder, projection })
    }

    fn embed(&self, x: Tensor<4>) -> Tensor<2> {
        self.projection.forward(self.encoder.forward(x))
    }
}

/// SimCLR's training objective.
pub struct Simclr<'a> {
    pub ctx: &'a Context<'a>,
}

impl Simclr<'_> {
    fn views(&self, model: &SimclrModel, batch: &[usize], names: [&str; 2], epoch: u64, device: &Device) -> Tensor<1> {
        let c = self.ctx;
        let view = |name: &str| {
            let x = batch_tensor(&c.data.clips[0], batch, c.method.augmentation(&c.data.modalities[0]), Some((c.seed, name, epoch)), device);
            model.embed(x)
        };
        nt_xent_loss(view(names[0]), view(names[1]), c.temperature())
    }
}

impl Objective for Simclr<'_> {
    type Model = SimclrModel;

    fn step(&self, model: &SimclrModel, batch: &[usize], epoch: u64) -> StepOutput {
        StepOutput::new(self.views(model, batch, ["view_a", "view_b"], epoch, &self.ctx.train_device), vec![])
    }

    fn validate(&self, model: &SimclrModel) -> Validation {
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

/// Mean of per-batch values weighted by batch size.
pub fn weighted_mean(values: &[(f64, usize)]) -> f64 {
    let n: usize = values.iter().map(|v| v.1).sum();
    values.iter().map(|(v, k)| v * *k as f64).sum::<f64>() / n.max(1) as f64
}
