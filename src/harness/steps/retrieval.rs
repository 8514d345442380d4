//! Retrieval with a training's encoders (and, for a cross-modal method,
//! its shared projection space).

use super::{Results, RunEnv, RunStep, Work};
use crate::harness::flop_estimate::WorkContext;
use crate::protocols::retrieval::{retrieval_settings, write_retrieval};
use crate::protocols::EncoderSet;
use crate::training::TrainData;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Retrieval with the encoders of run `encoders`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetrievalStep {
    pub method: String,
    pub encoders: String,
}

impl RunStep for RetrievalStep {
    fn work(&self) -> Work<'_> {
        Work { kind: "retrieval", method: &self.method, units: 1.0 }
    }
    /// Every sample through the encoders and projection heads once.
    fn flops(&self, ctx: &WorkContext) -> Option<f64> {
        let config = ctx.trained_config(&self.encoders)?;
        let m = ctx.flops_of(config, &config.modalities)?;
        Some((ctx.train + ctx.val + ctx.test) as f64 * m.encoders.iter().chain(&m.projections).sum::<u64>() as f64)
    }
    fn perform(&self, env: &RunEnv, out: &Path) -> Result<()> {
        let set = EncoderSet::from_run(&env.store.dir(&self.encoders), env.dataset.decl.classes.len(), &env.device)?;
        let data = TrainData::new(env.dataset, &set.modalities, env.protocol)?;
        write_retrieval(out, &retrieval_settings(&set, &data, &env.device)?, &data)
    }
    fn results(&self) -> Results<'_> {
        Results::Retrieval
    }
}
