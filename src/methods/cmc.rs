//! CMC (Tian et al., 2020) on two modalities: one encoder + projection per
//! modality, InfoNCE across modalities in both directions at temperature tau.
//!
//! ```yaml
//! kind: cmc
//! loss: {temperature: 0.1}
//! ```

use super::cross_modal;
use super::flops::{MethodFlops, PassFlops};
use super::method::{Context, Method, ModelSpec, Temperature, Trained, TrainedParts};
use crate::losses::cmc_loss;
use crate::training::timing::StepTimes;
use crate::training::Progress;
use anyhow::Result;
use std::ops::RangeInclusive;
use std::path::Path;

/// CMC, registered as `kind: cmc`.
pub struct Cmc;

impl Method for Cmc {
    fn kind(&self) -> &'static str {
        "cmc"
    }
    fn display_name(&self) -> &'static str {
        "CMC"
    }
    fn modalities(&self) -> RangeInclusive<usize> {
        2..=2
    }
    fn self_supervised(&self) -> bool {
        true
    }
    fn check_loss(&self, loss: Option<&serde_yaml::Value>, file: Option<&Path>) -> Result<()> {
        Temperature::of(self.kind(), loss, file).map(|_| ())
    }
    fn train(&self, ctx: &Context, progress: &Progress, out: &Path) -> Result<Trained> {
        let tau = Temperature::of(self.kind(), ctx.method.loss.as_ref(), None)?;
        cross_modal::train(ctx, &|z1, z2| cmc_loss(z1, z2, tau), None, progress, out)
    }
    fn load(&self, spec: &ModelSpec, device: &burn::prelude::Device, checkpoint: &Path) -> Result<TrainedParts> {
        cross_modal::load(spec, device, checkpoint)
    }
    fn time_steps(&self, ctx: &Context, batch: &[usize], steps: usize) -> Result<StepTimes> {
        let tau = Temperature::of(self.kind(), ctx.method.loss.as_ref(), None)?;
        cross_modal::time_steps(ctx, &|z1, z2| cmc_loss(z1, z2, tau), None, batch, steps)
    }
    fn flops(&self, spec: &ModelSpec, samples: usize) -> Result<PassFlops> {
        Ok(MethodFlops::of(spec)?.cross_modal(samples, false))
    }
}
