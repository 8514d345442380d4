//! The training loop shared by every method: Adam, ReduceLROnPlateau, early
//! stopping, best-checkpoint selection, per-epoch logging and progress.

pub mod adam;
pub mod allocator;
pub mod batches;
pub mod branches;
pub mod checkpoint;
pub mod health;
pub mod schedule;
pub mod timing;

use crate::data::clip::Clip;
use crate::data::declaration::MainMetric;
use crate::data::splits::Split;
use crate::data::Dataset;
use crate::models::InputShape;
use anyhow::{bail, Result};
use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::GradientsParams;
use burn::prelude::*;
pub use schedule::ScheduleConfig;
use schedule::{BestTracker, EarlyStopping, Mode, ReduceLrOnPlateau};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// Holds the process-wide training lock. burn's CPU random generator is
/// global to the process, so the parameter initialisation and dropout of two
/// trainings running side by side would interleave and break determinism:
/// trainings in one process run one at a time (each still uses every core).
/// Tests that draw from that generator hold it too, so that their seeded
/// draws see no other test's draws in between. The thread that holds it may
/// take it again (a test holding it around a training): only the outermost
/// guard releases it.
pub fn exclusive() -> Exclusive {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if HOLDS_EXCLUSIVE.get() {
        return Exclusive(None);
    }
    let guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    HOLDS_EXCLUSIVE.set(true);
    Exclusive(Some(guard))
}

thread_local! {
    static HOLDS_EXCLUSIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The guard of [`exclusive`]: the lock itself, or nothing where this
/// thread already held it.
pub struct Exclusive(Option<std::sync::MutexGuard<'static, ()>>);

impl Drop for Exclusive {
    fn drop(&mut self) {
        if self.0.is_some() {
            HOLDS_EXCLUSIVE.set(false);
        }
    }
}

/// What a method trains on: preprocessed clips of its modalities (time-major),
/// labels and the protocol's split.
pub struct TrainData {
    pub modalities: Vec<String>,
    /// `clips[m][i]`, modality `m` (in the method's order) of sample `i`.
    pub clips: Vec<Vec<Clip>>,
    pub labels: Vec<usize>,
    pub sample_ids: Vec<String>,
    pub classes: usize,
    pub split: Split,
    pub shapes: Vec<InputShape>,
    pub main_metric: MainMetric,
    /// Unlabelled windows of the training split (indices past `labels`),
    /// for self-supervised pre-training only: see [`Self::pretraining`].
    pub pretrain_only: Vec<usize>,
    /// Standardisation fitted on the training split, per modality that
    /// declares it (recorded in `run.yaml`).
    pub standardization: Vec<crate::data::standardize::Standardization>,
}

impl TrainData {
    /// Preprocesses the dataset once and selects the method's modalities.
    pub fn new(ds: &Dataset, modalities: &[String], protocol: &str) -> Result<Self> {
        ds.ensure_clean()?;
        let split = ds.decl.split(protocol, &ds.meta)?;
        let prepared = ds.prepare(&split, ds.decl.protocol(protocol)?)?;
        let mut all = prepared.clips;
        let id = |i: usize| ds.meta.get(i).map(|m| m.id.as_str()).unwrap_or_else(|| ds.unlabelled[i - ds.meta.len()].id.as_str());
        let mut clips = vec![];
        let mut shapes = vec![];
        for name in modalities {
            let m = ds.modality_index(name)?;
            let (t, j, c) = all[m][0].dim();
            if let Some(bad) = all[m].iter().position(|x| x.dim() != (t, j, c)) {
                bail!(
                    "modality '{name}': sample {} preprocesses to {:?} but {} to {:?}; add a resample step to the declaration",
                    id(bad),
                    all[m][bad].dim(),
                    id(0),
                    (t, j, c)
                );
            }
            shapes.push(InputShape { channels: c, frames: t, joints: j });
            clips.push(std::mem::take(&mut all[m]));
        }
        let standardization = prepared.standardization.into_iter().filter(|s| modalities.contains(&s.modality)).collect();
        Ok(TrainData {
            modalities: modalities.to_vec(),
            clips,
            labels: ds.meta.iter().map(|m| m.label).collect(),
            sample_ids: ds.meta.iter().map(|m| m.id.clone()).collect(),
            classes: ds.decl.classes.len(),
            split,
            shapes,
            main_metric: ds.decl.main_metric,
            pretrain_only: prepared.pretrain_only,
            standardization,
        })
    }

    /// What self-supervised pre-training trains on: the training split and
    /// the training split's unlabelled windows (none unless the dataset
    /// keeps them). Nothing that reads a label may be given these.
    pub fn pretraining(&self) -> Vec<usize> {
        self.split.train.iter().chain(&self.pretrain_only).copied().collect()
    }
}

/// One training step's result.
pub struct StepOutput {
    pub loss: Tensor<1>,
    /// Extra per-step figures averaged per epoch (e.g. CMKM's pair similarities).
    pub stats: Vec<(&'static str, f64)>,
    /// Where the loss was computed from two independent branches' leaves
    /// ([`branches`]), the branches, differentiated side by side.
    pub branches: Option<[branches::Branch; 2]>,
}

impl StepOutput {
    /// A loss differentiated in one backward pass.
    pub fn new(loss: Tensor<1>, stats: Vec<(&'static str, f64)>) -> Self {
        StepOutput { loss, stats, branches: None }
    }

    /// The loss's gradients for every parameter of `model`.
    pub fn gradients<M: Module>(self, model: &M) -> GradientsParams {
        match self.branches {
            Some(pair) => branches::gradients(self.loss, pair, model),
            None => GradientsParams::from_grads(self.loss.backward(), model),
        }
    }
}

/// A validation pass: the loss and, for classifiers, the main metric.
#[derive(Debug, Clone, Copy)]
pub struct Validation {
    pub loss: f64,
    pub metric: Option<f64>,
}

/// What a method contributes to the loop.
pub trait Objective {
    type Model: Module;
    /// Loss of one training batch (the model is on the autodiff device).
    fn step(&self, model: &Self::Model, batch: &[usize], epoch: u64) -> StepOutput;
    /// Validation of an evaluation-mode copy of the model.
    fn validate(&self, model: &Self::Model) -> Validation;
}

/// One line of the training curves.
#[derive(Debug, Clone, Serialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_metric: Option<f64>,
    pub lr: f64,
    pub seconds: f64,
    pub stats: BTreeMap<String, f64>,
}

/// The result of [`fit`].
pub struct Fitted<M> {
    /// Evaluation-mode copy of the best epoch's model.
    pub best: M,
    pub best_epoch: usize,
    pub log: Vec<EpochLog>,
    pub stopped_early: bool,
}

/// Prints one line per epoch with the loss, validation figures and ETA.
pub struct Progress {
    pub label: String,
    pub quiet: bool,
}

impl Progress {
    fn epoch(&self, e: &EpochLog, epochs: usize, elapsed: f64) {
        if self.quiet {
            return;
        }
        let eta = elapsed / (e.epoch + 1) as f64 * (epochs - e.epoch - 1) as f64;
        let metric = e.val_metric.map(|m| format!(" val_metric {m:.4}")).unwrap_or_default();
        let stats: String = e.stats.iter().map(|(k, v)| format!(" {k} {v:.3}")).collect();
        eprintln!(
            "[{}] epoch {}/{epochs} loss {:.4} val_loss {:.4}{metric}{stats} lr {:.1e} | {:.1}s/epoch, ETA {}",
            self.label,
            e.epoch + 1,
            e.train_loss,
            e.val_loss,
            e.lr,
            e.seconds,
            format_duration(eta)
        );
    }
}

/// `1h02m`, `3m20s`, `12s`.
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Which rules [`fit`] follows (docs/method.md section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FitRules {
    /// Drop the last incomplete batch, reduce the rate on the training
    /// loss, keep the epoch with the lowest validation loss.
    SelfSupervised,
    /// Keep every batch, reduce the rate on the validation main metric,
    /// keep the epoch with the best validation main metric.
    Classifier,
}

/// Trains `model` on the batches of `train` under `schedule`.
///
/// Self-supervised methods drop the last incomplete batch, reduce the rate
/// on the training loss and keep the epoch with the lowest validation loss;
/// supervised ones reduce on the validation main metric, keep its best epoch
/// and stop early on the validation loss. A non-finite loss or gradient is
/// an error naming the epoch and batch; `schedule.grad_clip_norm` clips each
/// parameter's gradient to that L2 norm before the Adam step.
pub fn fit<O: Objective>(
    objective: &O,
    mut model: O::Model,
    train: &[usize],
    schedule: &ScheduleConfig,
    rules: FitRules,
    seed: u64,
    progress: &Progress,
) -> Result<Fitted<O::Model>> {
    let ssl = rules == FitRules::SelfSupervised;
    let s = schedule;
    let clipping = s.grad_clip_norm.map(|n| GradientClippingConfig::Norm(n as f32));
    let mut optimizer = adam::Adam::new(1e-8).init(clipping);
    let plateau_mode = if ssl { Mode::Min } else { Mode::Max };
    let mut plateau = ReduceLrOnPlateau::new(s.lr, plateau_mode, s.plateau_factor, s.plateau_patience);
    let mut early = s.early_stopping_patience.map(|p| EarlyStopping::new(Mode::Min, p));
    let mut best = BestTracker::new(if ssl { Mode::Min } else { Mode::Max });
    let mut best_model = None;
    let mut log = Vec::new();
    let start = Instant::now();
    let mut stopped_early = false;
    for epoch in 0..s.epochs {
        let epoch_start = Instant::now();
        let batches = batches::epoch_batches(train, s.batch_size, ssl, seed, epoch as u64);
        if batches.is_empty() {
            bail!("the training split ({} samples) holds no complete batch of {}", train.len(), s.batch_size);
        }
        let lr = plateau.lr();
        let mut losses = Vec::with_capacity(batches.len());
        let mut stats: BTreeMap<String, f64> = BTreeMap::new();
        for (b, batch) in batches.iter().enumerate() {
            let mut out = objective.step(&model, batch, epoch as u64);
            let step_stats = std::mem::take(&mut out.stats);
            let loss = out.loss.clone().detach();
            let grads = out.gradients(&model);
            let (value, magnitude) = health::loss_and_gradient_magnitude(loss, &model, &grads);
            if !value.is_finite() {
                bail!("the training loss became non-finite ({value}) at epoch {}, batch {}", epoch + 1, b + 1);
            }
            if let Some(g) = magnitude.filter(|g| !g.is_finite()) {
                bail!("the gradients became non-finite (sum of |g| = {g}) at epoch {}, batch {} (the loss was {value})", epoch + 1, b + 1);
            }
            model = optimizer.step(lr, model, grads);
            losses.push(value);
            for (k, v) in step_stats {
                *stats.entry(k.to_string()).or_default() += v / batches.len() as f64;
            }
        }
        let train_loss = losses.iter().sum::<f64>() / losses.len() as f64;
        let eval_model = model.valid();
        let val = objective.validate(&eval_model);
        plateau.step(if ssl { train_loss } else { val.metric.unwrap_or(-val.loss) });
        let selected = if ssl { val.loss } else { val.metric.unwrap_or(-val.loss) };
        if best.update(epoch, selected) || best_model.is_none() {
            best_model = Some(eval_model);
        }
        let entry = EpochLog { epoch, train_loss, val_loss: val.loss, val_metric: val.metric, lr, seconds: epoch_start.elapsed().as_secs_f64(), stats };
        progress.epoch(&entry, s.epochs, start.elapsed().as_secs_f64());
        log.push(entry);
        crate::faults::at("epoch");
        if early.as_mut().is_some_and(|e| e.should_stop(val.loss)) {
            stopped_early = true;
            break;
        }
    }
    // No epoch improved on the start (every selection value NaN): the first
    // epoch's model was kept above, so its index is the best epoch.
    let best_epoch = best.epoch.unwrap_or(0);
    // Settings are checked before any run (`cmkm plan`, the CLI flags); a
    // caller reaching here with 0 epochs gets an error, not a panic.
    let best = best_model.ok_or_else(|| anyhow::anyhow!("no epoch ran (the schedule has {} epochs)", s.epochs))?;
    Ok(Fitted { best, best_epoch, log, stopped_early })
}

/// Writes the per-epoch curves as CSV.
pub fn curves_csv(log: &[EpochLog]) -> String {
    let keys: Vec<&String> = log.first().map(|e| e.stats.keys().collect()).unwrap_or_default();
    let mut out = String::from("epoch,train_loss,val_loss,val_metric,lr,seconds");
    keys.iter().for_each(|k| out.push_str(&format!(",{k}")));
    out.push('\n');
    for e in log {
        let metric = e.val_metric.map(|m| m.to_string()).unwrap_or_default();
        out.push_str(&format!("{},{},{},{metric},{},{}", e.epoch + 1, e.train_loss, e.val_loss, e.lr, e.seconds));
        // A statistic an epoch did not report is written NaN: "not measured".
        keys.iter().for_each(|k| out.push_str(&format!(",{}", e.stats.get(*k).copied().unwrap_or(f64::NAN))));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn the_training_lock_is_reentrant_on_its_thread_and_exclusive_across_threads() {
        let outer = super::exclusive();
        drop(super::exclusive()); // taken again on this thread: no deadlock, and not released
        let (tx, rx) = std::sync::mpsc::channel();
        let other = std::thread::spawn(move || {
            let _held = super::exclusive();
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "another thread took the lock while this one held it");
        drop(outer);
        rx.recv_timeout(Duration::from_secs(30)).expect("the lock is free once the outer guard goes");
        other.join().unwrap();
    }
}
