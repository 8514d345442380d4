//! The label-fraction evaluations: heads on a training's frozen encoders
//! trained on subsets of the labels, and the two baselines, the supervised
//! method trained from scratch on each subset and randomly initialised
//! frozen encoders with the same heads.

use super::{Results, RunEnv, RunStep, Work};
use crate::harness::flop_estimate::WorkContext;
use crate::methods::config::MethodConfig;
use crate::models::EvaluationHead;
use crate::protocols::fine_tuning::FrozenEncoders;
use crate::protocols::label_fractions::{frozen_label_fractions, random_encoders, supervised_label_fractions};
use crate::protocols::{HeadTraining, LabelSubsets};
use crate::training::TrainData;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Label fractions on the encoders of run `encoders`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabelFractionsStep {
    pub method: String,
    pub encoders: String,
    pub modalities: Vec<String>,
    pub fractions: Vec<f64>,
    pub repetitions: u64,
    pub epochs: usize,
    #[serde(default)]
    pub head: EvaluationHead,
    #[serde(default, skip_serializing_if = "FrozenEncoders::is_eval")]
    pub frozen: FrozenEncoders,
}

/// Label-fraction baseline: the supervised `method` trained from scratch
/// on each subset.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SupervisedFractionsStep {
    pub method: String,
    pub config: MethodConfig,
    pub fractions: Vec<f64>,
    pub repetitions: u64,
}

/// Label-fraction baseline: the encoders of `method` randomly
/// initialised and frozen, with the evaluation heads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RandomFractionsStep {
    pub method: String,
    pub config: MethodConfig,
    pub fractions: Vec<f64>,
    pub repetitions: u64,
    pub epochs: usize,
    #[serde(default)]
    pub head: EvaluationHead,
    #[serde(default, skip_serializing_if = "FrozenEncoders::is_eval")]
    pub frozen: FrozenEncoders,
}

/// Epochs x fractions x repetitions.
fn units(epochs: usize, fractions: &[f64], repetitions: u64) -> f64 {
    (epochs * fractions.len()) as f64 * repetitions as f64
}

impl RunStep for LabelFractionsStep {
    fn work(&self) -> Work<'_> {
        let kind = if self.frozen.is_eval() { "label_fractions" } else { "label_fractions_frozen_training" };
        Work { kind, method: &self.method, units: units(self.epochs, &self.fractions, self.repetitions) }
    }
    fn flops(&self, ctx: &WorkContext) -> Option<f64> {
        ctx.fractions(ctx.trained_config(&self.encoders)?, &self.modalities, &self.fractions, self.repetitions, self.epochs)
    }
    fn perform(&self, env: &RunEnv, out: &Path) -> Result<()> {
        let (set, data) = env.encoders(&self.encoders, &self.modalities)?;
        let training = HeadTraining::paper(self.modalities.len(), Some(self.epochs), self.head, self.frozen, env.seed);
        frozen_label_fractions(&set, &data, &LabelSubsets { fractions: &self.fractions, repetitions: self.repetitions }, &training, &env.device, out)?;
        Ok(())
    }
    fn results(&self) -> Results<'_> {
        Results::LabelFractions { modalities: &self.modalities, fractions: &self.fractions, repetitions: self.repetitions, random_init: false }
    }
}

impl RunStep for SupervisedFractionsStep {
    fn work(&self) -> Work<'_> {
        Work { kind: "supervised_fractions", method: &self.method, units: units(self.config.schedule.epochs, &self.fractions, self.repetitions) }
    }
    /// A training per subset, on its share of the training split.
    fn flops(&self, ctx: &WorkContext) -> Option<f64> {
        let per: Option<Vec<f64>> = self.fractions.iter().map(|f| ctx.training(&self.config, ((f * ctx.train as f64).round() as usize).max(1))).collect();
        Some(per?.iter().sum::<f64>() * self.repetitions as f64)
    }
    fn perform(&self, env: &RunEnv, out: &Path) -> Result<()> {
        let data = TrainData::new(env.dataset, &self.config.modalities, env.protocol)?;
        let subsets = LabelSubsets { fractions: &self.fractions, repetitions: self.repetitions };
        supervised_label_fractions(&self.config, env.dataset, &data, env.protocol, &subsets, env.seed, out)?;
        Ok(())
    }
    fn results(&self) -> Results<'_> {
        Results::LabelFractions { modalities: &self.config.modalities, fractions: &self.fractions, repetitions: self.repetitions, random_init: false }
    }
    /// The method's full training, once per repetition and per fraction
    /// of it (an epoch on a fraction `f` of the split is `f` epochs).
    fn stand_in(&self) -> Option<(Work<'_>, f64)> {
        let training = Work { kind: "train", method: &self.method, units: self.config.schedule.epochs as f64 };
        Some((training, self.repetitions as f64 * self.fractions.iter().sum::<f64>()))
    }
}

impl RunStep for RandomFractionsStep {
    fn work(&self) -> Work<'_> {
        let kind = if self.frozen.is_eval() { "random_fractions" } else { "random_fractions_frozen_training" };
        Work { kind, method: &self.method, units: units(self.epochs, &self.fractions, self.repetitions) }
    }
    fn flops(&self, ctx: &WorkContext) -> Option<f64> {
        ctx.fractions(&self.config, &self.config.modalities, &self.fractions, self.repetitions, self.epochs)
    }
    fn perform(&self, env: &RunEnv, out: &Path) -> Result<()> {
        let data = TrainData::new(env.dataset, &self.config.modalities, env.protocol)?;
        let training = HeadTraining::paper(self.config.modalities.len(), Some(self.epochs), self.head, self.frozen, env.seed);
        let set = random_encoders(&self.config, &data, env.seed, &env.device)?;
        frozen_label_fractions(&set, &data, &LabelSubsets { fractions: &self.fractions, repetitions: self.repetitions }, &training, &env.device, out)?;
        Ok(())
    }
    fn results(&self) -> Results<'_> {
        Results::LabelFractions { modalities: &self.config.modalities, fractions: &self.fractions, repetitions: self.repetitions, random_init: true }
    }
}
