//! The contract every learning method fulfils: the harness, the protocols
//! and the report ask a [`Method`] what it needs, never match on its kind.
//! A method is one file implementing this trait plus one line in
//! [`super::registry`]; its YAML mirrors what it reads.

use super::config::MethodConfig;
use super::flops::PassFlops;
use crate::metrics::ClassificationMetrics;
use crate::models::{Encoder, InputShape, ProjectionHead};
use crate::training::timing::StepTimes;
use crate::training::{checkpoint, EpochLog, Fitted, Progress, TrainData};
use anyhow::{anyhow, Context as _, Result};
use burn::module::Module;
use burn::prelude::*;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::ops::RangeInclusive;
use std::path::Path;

/// The parameters file of a run folder.
pub const CHECKPOINT: &str = "checkpoint.safetensors";

/// A learning method: what it trains, how, and what the protocols can
/// evaluate afterwards.
pub trait Method: Sync {
    /// The YAML `kind` that selects it, e.g. `cmc`.
    fn kind(&self) -> &'static str;
    /// Its approach name in reports (the paper's row names), e.g. `CMC`.
    fn display_name(&self) -> &'static str;
    /// How many modalities it trains on.
    fn modalities(&self) -> RangeInclusive<usize>;
    /// Self-supervised (its encoders go to the evaluation protocols; SSL
    /// training rules) or a classifier (it reports test metrics itself).
    fn self_supervised(&self) -> bool;
    /// Parses the `loss` section into the method's own settings, rejecting
    /// what it does not read; `file` (where the section came from) lets the
    /// error name the line.
    fn check_loss(&self, loss: Option<&serde_yaml::Value>, file: Option<&Path>) -> Result<()>;
    /// Whether it reads frozen `pretrained` encoders (CMC-CMKM's miners).
    fn uses_pretrained(&self) -> bool {
        false
    }
    /// Builds the model, trains it under the method's schedule on
    /// `ctx.data.split.train` and saves the best epoch's parameters to
    /// [`CHECKPOINT`] in the run folder `out` (classifiers also their test
    /// predictions, `predictions.csv`).
    fn train(&self, ctx: &Context, progress: &Progress, out: &Path) -> Result<Trained>;
    /// Rebuilds the model `spec` describes and loads `checkpoint` into it,
    /// in evaluation mode, on `device`.
    fn load(&self, spec: &ModelSpec, device: &Device, checkpoint: &Path) -> Result<TrainedParts>;
    /// Times `steps` training steps of the model and objective [`Self::train`]
    /// builds, on one fixed `batch` after a warm-up step, and as many
    /// validation passes (`cmkm bench`). A method that uses `pretrained`
    /// encoders finds them in `ctx`, as in training.
    fn time_steps(&self, ctx: &Context, batch: &[usize], steps: usize) -> Result<StepTimes>;
    /// The work of one training step and one validation pass on `samples`
    /// samples of the model `spec` describes: the bench's FLOP rates and a
    /// plan's estimates for untimed runs.
    fn flops(&self, spec: &ModelSpec, samples: usize) -> Result<PassFlops>;
}

/// What building a method's model needs, and nothing else: its
/// configuration, the modalities it is built for with their input shapes
/// (in the method's order), and the class count. A training takes it from
/// its data ([`Context::spec`]), loading a run from the run's record, the
/// FLOP counts from a plan.
#[derive(Debug, Clone, Copy)]
pub struct ModelSpec<'a> {
    pub method: &'a MethodConfig,
    pub modalities: &'a [String],
    pub shapes: &'a [InputShape],
    pub classes: usize,
}

impl<'a> ModelSpec<'a> {
    /// The model `method` has on `data`'s modalities.
    pub fn on(method: &'a MethodConfig, data: &'a TrainData) -> Self {
        ModelSpec { method, modalities: &data.modalities, shapes: &data.shapes, classes: data.classes }
    }

    /// Builds the encoder of the `m`-th modality.
    pub fn encoder(&self, m: usize, device: &Device) -> Result<Encoder> {
        let name = &self.modalities[m];
        self.method.encoders[name].init(self.shapes[m], device).with_context(|| format!("encoder of modality '{name}'"))
    }

    /// Feature size of that encoder.
    pub fn encoder_output(&self, m: usize) -> Result<usize> {
        self.method.encoders[&self.modalities[m]].output_size(self.shapes[m])
    }
}

/// Everything a method needs while training.
pub struct Context<'a> {
    pub method: &'a MethodConfig,
    pub data: &'a TrainData,
    pub seed: u64,
    /// Autodiff device: batch norm and dropout train there.
    pub train_device: Device,
    /// Plain device: evaluation and frozen encoders.
    pub eval_device: Device,
    /// Frozen, evaluation-mode encoders of finished unimodal runs, one per
    /// modality in the method's order, when the method uses `pretrained`.
    pub pretrained: Vec<Encoder>,
}

impl Context<'_> {
    /// The model the method trains on this data.
    pub fn spec(&self) -> ModelSpec<'_> {
        ModelSpec::on(self.method, self.data)
    }

    /// The method's loss settings as `T` (defaults where the section is absent).
    pub fn loss<T: DeserializeOwned + Default>(&self) -> Result<T> {
        Ok(parse_loss::<T>(self.method.loss.as_ref(), None, self.method.kind.as_str())?.unwrap_or_default())
    }
}

/// What a training produced.
pub struct Trained {
    pub log: Vec<EpochLog>,
    /// Index of the kept epoch in `log`.
    pub best_epoch: usize,
    pub stopped_early: bool,
    /// Test metrics of the kept epoch (classifiers only).
    pub test: Option<ClassificationMetrics>,
}

impl Trained {
    /// Saves the kept model of `fitted` to the run folder `out` and keeps its curves.
    pub fn save<M: Module>(fitted: Fitted<M>, out: &Path, test: Option<ClassificationMetrics>) -> Result<Self> {
        checkpoint::save(&fitted.best, &out.join(CHECKPOINT))?;
        Ok(Trained { log: fitted.log, best_epoch: fitted.best_epoch, stopped_early: fitted.stopped_early, test })
    }
}

/// A trained model's parts the protocols evaluate.
pub struct TrainedParts {
    /// One encoder per modality, in the method's order.
    pub encoders: Vec<Encoder>,
    /// Projection heads of a cross-modal method: the shared space of
    /// cross-modal retrieval (none for unimodal and supervised methods).
    pub projections: Option<Vec<ProjectionHead>>,
}

/// The `loss` section of a method file, nothing else read.
#[derive(Deserialize)]
struct LossSection<T> {
    #[serde(default = "Option::default")]
    loss: Option<T>,
}

/// Reads `loss` as the settings `T` of a `kind` method: from `file` when
/// given, so that a key `T` does not know is an error naming its line, else
/// from the parsed value.
pub fn parse_loss<T: DeserializeOwned>(loss: Option<&serde_yaml::Value>, file: Option<&Path>, kind: &str) -> Result<Option<T>> {
    if let Some(path) = file {
        let section: LossSection<T> = crate::config::read_yaml(path).with_context(|| format!("{}: the loss settings of a `{kind}` method", path.display()))?;
        return Ok(section.loss);
    }
    loss.map(|v| serde_yaml::from_value::<T>(v.clone())).transpose().map_err(|e| anyhow!("the loss settings of a `{kind}` method: {e}"))
}

/// The loss settings of a method that requires them (SimCLR and CMC need
/// at least their temperature).
pub fn required_loss<T: DeserializeOwned>(loss: Option<&serde_yaml::Value>, file: Option<&Path>, kind: &str) -> Result<T> {
    parse_loss(loss, file, kind)?.ok_or_else(|| anyhow!("a `{kind}` method needs `loss` (at least the temperature)"))
}

/// SimCLR's and CMC's only loss setting.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Temperature {
    /// Softmax temperature tau (> 0).
    pub temperature: f32,
}

impl Temperature {
    /// The temperature of a `kind` method (SimCLR, CMC): required, > 0, and
    /// the only key; a CMC-CMKM switch there is an error saying so.
    pub fn of(kind: &str, loss: Option<&serde_yaml::Value>, file: Option<&Path>) -> Result<f32> {
        let hint =
            || format!("a `{kind}` method's loss takes only `temperature`; mining, intra negatives, pruning and weighting are CMC-CMKM switches (kind: cmkm)");
        positive_temperature(required_loss::<Temperature>(loss, file, kind).with_context(hint)?.temperature)
    }
}

/// `tau` when it is a positive temperature (every contrastive loss's check).
pub fn positive_temperature(tau: f32) -> Result<f32> {
    anyhow::ensure!(tau > 0.0, "temperature must be positive, got {tau}");
    Ok(tau)
}
