//! VICReg (Bardes, Ponce and LeCun, 2022): variance-invariance-covariance
//! regularisation, no negatives. On one modality it compares two augmented
//! views (like SimCLR); on two modalities it compares the modalities (like
//! CMC). The projector (`projection: {hidden, out}`) is the authors'
//! expander, smaller here to suit the encoders' feature sizes.
//!
//! ```yaml
//! kind: vicreg
//! loss: {invariance: 25.0, variance: 25.0, covariance: 1.0}  # the defaults
//! ```

use super::flops::PassFlops;
use super::method::{parse_loss, Context, Method, ModelSpec, Trained, TrainedParts};
use super::views_or_modalities;
use crate::losses::{vicreg_loss, VicregOptions};
use crate::training::timing::StepTimes;
use crate::training::Progress;
use anyhow::{ensure, Result};
use std::ops::RangeInclusive;
use std::path::Path;

/// VICReg, registered as `kind: vicreg`.
pub struct Vicreg;

fn check(o: &VicregOptions) -> Result<()> {
    let weights = [o.invariance, o.variance, o.covariance];
    ensure!(
        weights.iter().all(|w| *w >= 0.0 && w.is_finite()) && weights.iter().any(|w| *w > 0.0),
        "VICReg's weights must be finite, >= 0 and not all 0, got {weights:?}"
    );
    ensure!(o.epsilon > 0.0 && o.epsilon.is_finite(), "VICReg's epsilon must be positive, got {}", o.epsilon);
    Ok(())
}

impl Method for Vicreg {
    fn kind(&self) -> &'static str {
        "vicreg"
    }
    fn display_name(&self) -> &'static str {
        "VICReg"
    }
    fn modalities(&self) -> RangeInclusive<usize> {
        1..=2
    }
    fn self_supervised(&self) -> bool {
        true
    }
    fn check_loss(&self, loss: Option<&serde_yaml::Value>, file: Option<&Path>) -> Result<()> {
        check(&parse_loss::<VicregOptions>(loss, file, self.kind())?.unwrap_or_default())
    }
    fn train(&self, ctx: &Context, progress: &Progress, out: &Path) -> Result<Trained> {
        let o: VicregOptions = ctx.loss()?;
        let loss = |z1, z2| vicreg_loss(z1, z2, &o);
        views_or_modalities::train(ctx, &loss, progress, out)
    }
    fn load(&self, spec: &ModelSpec, device: &burn::prelude::Device, checkpoint: &Path) -> Result<TrainedParts> {
        views_or_modalities::load(spec, device, checkpoint)
    }
    fn time_steps(&self, ctx: &Context, batch: &[usize], steps: usize) -> Result<StepTimes> {
        let o: VicregOptions = ctx.loss()?;
        views_or_modalities::time_steps(ctx, &|z1, z2| vicreg_loss(z1, z2, &o), batch, steps)
    }
    fn flops(&self, spec: &ModelSpec, samples: usize) -> Result<PassFlops> {
        views_or_modalities::flops(spec, samples)
    }
}
