//! CMC-CMKM (Brinzea et al., 2022): CMC whose positives are mined by each
//! modality's frozen pretrained (SimCLR) encoder for the other, with the
//! loss switches of docs/method.md section 6. Validation uses the plain CMC
//! loss: mining is training-only.
//!
//! ```yaml
//! kind: cmkm
//! loss: {temperature: 0.1, mining_k: 1, intra_lambda: 1.0}
//! pretrained: {inertial: ../runs/simclr-inertial, skeleton: ../runs/simclr-skeleton}
//! ```

use super::cross_modal::{self, Mining};
use super::flops::{MethodFlops, PassFlops};
use super::method::{positive_temperature, required_loss, Context, Method, ModelSpec, Trained, TrainedParts};
use crate::losses::{cmc_loss, CmkmOptions};
use crate::training::timing::StepTimes;
use crate::training::Progress;
use anyhow::{ensure, Result};
use std::ops::RangeInclusive;
use std::path::Path;

/// CMC-CMKM, registered as `kind: cmkm`.
pub struct Cmkm;

impl Method for Cmkm {
    fn kind(&self) -> &'static str {
        "cmkm"
    }
    fn display_name(&self) -> &'static str {
        "CMC-CMKM"
    }
    fn modalities(&self) -> RangeInclusive<usize> {
        2..=2
    }
    fn self_supervised(&self) -> bool {
        true
    }
    fn check_loss(&self, loss: Option<&serde_yaml::Value>, file: Option<&Path>) -> Result<()> {
        positive_temperature(required_loss::<CmkmOptions>(loss, file, self.kind())?.temperature).map(|_| ())
    }
    fn uses_pretrained(&self) -> bool {
        true
    }
    fn train(&self, ctx: &Context, progress: &Progress, out: &Path) -> Result<Trained> {
        let (tau, mining) = mining(ctx)?;
        cross_modal::train(ctx, &|z1, z2| cmc_loss(z1, z2, tau), Some(mining), progress, out)
    }
    fn load(&self, spec: &ModelSpec, device: &burn::prelude::Device, checkpoint: &Path) -> Result<TrainedParts> {
        cross_modal::load(spec, device, checkpoint)
    }
    fn time_steps(&self, ctx: &Context, batch: &[usize], steps: usize) -> Result<StepTimes> {
        let (tau, mining) = mining(ctx)?;
        cross_modal::time_steps(ctx, &|z1, z2| cmc_loss(z1, z2, tau), Some(mining), batch, steps)
    }
    fn flops(&self, spec: &ModelSpec, samples: usize) -> Result<PassFlops> {
        Ok(MethodFlops::of(spec)?.cross_modal(samples, true))
    }
}

/// The temperature of the plain CMC loss (validation) and the mining of
/// training, by `ctx`'s frozen pretrained encoders.
fn mining<'a>(ctx: &'a Context) -> Result<(f32, Mining<'a>)> {
    let options = required_loss::<CmkmOptions>(ctx.method.loss.as_ref(), None, Cmkm.kind())?;
    ensure!(ctx.pretrained.len() == 2, "CMC-CMKM needs the two modalities' pretrained encoders, got {}", ctx.pretrained.len());
    Ok((options.temperature, Mining { miners: &ctx.pretrained, options }))
}
