//! Learning methods behind one trait ([`Method`]) and a registry by YAML
//! `kind` ([`registry`]): supervised references, SimCLR, CMC, CMC-CMKM,
//! VICReg and Barlow Twins, one file each, sharing the loop in
//! [`crate::training`] and the two-view ([`two_views`]) and cross-modal
//! ([`cross_modal`]) models. `train` lets the method build its model and fit it, and writes the run folder:
//! `checkpoint.safetensors`, `run.yaml` (the resolved configuration),
//! `curves.csv`, `timings.json` and, for classifiers, `metrics.json`.

pub mod barlow_twins;
pub mod cmc;
pub mod cmkm;
pub mod config;
pub mod cross_modal;
pub mod flops;
pub mod method;
pub mod registry;
pub mod simclr;
pub mod supervised;
pub mod two_views;
pub mod vicreg;
pub mod views_or_modalities;

use crate::data::Dataset;
use crate::metrics::ClassificationMetrics;
use crate::models::{Encoder, InputShape};
use crate::training::{curves_csv, Progress, TrainData};
use anyhow::{bail, Context as _, Result};
use burn::prelude::*;
use config::MethodConfig;
pub use method::{Context, Method, ModelSpec, TrainedParts, CHECKPOINT};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    /// The GPU adapter it trained on (absent for the CPU backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Standardisation statistics fitted on the training split, per
    /// modality that declares it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub standardization: Vec<crate::data::standardize::Standardization>,
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

pub use crate::device::devices;

/// Trains `method` on `ds` and writes the run folder `opts.out`.
pub fn train(method: &MethodConfig, ds: &Dataset, opts: &TrainOptions) -> Result<TrainSummary> {
    method.validate(&ds.decl)?;
    crate::fsutil::ensure_writable_dir(&opts.out)?;
    let mut data = TrainData::new(ds, &method.modalities, &opts.protocol)?;
    if let Some(subset) = &opts.train_subset {
        data.split.train = subset.clone();
    }
    let kind = method.method()?;
    let (train_device, eval_device) = devices();
    let pretrained = if kind.uses_pretrained() { load_pretrained(method, &data, &eval_device)? } else { vec![] };
    let _exclusive = crate::training::exclusive();
    crate::device::seed(&train_device, opts.seed);
    let ctx = Context { method, data: &data, seed: opts.seed, train_device, eval_device, pretrained };
    let progress = Progress { label: method.name.clone(), quiet: opts.quiet };
    let start = Instant::now();
    let record = RunRecord {
        method: method.clone(),
        dataset: ds.decl.name.clone(),
        protocol: opts.protocol.clone(),
        seed: opts.seed,
        input_shapes: data.shapes.clone(),
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
        device: crate::device::opened_adapter().map(crate::device::Adapter::describe),
        standardization: data.standardization.clone(),
    };
    let trained = kind.train(&ctx, &progress, &opts.out)?;
    let (fitted_log, best_epoch, stopped_early, test) = (trained.log, trained.best_epoch, trained.stopped_early, trained.test);
    let seconds = start.elapsed().as_secs_f64();
    let write = |name: &str, text: String| crate::fsutil::write_atomic(&opts.out.join(name), text.as_bytes());
    write("run.yaml", serde_yaml::to_string(&record)?)?;
    write("curves.csv", curves_csv(&fitted_log))?;
    let per_epoch: Vec<f64> = fitted_log.iter().map(|e| e.seconds).collect();
    write("timings.json", serde_json::to_string_pretty(&serde_json::json!({ "total_seconds": seconds, "epoch_seconds": per_epoch }))?)?;
    let (Some(first), Some(last), Some(best)) = (fitted_log.first(), fitted_log.last(), fitted_log.get(best_epoch)) else {
        bail!("method '{}': the training log has {} epochs and no best epoch {}", method.name, fitted_log.len(), best_epoch + 1);
    };
    let summary = TrainSummary {
        method: method.name.clone(),
        epochs_run: fitted_log.len(),
        best_epoch: best_epoch + 1,
        stopped_early,
        first_train_loss: first.train_loss,
        last_train_loss: last.train_loss,
        best_val_loss: best.val_loss,
        seconds,
        test,
    };
    if let Some(t) = &summary.test {
        let mut json = serde_json::to_value(t)?;
        if let (Some(obj), Some(v)) = (json.as_object_mut(), best.val_metric) {
            obj.insert(crate::protocols::VALIDATION_KEY.into(), v.into());
        }
        write(crate::protocols::METRICS_FILE, serde_json::to_string_pretty(&json)?)?;
    }
    Ok(summary)
}

/// Reads `run.yaml` of a finished run folder.
pub fn read_record(dir: &Path) -> Result<RunRecord> {
    crate::config::read_yaml(&dir.join("run.yaml")).with_context(|| format!("{}: not a finished run folder", dir.display()))
}

/// Rebuilds a run's model from its `run.yaml` and loads its checkpoint, on
/// `device`, in evaluation mode: the encoders (and a cross-modal method's
/// projection heads) the protocols evaluate.
pub fn load_run(dir: &Path, classes: usize, device: &Device) -> Result<(RunRecord, TrainedParts)> {
    let record = read_record(dir)?;
    let spec = ModelSpec { method: &record.method, modalities: &record.method.modalities, shapes: &record.input_shapes, classes };
    let parts = record.method.method().with_context(|| dir.display().to_string())?.load(&spec, device, &dir.join(CHECKPOINT))?;
    Ok((record, parts))
}

/// The frozen encoders named in `method.pretrained`, one per modality in order.
fn load_pretrained(method: &MethodConfig, data: &TrainData, device: &Device) -> Result<Vec<Encoder>> {
    let load = |m: usize| {
        let name = &data.modalities[m];
        let dir = method.pretrained.get(name).with_context(|| format!("method '{}': no pretrained run for modality '{name}'", method.name))?;
        load_unimodal_encoder(dir, name, data.shapes[m], data.classes, device)
    };
    (0..data.modalities.len()).map(load).collect()
}

/// The frozen encoder of a finished unimodal run (SimCLR, VICReg, Barlow
/// Twins or supervised) on `modality`, checked against the input shape it will see.
pub fn load_unimodal_encoder(dir: &Path, modality: &str, shape: InputShape, classes: usize, device: &Device) -> Result<Encoder> {
    let (record, parts) = load_run(dir, classes, device)?;
    if record.method.modalities != [modality.to_string()] {
        bail!("{}: trained {:?}, not modality '{modality}' alone", dir.display(), record.method.modalities);
    }
    if record.input_shapes.first() != Some(&shape) {
        bail!("{}: trained on inputs {:?}, this dataset gives {shape:?}", dir.display(), record.input_shapes);
    }
    parts.encoders.into_iter().next().with_context(|| format!("{}: the run holds no encoder", dir.display()))
}
