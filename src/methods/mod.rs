//! Learning methods behind one entry point: supervised references, SimCLR,
//! CMC and CMC-CMKM (one file each), sharing the loop in [`crate::training`].
//! `train` builds the method's model, fits it and writes the run folder:
//! `checkpoint.safetensors`, `run.yaml` (the resolved configuration),
//! `curves.csv`, `timings.json` and, for classifiers, `metrics.json`.

pub mod config;
pub mod contrastive;
pub mod simclr;
pub mod supervised;

use crate::data::Dataset;
use crate::metrics::ClassificationMetrics;
use crate::models::{Encoder, InputShape};
use crate::training::{checkpoint, curves_csv, fit, FitRules, Fitted, Progress, TrainData};
use anyhow::{bail, Context as _, Result};
use burn::prelude::*;
use config::{MethodConfig, MethodKind};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Everything a method needs while training.
pub struct Context<'a> {
    pub method: &'a MethodConfig,
    pub data: &'a TrainData,
    pub seed: u64,
    /// Autodiff device: batch norm and dropout train there.
    pub train_device: Device,
    /// Plain device: evaluation and frozen encoders.
    pub eval_device: Device,
}

impl Context<'_> {
    /// Builds the encoder of the method's `m`-th modality.
    pub fn encoder(&self, m: usize, device: &Device) -> Result<Encoder> {
        let name = &self.data.modalities[m];
        self.method.encoders[name].init(self.data.shapes[m], device).with_context(|| format!("encoder of modality '{name}'"))
    }

    /// Feature size of that encoder.
    pub fn encoder_output(&self, m: usize) -> Result<usize> {
        self.method.encoders[&self.data.modalities[m]].output_size(self.data.shapes[m])
    }

    /// The contrastive temperature.
    pub fn temperature(&self) -> f32 {
        self.method.loss.as_ref().map(|l| l.temperature).unwrap_or(0.1)
    }
}

/// How to run a training.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub protocol: String,
    pub seed: u64,
    pub out: PathBuf,
    pub quiet: bool,
    /// Train on this subset of the train split (label fractions) instead.
    pub train_subset: Option<Vec<usize>>,
}

/// The resolved configuration of a run, written as `run.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    pub method: MethodConfig,
    pub dataset: String,
    pub protocol: String,
    pub seed: u64,
    pub input_shapes: Vec<InputShape>,
    pub crate_version: String,
}

/// What a training produced.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    pub method: String,
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub stopped_early: bool,
    pub first_train_loss: f64,
    pub last_train_loss: f64,
    pub best_val_loss: f64,
    pub seconds: f64,
    /// Test metrics of the best checkpoint (classifiers only).
    pub test: Option<ClassificationMetrics>,
}

/// The compute devices: CPU (flex) unless built with `cuda`.
pub fn devices() -> (Device, Device) {
    crate::training::allocator::keep_freed_memory();
    #[cfg(feature = "cuda")]
    let base = Device::cuda(0);
    #[cfg(not(feature = "cuda"))]
    let base = Device::flex();
    (base.clone().autodiff(), base)
}

/// Trains `method` on `ds` and writes the run folder `opts.out`.
pub fn train(method: &MethodConfig, ds: &Dataset, opts: &TrainOptions) -> Result<TrainSummary> {
    method.validate(&ds.decl)?;
    crate::fsutil::ensure_writable_dir(&opts.out)?;
    let mut data = TrainData::new(ds, &method.modalities, &opts.protocol)?;
    if let Some(subset) = &opts.train_subset {
        data.split.train = subset.clone();
    }
    let (train_device, eval_device) = devices();
    let _exclusive = crate::training::exclusive();
    train_device.seed(opts.seed);
    let ctx = Context { method, data: &data, seed: opts.seed, train_device, eval_device };
    let progress = Progress { label: method.name.clone(), quiet: opts.quiet };
    let start = Instant::now();
    let record = RunRecord {
        method: method.clone(),
        dataset: ds.decl.name.clone(),
        protocol: opts.protocol.clone(),
        seed: opts.seed,
        input_shapes: data.shapes.clone(),
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let train = &data.split.train;
    let rules = if method.is_self_supervised() { FitRules::SelfSupervised } else { FitRules::Classifier };
    let (fitted_log, best_epoch, stopped_early, test) = match method.kind {
        MethodKind::Supervised => {
            let objective = supervised::Supervised { ctx: &ctx };
            let fitted = fit(&objective, supervised::SupervisedModel::new(&ctx, &ctx.train_device)?, train, &method.schedule, rules, opts.seed, &progress)?;
            let test = objective.evaluate(&fitted.best, &data.split.test);
            write_predictions(&opts.out, &data, &data.split.test, &test.predictions)?;
            finish(&opts.out, &fitted)?;
            (fitted.log, fitted.best_epoch, fitted.stopped_early, Some(test.metrics))
        }
        MethodKind::Simclr => {
            let objective = simclr::Simclr { ctx: &ctx };
            let fitted = fit(&objective, simclr::SimclrModel::new(&ctx, &ctx.train_device)?, train, &method.schedule, rules, opts.seed, &progress)?;
            finish(&opts.out, &fitted)?;
            (fitted.log, fitted.best_epoch, fitted.stopped_early, None)
        }
        MethodKind::Cmc | MethodKind::Cmkm => {
            let options = method.loss.clone().expect("validated");
            let options = if method.kind == MethodKind::Cmc { crate::losses::CmkmOptions::cmc(options.temperature) } else { options };
            let miners = if method.kind == MethodKind::Cmkm { Some(contrastive::Contrastive::load_miners(&ctx)?) } else { None };
            let objective = contrastive::Contrastive { ctx: &ctx, options, miners };
            let fitted = fit(&objective, contrastive::CmcModel::for_training(&ctx, &ctx.train_device)?, train, &method.schedule, rules, opts.seed, &progress)?;
            finish(&opts.out, &fitted)?;
            (fitted.log, fitted.best_epoch, fitted.stopped_early, None)
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let write = |name: &str, text: String| crate::fsutil::write_atomic(&opts.out.join(name), text.as_bytes());
    write("run.yaml", serde_yaml::to_string(&record)?)?;
    write("curves.csv", curves_csv(&fitted_log))?;
    let per_epoch: Vec<f64> = fitted_log.iter().map(|e| e.seconds).collect();
    write("timings.json", serde_json::to_string_pretty(&serde_json::json!({ "total_seconds": seconds, "epoch_seconds": per_epoch }))?)?;
    let summary = TrainSummary {
        method: method.name.clone(),
        epochs_run: fitted_log.len(),
        best_epoch: best_epoch + 1,
        stopped_early,
        first_train_loss: fitted_log.first().map(|e| e.train_loss).unwrap_or(f64::NAN),
        last_train_loss: fitted_log.last().map(|e| e.train_loss).unwrap_or(f64::NAN),
        best_val_loss: fitted_log.get(best_epoch).map(|e| e.val_loss).unwrap_or(f64::NAN),
        seconds,
        test,
    };
    if let Some(t) = &summary.test {
        write("metrics.json", serde_json::to_string_pretty(t)?)?;
    }
    Ok(summary)
}

fn finish<M: Module>(out: &Path, fitted: &Fitted<M>) -> Result<()> {
    checkpoint::save(&fitted.best, &out.join("checkpoint.safetensors"))
}

fn write_predictions(out: &Path, data: &TrainData, indices: &[usize], predictions: &[usize]) -> Result<()> {
    let mut csv = String::from("sample_id,label,prediction\n");
    for (&i, p) in indices.iter().zip(predictions) {
        csv.push_str(&format!("{},{},{}\n", data.sample_ids[i], data.labels[i] + 1, p + 1));
    }
    crate::fsutil::write_atomic(&out.join("predictions.csv"), csv.as_bytes())
}

/// A trained model read back from its run folder (evaluation mode).
#[allow(clippy::large_enum_variant)] // one per loaded run
pub enum TrainedModel {
    Supervised(supervised::SupervisedModel),
    Simclr(simclr::SimclrModel),
    Cmc(contrastive::CmcModel),
}

/// Reads `run.yaml` of a finished run folder.
pub fn read_record(dir: &Path) -> Result<RunRecord> {
    crate::config::read_yaml(&dir.join("run.yaml")).with_context(|| format!("{}: not a finished run folder", dir.display()))
}

/// Rebuilds a run's model from its `run.yaml` and loads its checkpoint, on
/// `device`, in evaluation mode.
pub fn load_run(dir: &Path, classes: usize, device: &Device) -> Result<(RunRecord, TrainedModel)> {
    let record = read_record(dir)?;
    let data = TrainData::shapes_only(&record.method.modalities, &record.input_shapes, classes);
    let ctx = Context { method: &record.method, data: &data, seed: record.seed, train_device: device.clone(), eval_device: device.clone() };
    let path = dir.join("checkpoint.safetensors");
    let model = match record.method.kind {
        MethodKind::Supervised => TrainedModel::Supervised(checkpoint::load(supervised::SupervisedModel::new(&ctx, device)?, &path)?.valid()),
        MethodKind::Simclr => TrainedModel::Simclr(checkpoint::load(simclr::SimclrModel::new(&ctx, device)?, &path)?.valid()),
        MethodKind::Cmc | MethodKind::Cmkm => TrainedModel::Cmc(checkpoint::load(contrastive::CmcModel::new(&ctx, device)?, &path)?.valid()),
    };
    Ok((record, model))
}

/// The frozen encoder of a finished SimCLR run on `modality`, checked
/// against the input shape it will see.
pub fn load_simclr_encoder(dir: &Path, modality: &str, shape: InputShape, classes: usize, device: &Device) -> Result<Encoder> {
    let (record, model) = load_run(dir, classes, device)?;
    if record.method.modalities != [modality.to_string()] {
        bail!("{}: trained {:?}, not modality '{modality}'", dir.display(), record.method.modalities);
    }
    if record.input_shapes.first() != Some(&shape) {
        bail!("{}: trained on inputs {:?}, this dataset gives {shape:?}", dir.display(), record.input_shapes);
    }
    match model {
        TrainedModel::Simclr(m) => Ok(m.encoder),
        _ => bail!("{}: a {:?} run, not a SimCLR run", dir.display(), record.method.kind),
    }
}
