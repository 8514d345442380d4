//! Training a suite method: the method's own schedule, then its checkpoint
//! (and a classifier's test metrics) in the run folder.

use super::{Results, RunEnv, RunStep, Work};
use crate::harness::flop_estimate::WorkContext;
use crate::methods::config::MethodConfig;
use crate::methods::{train, TrainOptions};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Train a method; `pretrained` maps modalities to the ids of the runs
/// whose encoders mine positives (CMC-CMKM).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainStep {
    pub method: String,
    pub config: MethodConfig,
    pub pretrained: BTreeMap<String, String>,
}

impl RunStep for TrainStep {
    fn work(&self) -> Work<'_> {
        Work { kind: "train", method: &self.method, units: self.config.schedule.epochs as f64 }
    }
    fn flops(&self, ctx: &WorkContext) -> Option<f64> {
        ctx.training(&self.config, ctx.train)
    }
    fn perform(&self, env: &RunEnv, out: &Path) -> Result<()> {
        let mut method = self.config.clone();
        method.pretrained = self.pretrained.iter().map(|(m, id)| (m.clone(), env.store.dir(id))).collect();
        let opts = TrainOptions { protocol: env.protocol.to_string(), seed: env.seed, out: out.to_path_buf(), quiet: env.progress.quiet, train_subset: None };
        train(&method, env.dataset, &opts)?;
        Ok(())
    }
    fn results(&self) -> Results<'_> {
        match self.config.is_self_supervised() {
            true => Results::Pretraining,
            false => Results::Classification { modalities: &self.config.modalities },
        }
    }
}
