//! SimCLR (Chen et al., 2020) on one modality: two augmented views of each
//! sample, encoder + projection head, NT-Xent at temperature tau.
//!
//! ```yaml
//! kind: simclr
//! loss: {temperature: 0.1}
//! ```

use super::flops::{MethodFlops, PassFlops};
use super::method::{Context, Method, ModelSpec, Temperature, Trained, TrainedParts};
use super::two_views;
use crate::losses::nt_xent_loss;
use crate::training::timing::StepTimes;
use crate::training::Progress;
use anyhow::Result;
use std::ops::RangeInclusive;
use std::path::Path;

/// SimCLR, registered as `kind: simclr`.
pub struct Simclr;

impl Method for Simclr {
    fn kind(&self) -> &'static str {
        "simclr"
    }
    fn display_name(&self) -> &'static str {
        "SimCLR"
    }
    fn modalities(&self) -> RangeInclusive<usize> {
        1..=1
    }
    fn self_supervised(&self) -> bool {
        true
    }
    fn check_loss(&self, loss: Option<&serde_yaml::Value>, file: Option<&Path>) -> Result<()> {
        Temperature::of(self.kind(), loss, file).map(|_| ())
    }
    fn train(&self, ctx: &Context, progress: &Progress, out: &Path) -> Result<Trained> {
        let tau = Temperature::of(self.kind(), ctx.method.loss.as_ref(), None)?;
        two_views::train(ctx, &|a, b| nt_xent_loss(a, b, tau), progress, out)
    }
    fn load(&self, spec: &ModelSpec, device: &burn::prelude::Device, checkpoint: &Path) -> Result<TrainedParts> {
        two_views::load(spec, device, checkpoint)
    }
    fn time_steps(&self, ctx: &Context, batch: &[usize], steps: usize) -> Result<StepTimes> {
        let tau = Temperature::of(self.kind(), ctx.method.loss.as_ref(), None)?;
        two_views::time_steps(ctx, &|a, b| nt_xent_loss(a, b, tau), batch, steps)
    }
    fn flops(&self, spec: &ModelSpec, samples: usize) -> Result<PassFlops> {
        Ok(MethodFlops::of(spec)?.two_views(samples))
    }
}
