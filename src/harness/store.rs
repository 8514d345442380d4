//! The run store: one folder per run under `results/<suite>/runs/<id>/`,
//! written in a staging folder and renamed into place when complete, so a
//! run killed at any point leaves either nothing or a complete result. A
//! lock file keeps two processes from running the same run at once.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Written last into a run folder: what ran, how long it took, on what.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecordFile {
    pub id: String,
    pub label: String,
    pub seconds: f64,
    pub hardware: Hardware,
}

/// The machine a run ran on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hardware {
    pub cpu: String,
    pub cores: usize,
    pub threads: usize,
    pub gpu: Option<String>,
    pub os: String,
    pub crate_version: String,
}

impl Hardware {
    /// This machine.
    pub fn current() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| t.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string()))
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Hardware {
            cpu,
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            threads: rayon::current_num_threads(),
            gpu: if cfg!(feature = "cuda") { Some("cuda:0".into()) } else { None },
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// The results folder of one suite.
pub struct RunStore {
    pub root: PathBuf,
}

/// A claimed run: its staging folder and its lock, released on drop.
pub struct Claim {
    pub staging: PathBuf,
    lock: PathBuf,
    final_dir: PathBuf,
}

impl RunStore {
    pub fn new(root: PathBuf) -> Self {
        RunStore { root }
    }

    /// Folder of a finished run.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join("runs").join(id)
    }

    /// True when the run finished (its folder exists with its record).
    pub fn is_done(&self, id: &str) -> bool {
        self.dir(id).join("record.json").is_file()
    }

    /// Why the run failed last time, if it did.
    pub fn failure(&self, id: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join("failed").join(format!("{id}.txt"))).ok()
    }

    /// Claims a run for this process: takes its lock (or errors if a live
    /// process holds it) and prepares an empty staging folder.
    pub fn claim(&self, id: &str) -> Result<Claim> {
        let runs = self.root.join("runs");
        std::fs::create_dir_all(&runs).with_context(|| format!("{}: cannot create the results folder", runs.display()))?;
        let lock = runs.join(format!(".{id}.lock"));
        if let Ok(text) = std::fs::read_to_string(&lock) {
            let pid: u32 = text.trim().parse().unwrap_or(0);
            if pid != 0 && Path::new(&format!("/proc/{pid}")).exists() && pid != std::process::id() {
                bail!("run {id} is being run by process {pid} (lock {})", lock.display());
            }
            let _ = std::fs::remove_file(&lock); // stale: its process is gone
        }
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&lock).with_context(|| format!("run {id}: cannot take the lock {}", lock.display()))?;
        writeln!(f, "{}", std::process::id())?;
        let staging = runs.join(format!(".{id}.staging-{}", std::process::id()));
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        std::fs::create_dir_all(&staging)?;
        Ok(Claim { staging, lock, final_dir: self.dir(id) })
    }

    /// Records a failure (the suite goes on; `plan` shows it).
    pub fn record_failure(&self, id: &str, reason: &str) -> Result<()> {
        crate::fsutil::write_atomic(&self.root.join("failed").join(format!("{id}.txt")), reason.as_bytes())
    }

    /// Removes staging folders and locks left by processes that died.
    pub fn clean_stale(&self) {
        let Ok(entries) = std::fs::read_dir(self.root.join("runs")) else { return };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let pid = name.rsplit_once("staging-").and_then(|(_, p)| p.parse::<u32>().ok());
            if let Some(pid) = pid {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

impl Claim {
    /// Writes the record and moves the staging folder into place.
    pub fn commit(self, record: &RunRecordFile) -> Result<()> {
        crate::fsutil::write_atomic(&self.staging.join("record.json"), serde_json::to_string_pretty(record)?.as_bytes())?;
        if self.final_dir.exists() {
            std::fs::remove_dir_all(&self.final_dir)?; // an unfinished leftover without record
        }
        std::fs::rename(&self.staging, &self.final_dir).with_context(|| format!("{}: cannot move the finished run into place", self.final_dir.display()))?;
        Ok(())
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.staging);
        let _ = std::fs::remove_file(&self.lock);
    }
}
