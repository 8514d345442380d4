//! SimCLR (Chen et al., 2020) on one modality: two augmented views of each
//! sample, encoder + projection head, NT-Xent at temperature tau.
//!
//! ```yaml
//! kind: simclr
//! loss: {temperature: 0.1}
//! ```

use super::method::{required_loss, Context, Method, Temperature, Trained, TrainedParts};
use super::two_views;
use crate::losses::nt_xent_loss;
use crate::training::Progress;
use anyhow::{Context as _, Result};
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
        let hint = || {
            format!(
                "a `{}` method's loss takes only `temperature`; mining, intra negatives, pruning and weighting are CMC-CMKM switches (kind: cmkm)",
                self.kind()
            )
        };
        required_loss::<Temperature>(loss, file, self.kind()).with_context(hint)?.check()
    }
    fn train(&self, ctx: &Context, progress: &Progress, out: &Path) -> Result<Trained> {
        let tau = required_loss::<Temperature>(ctx.method.loss.as_ref(), None, self.kind())?.temperature;
        two_views::train(ctx, &|a, b| nt_xent_loss(a, b, tau), progress, out)
    }
    fn load(&self, ctx: &Context, checkpoint: &Path) -> Result<TrainedParts> {
        two_views::load(ctx, checkpoint)
    }
}
