//! What a planned run carries out, one file per kind of step, behind one
//! trait ([`RunStep`]): training a method, fine-tuning heads on its frozen
//! encoders, retrieval, and the label-fraction evaluations. The runner,
//! the estimates and the report ask a step what they need (its units of
//! work, its floating-point work, how to perform it, what results it
//! writes), as the harness asks a [`crate::methods::Method`], so adding a
//! protocol does not touch them. [`Step`] is the serialised form a run id
//! hashes: each variant holds its step's settings, and serialises exactly as
//! the struct variants it replaced did, so every run id stands.

mod fine_tune;
mod label_fractions;
mod retrieval;
mod train;

pub use fine_tune::FineTuneStep;
pub use label_fractions::{LabelFractionsStep, RandomFractionsStep, SupervisedFractionsStep};
pub use retrieval::RetrievalStep;
pub use train::TrainStep;

use super::flop_estimate::WorkContext;
use super::store::RunStore;
use crate::data::Dataset;
use crate::protocols::EncoderSet;
use crate::training::{Progress, TrainData};
use anyhow::Result;
use burn::prelude::Device;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What a run does, fully resolved: the settings of one kind of step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    Train(TrainStep),
    FineTune(FineTuneStep),
    Retrieval(RetrievalStep),
    LabelFractions(LabelFractionsStep),
    SupervisedFractions(SupervisedFractionsStep),
    RandomFractions(RandomFractionsStep),
}

impl Step {
    /// The step behind the variant, which the runner, the estimates and the
    /// report ask.
    pub fn kind(&self) -> &dyn RunStep {
        match self {
            Step::Train(s) => s,
            Step::FineTune(s) => s,
            Step::Retrieval(s) => s,
            Step::LabelFractions(s) => s,
            Step::SupervisedFractions(s) => s,
            Step::RandomFractions(s) => s,
        }
    }
}

/// One kind of planned step: a protocol as the harness runs it.
pub trait RunStep {
    /// Its kind in plans and timings, its suite method and its units of work.
    fn work(&self) -> Work<'_>;
    /// Its floating-point work, or `None` where it cannot be counted.
    fn flops(&self, ctx: &WorkContext) -> Option<f64>;
    /// Carries it out, writing its results into the run folder `out`.
    fn perform(&self, env: &RunEnv, out: &Path) -> Result<()>;
    /// What it writes that the report reads.
    fn results(&self) -> Results<'_>;
    /// Recorded work whose rate stands in for this step's where none of
    /// its own kind is recorded, and how many times that work's units this
    /// step is: a supervised label-fraction baseline is so many epochs of
    /// the method's full training. `None` for most steps.
    fn stand_in(&self) -> Option<(Work<'_>, f64)> {
        None
    }
}

/// A step's kind (`train`, `fine_tune`, ...: the `step` column of
/// `timings.csv`), suite method and units of work (epochs; epochs x
/// fractions x repetitions; one retrieval), by which recorded timings
/// estimate planned runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Work<'a> {
    pub kind: &'static str,
    pub method: &'a str,
    pub units: f64,
}

/// The results a step writes, by the report's tables.
#[derive(Debug, Clone, Copy)]
pub enum Results<'a> {
    /// Test metrics of a classifier on these modalities (`metrics.json`).
    Classification { modalities: &'a [String] },
    /// A self-supervised training: its curves only.
    Pretraining,
    /// Retrieval settings and their precisions.
    Retrieval,
    /// Metrics per label fraction and repetition; `random_init` for the
    /// randomly initialised encoders' baseline.
    LabelFractions { modalities: &'a [String], fractions: &'a [f64], repetitions: u64, random_init: bool },
}

/// What performing a step has at hand.
pub struct RunEnv<'a> {
    pub dataset: &'a Dataset,
    /// The run store, where the runs a step reads are.
    pub store: &'a RunStore,
    /// The suite's evaluation protocol (the split).
    pub protocol: &'a str,
    pub seed: u64,
    /// The plain device evaluations run on.
    pub device: Device,
    /// The run's label and whether to print its progress.
    pub progress: Progress,
}

impl RunEnv<'_> {
    /// The encoders of the finished run `run_id`, restricted to
    /// `modalities`, and the data of those modalities.
    fn encoders(&self, run_id: &str, modalities: &[String]) -> Result<(EncoderSet, TrainData)> {
        let set = EncoderSet::from_run(&self.store.dir(run_id), self.dataset.decl.classes.len(), &self.device)?.restrict(modalities)?;
        let data = TrainData::new(self.dataset, modalities, self.protocol)?;
        Ok((set, data))
    }
}
