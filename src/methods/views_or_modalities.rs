//! Methods that work both ways (VICReg, Barlow Twins): on one modality they
//! compare two augmented views ([`two_views`]), on two modalities the
//! modalities ([`cross_modal`]), with the same pair loss.

use super::flops::{MethodFlops, PassFlops};
use super::method::{Context, ModelSpec, Trained, TrainedParts};
use super::two_views::PairLoss;
use super::{cross_modal, two_views};
use crate::training::timing::StepTimes;
use crate::training::Progress;
use anyhow::Result;
use std::path::Path;

/// Trains on two views of one modality, or across two modalities.
pub fn train(ctx: &Context, loss: PairLoss, progress: &Progress, out: &Path) -> Result<Trained> {
    match ctx.data.modalities.len() {
        1 => two_views::train(ctx, loss, progress, out),
        _ => cross_modal::train(ctx, loss, None, progress, out),
    }
}

/// Times what [`train`] runs ([`crate::methods::Method::time_steps`]).
pub fn time_steps(ctx: &Context, loss: PairLoss, batch: &[usize], steps: usize) -> Result<StepTimes> {
    match ctx.data.modalities.len() {
        1 => two_views::time_steps(ctx, loss, batch, steps),
        _ => cross_modal::time_steps(ctx, loss, None, batch, steps),
    }
}

/// The work of [`train`]'s passes on `samples` samples.
pub fn flops(spec: &ModelSpec, samples: usize) -> Result<PassFlops> {
    let counts = MethodFlops::of(spec)?;
    Ok(match spec.modalities.len() {
        1 => counts.two_views(samples),
        _ => counts.cross_modal(samples, false),
    })
}

/// Loads what [`train`] saved.
pub fn load(spec: &ModelSpec, device: &burn::prelude::Device, checkpoint: &Path) -> Result<TrainedParts> {
    match spec.modalities.len() {
        1 => two_views::load(spec, device, checkpoint),
        _ => cross_modal::load(spec, device, checkpoint),
    }
}
