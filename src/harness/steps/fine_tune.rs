//! Fine-tuning heads on a training's frozen encoders (docs/method.md,
//! protocols), one modality subset per run.

use super::{Results, RunEnv, RunStep, Work};
use crate::harness::flop_estimate::WorkContext;
use crate::models::EvaluationHead;
use crate::protocols::fine_tuning::{fine_tune_frozen, FrozenEncoders};
use crate::protocols::HeadTraining;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Fine-tune heads on the frozen encoders of run `encoders`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FineTuneStep {
    pub method: String,
    pub encoders: String,
    pub modalities: Vec<String>,
    pub epochs: usize,
    #[serde(default)]
    pub head: EvaluationHead,
    #[serde(default, skip_serializing_if = "FrozenEncoders::is_eval")]
    pub frozen: FrozenEncoders,
}

impl RunStep for FineTuneStep {
    fn work(&self) -> Work<'_> {
        let kind = if self.frozen.is_eval() { "fine_tune" } else { "fine_tune_frozen_training" };
        Work { kind, method: &self.method, units: self.epochs as f64 }
    }
    fn flops(&self, ctx: &WorkContext) -> Option<f64> {
        ctx.heads(ctx.trained_config(&self.encoders)?, &self.modalities, self.epochs, ctx.train as f64)
    }
    fn perform(&self, env: &RunEnv, out: &Path) -> Result<()> {
        let (set, data) = env.encoders(&self.encoders, &self.modalities)?;
        let training = HeadTraining::paper(self.modalities.len(), Some(self.epochs), self.head, self.frozen, env.seed);
        let result = fine_tune_frozen(&set, &data, &data.split.train, &training, &env.device, &env.progress)?;
        result.write(out, serde_json::json!({ "modalities": self.modalities }))
    }
    fn results(&self) -> Results<'_> {
        Results::Classification { modalities: &self.modalities }
    }
}
