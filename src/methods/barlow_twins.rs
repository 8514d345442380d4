//! Barlow Twins (Zbontar et al., 2021): the cross-correlation of two
//! batch-normalised embeddings pulled towards the identity, no negatives.
//! On one modality it compares two augmented views (like SimCLR); on two
//! modalities it compares the modalities (like CMC). The projector
//! (`projection: {hidden, out}`) is smaller than the authors' 8192-wide one,
//! to suit the encoders' feature sizes.
//!
//! ```yaml
//! kind: barlow_twins
//! loss: {lambda: 0.005}  # the default
//! ```

use super::flops::PassFlops;
use super::method::{parse_loss, Context, Method, ModelSpec, Trained, TrainedParts};
use super::views_or_modalities;
use crate::losses::{barlow_twins_loss, BarlowTwinsOptions};
use crate::training::timing::StepTimes;
use crate::training::Progress;
use anyhow::{ensure, Result};
use std::ops::RangeInclusive;
use std::path::Path;

/// Barlow Twins, registered as `kind: barlow_twins`.
pub struct BarlowTwins;

impl Method for BarlowTwins {
    fn kind(&self) -> &'static str {
        "barlow_twins"
    }
    fn display_name(&self) -> &'static str {
        "Barlow Twins"
    }
    fn modalities(&self) -> RangeInclusive<usize> {
        1..=2
    }
    fn self_supervised(&self) -> bool {
        true
    }
    fn check_loss(&self, loss: Option<&serde_yaml::Value>, file: Option<&Path>) -> Result<()> {
        let o = parse_loss::<BarlowTwinsOptions>(loss, file, self.kind())?.unwrap_or_default();
        ensure!(o.lambda >= 0.0 && o.lambda.is_finite(), "Barlow Twins' lambda must be finite and >= 0, got {}", o.lambda);
        Ok(())
    }
    fn train(&self, ctx: &Context, progress: &Progress, out: &Path) -> Result<Trained> {
        let o: BarlowTwinsOptions = ctx.loss()?;
        let loss = |z1, z2| barlow_twins_loss(z1, z2, &o);
        views_or_modalities::train(ctx, &loss, progress, out)
    }
    fn load(&self, spec: &ModelSpec, device: &burn::prelude::Device, checkpoint: &Path) -> Result<TrainedParts> {
        views_or_modalities::load(spec, device, checkpoint)
    }
    fn time_steps(&self, ctx: &Context, batch: &[usize], steps: usize) -> Result<StepTimes> {
        let o: BarlowTwinsOptions = ctx.loss()?;
        views_or_modalities::time_steps(ctx, &|z1, z2| barlow_twins_loss(z1, z2, &o), batch, steps)
    }
    fn flops(&self, spec: &ModelSpec, samples: usize) -> Result<PassFlops> {
        views_or_modalities::flops(spec, samples)
    }
}
