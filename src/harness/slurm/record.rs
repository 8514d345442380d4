//! The submission record, `<results>/<suite>/slurm/jobs.json`: the Slurm
//! job of each run id, written after every `sbatch` so that a submission
//! cut short still records what it submitted. A later submission reads it
//! to leave alone the runs whose jobs are still queued or running.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One run's latest job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunJob {
    /// `<array job>_<task>`.
    pub job: String,
    pub label: String,
    /// The job script.
    pub script: PathBuf,
    /// The run's log (appended to by each attempt).
    pub log: PathBuf,
}

/// Every run's latest job, and the report job.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmissionRecord {
    pub runs: BTreeMap<String, RunJob>,
    #[serde(default)]
    pub report_job: Option<String>,
}

impl SubmissionRecord {
    /// The record at `path`, or an empty one when there is none yet.
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).with_context(|| format!("{}: not a cmkm submission record (remove it to start afresh)", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("{}: cannot read the submission record", path.display())),
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        crate::fsutil::write_atomic(path, serde_json::to_string_pretty(self)?.as_bytes())
    }

    /// The array job ids the record mentions.
    pub fn array_jobs(&self) -> Vec<String> {
        let mut jobs: Vec<String> = self.runs.values().map(|r| r.job.split('_').next().unwrap_or_default().to_string()).collect();
        jobs.extend(self.report_job.clone());
        jobs.sort();
        jobs.dedup();
        jobs
    }
}
